/**
 * CatalogService (issue 16, ADR 0107): authors publish versions of their own masques; the live
 * catalog (./live.ts) offers each version from its effective time.
 *
 * Publish, in order: authorise (an author for itself with ledger:write, or an admin); validate the
 * YAML like a MASQUES_DIR file (field violations name the field and the rule); refuse a masque the
 * operator's folder defines (the file wins); store the price book (committed first, ADR 0071);
 * append the version (owner and index checked under a row lock); refresh the live catalog.
 */
import { create } from "@bufbuild/protobuf";
import { Code, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { parse as parseYaml } from "yaml";
import {
  CatalogService,
  ListMasqueVersionsResponseSchema,
  MasqueVersionSchema,
  PublishMasqueResponseSchema,
  type MasqueVersion,
} from "../../../clients/gen/masques/ledger/v1/catalog_service_pb.js";
import type { Config } from "../../config.js";
import type { CatalogStore, CatalogVersionRow } from "../../controlplane/catalog.js";
import type { PriceBookStore } from "../../controlplane/pricebooks.js";
import { masqueSchema, MASQUE_NAME_RE, parseMasque, QUOTED_PRICE_RULE, type Masque } from "../../domain/catalog.js";
import { defineService, type DaemonContext, type ServiceRegistration } from "../../server/registry.js";
import type { Principal } from "../../server/principal.js";
import { isAdmin, principalOf, requireScope } from "../authz.js";
import { failedPrecondition, invalidArgument, permissionDenied, statusError, type Violation } from "../errors.js";
import { timestampFromNs } from "../views.js";
import { effectiveTimeNs, type LiveCatalog } from "./live.js";

/** Largest published YAML, characters. */
const YAML_MAX = 1024 * 1024;

export interface CatalogServiceDeps {
  store: CatalogStore;
  priceBooks: PriceBookStore;
  live: LiveCatalog;
  /** The session service's start-up (the folder's price books are stored by then). */
  ready: Promise<void>;
  clock: () => bigint;
  config: Pick<Config, "CATALOG_PRICE_NOTICE_S">;
}

/** Validate published YAML like a catalog file: the Masque, or every violation (field, rule). */
export function validateMasqueYaml(text: string): { masque: Masque } | { violations: Violation[] } {
  if (text.trim() === "") return { violations: [{ field: "yaml", description: "required: the masque as YAML" }] };
  if (text.length > YAML_MAX) return { violations: [{ field: "yaml", description: `must be at most ${YAML_MAX} characters` }] };
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    return { violations: [{ field: "yaml", description: `invalid YAML: ${(e as Error).message}` }] };
  }
  const r = masqueSchema.safeParse(doc);
  if (!r.success) {
    return {
      violations: r.error.issues.map((i) => ({
        field: i.path.length > 0 ? i.path.join(".") : "yaml",
        description: i.message === QUOTED_PRICE_RULE ? QUOTED_PRICE_RULE : i.message,
      })),
    };
  }
  return { masque: parseMasque(text, "published") };
}

function versionView(v: CatalogVersionRow, previous: CatalogVersionRow | null): MasqueVersion {
  return create(MasqueVersionSchema, {
    masque: v.masque_name,
    seq: v.seq,
    index: BigInt(v.masque_index),
    author: v.author,
    version: v.version,
    priceVersion: v.price_version,
    priceChanged: previous !== null && previous.price_version !== v.price_version,
    publishTime: timestampFromNs(v.publish_time_ns),
    effectiveTime: timestampFromNs(v.effective_time_ns),
    yaml: v.spec,
  });
}

function authorizePublish(p: Principal, author: string): void {
  requireScope(p, ["ledger:write"], "publish a masque");
  if (isAdmin(p)) return;
  if (p.kind !== "author") throw permissionDenied(`${p.kind} ${JSON.stringify(p.id)} may not publish masques: authors and admins only`, { principal_kind: p.kind });
  if (author !== p.id) {
    throw permissionDenied(`author ${JSON.stringify(p.id)} may not publish a masque whose author is ${JSON.stringify(author)}: authors publish only their own masques`, {
      principal_kind: p.kind,
    });
  }
}

export function createCatalogService(d: CatalogServiceDeps): ServiceImpl<typeof CatalogService> {
  const notice_ns = BigInt(d.config.CATALOG_PRICE_NOTICE_S) * 1_000_000_000n;
  return {
    async publishMasque(req, ctx: HandlerContext) {
      const p = principalOf(ctx);
      requireScope(p, ["ledger:write"], "publish a masque");
      const parsed = validateMasqueYaml(req.yaml);
      if ("violations" in parsed) throw invalidArgument(parsed.violations);
      const m = parsed.masque;
      authorizePublish(p, m.author);
      await d.ready;
      const files = d.live.files();
      const file = files.byName.get(m.name) ?? files.byIndex.get(m.index);
      if (file) {
        throw failedPrecondition(
          "MASQUE_DEFINED_BY_FILE",
          `masque ${JSON.stringify(m.name)} (index ${m.index}) is defined by the operator's file ${file.file} in MASQUES_DIR (masque ${JSON.stringify(file.name)}); ` +
            "when a masque exists both as a file and as a published entry the file wins, so it cannot be published: choose another name and index, or ask the operator to remove the file",
          { masque: m.name, file: file.file },
        );
      }
      // The price book first (ADR 0071): no version row, hence no Don, before it is committed.
      await d.priceBooks.put({ version: m.price_version, masque_index: m.index, masque_name: m.name, author: m.author, pricing: m.pricing });
      const now = d.clock();
      let previous: CatalogVersionRow | null = null;
      const r = await d.store.publish(
        {
          masque_name: m.name,
          masque_index: m.index,
          author: m.author,
          version: m.version,
          ring: m.ring,
          price_version: m.price_version,
          spec: req.yaml,
          published_by: `${p.kind}:${p.id}`,
          publish_time_ns: now,
        },
        (prev) => {
          previous = prev;
          return effectiveTimeNs(prev, m.price_version, now, notice_ns);
        },
      );
      if ("refused" in r) {
        if (r.refused === "owner") throw permissionDenied(`masque ${JSON.stringify(m.name)} belongs to author ${JSON.stringify(r.author)}; its author cannot change`, { masque: m.name });
        if (r.refused === "index_changed") throw invalidArgument([{ field: "index", description: `must stay ${r.masque_index}: a masque's index is fixed by its first version` }]);
        throw statusError(Code.AlreadyExists, "MASQUE_INDEX_TAKEN", `masque index ${m.index} is already used by the published masque ${JSON.stringify(r.masque_name)}`, {
          index: String(m.index),
        });
      }
      await d.live.refreshPublished();
      return create(PublishMasqueResponseSchema, { version: versionView(r, previous) });
    },

    async listMasqueVersions(req, ctx) {
      const p = principalOf(ctx);
      requireScope(p, ["ledger:read"], "list masque versions");
      if (!MASQUE_NAME_RE.test(req.masque)) throw invalidArgument([{ field: "masque", description: "required: a masque name (1-128 letters, digits, spaces or _.:-)" }]);
      const rows = await d.store.versions(req.masque);
      if (!isAdmin(p) && rows.length > 0 && !(p.kind === "author" && rows[0]!.author === p.id)) {
        throw permissionDenied(`${p.kind} ${JSON.stringify(p.id)} may not list the versions of masque ${JSON.stringify(req.masque)}: not its author`, { principal_kind: p.kind });
      }
      return create(ListMasqueVersionsResponseSchema, { versions: rows.map((v, i) => versionView(v, rows[i - 1] ?? null)) });
    },
  };
}

/** The registration for src/services/index.ts (shares the session service's live catalog). */
export function catalogServiceRegistration(ctx: DaemonContext, live: LiveCatalog, ready: Promise<void>): ServiceRegistration {
  return defineService(
    CatalogService,
    createCatalogService({ store: ctx.controlplane.catalog, priceBooks: ctx.controlplane.priceBooks, live, ready, clock: ctx.clock, config: ctx.config }),
  );
}
