/**
 * SettlementService deposit reads and the admin's review of held deposits (issue 13; docs/adr/0088):
 * ListDepositSources and ListDeposits (an agent its own, an admin anyone's; with an empty agent
 * an admin lists the HELD deposits), ListDepositRefusals (admin: every refused report, as
 * received) and ReleaseHeldDeposit (admin: credits a HELD deposit to the agent the admin names,
 * under the SAME deposit id the adapter's report would use, so the chain event is credited
 * exactly once whatever is reported later; the row keeps who released it, why and when).
 *
 * Release order (ADR 0070): the ledger credit first (deterministic id: a retry answers `exists`,
 * another wallet answers `exists_with_different_credit_account_id` and nothing moves), then the
 * record. A crash between them leaves the row HELD with the ledger credited; the admin's retry
 * (same agent) completes the record.
 */
import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { AccountFlags, type Client } from "tigerbeetle-node";
import {
  DepositRefusalSchema,
  DepositSourceSchema,
  ListDepositRefusalsResponseSchema,
  ListDepositSourcesResponseSchema,
  ListDepositsResponseSchema,
  ReleaseHeldDepositResponseSchema,
  type SettlementService,
} from "../../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import type { DepositStore, PageBefore } from "../../controlplane/settlement.js";
import { OWNER_ID_RE, OWNER_ID_RULE, agentWalletId } from "../../domain/accounts.js";
import { depositCreditPlan, depositOutcome } from "../../domain/settlement/plans.js";
import { canonicalDepositKey } from "../../domain/settlement/ids.js";
import { idToHex } from "../../domain/ids.js";
import { requestLogger } from "../../server/context.js";
import { requestIdKey } from "../../server/principal.js";
import { authorizeReadDeposits, principalOf, requireAdmin } from "../authz.js";
import { accountNotFound, failedPrecondition, invalidArgument, ledgerRejected, statusError, type Violation } from "../errors.js";
import { parseHexId, parsePageSize, timestampFromNs, transferView } from "../views.js";
import { depositView } from "./deposits.js";
import { protoRail, railOf } from "./views.js";
import { Code } from "@connectrpc/connect";
import type { RailName } from "../../domain/codes.js";

export interface DepositReadDeps {
  ledger: Client;
  deposits: DepositStore;
  clock: () => bigint;
}

const MAX_REASON_CHARS = 1000;

function fingerprint(query: readonly unknown[]): string {
  return createHash("sha256").update(JSON.stringify(query)).digest("hex").slice(0, 16);
}

/** Opaque page token over a (time, id) position plus a fingerprint of the filters. */
function encodeToken(pos: PageBefore, query: readonly unknown[]): string {
  return Buffer.from(`v1.${pos.time_ns}.${pos.id}.${fingerprint(query)}`).toString("base64url");
}

function decodeToken(token: string, query: readonly unknown[], v: Violation[]): PageBefore | null {
  if (token === "") return null;
  const m = /^v1\.(\d{1,20})\.([0-9A-Za-z]{1,64})\.([0-9a-f]{16})$/.exec(Buffer.from(token, "base64url").toString("utf8"));
  if (!m || m[3] !== fingerprint(query)) {
    v.push({ field: "page_token", description: "must be a next_page_token returned for the same request filters" });
    return null;
  }
  return { time_ns: BigInt(m[1]!), id: m[2]! };
}

function optionalRail(r: number, v: Violation[]): RailName | null {
  if (r === 0) return null;
  const rail = railOf(r);
  if (rail === null) v.push({ field: "rail", description: "must be unset or a known rail" });
  return rail;
}

/** Pages `fetch` (limit+1 rows to know whether more follow). */
async function page<T>(size: number, fetch: (limit: number) => Promise<T[]>, pos: (row: T) => PageBefore, query: readonly unknown[]) {
  const rows = await fetch(size + 1);
  const more = rows.length > size;
  const shown = rows.slice(0, size);
  const next = more ? encodeToken(pos(shown[shown.length - 1]!), query) : "";
  return { rows: shown, next };
}

export function createDepositReadHandlers(
  deps: DepositReadDeps,
): Pick<ServiceImpl<typeof SettlementService>, "listDepositSources" | "listDeposits" | "listDepositRefusals" | "releaseHeldDeposit"> {
  const { ledger, deposits } = deps;
  return {
    async listDepositSources(req, ctx) {
      const agent = authorizeReadDeposits(principalOf(ctx), req.agentId, "list deposit sources");
      const v: Violation[] = [];
      if (agent === "") v.push({ field: "agent_id", description: "must be set (admins name the agent)" });
      const size = parsePageSize(req.pageSize, v);
      const rail = optionalRail(req.rail, v);
      const query = ["sources", agent, rail];
      const before = decodeToken(req.pageToken, query, v);
      if (v.length > 0) throw invalidArgument(v);
      const { rows, next } = await page(size, (n) => deposits.listSources(agent, rail, before, n), (s) => ({ time_ns: s.create_time_ns, id: s.address }), query);
      return create(ListDepositSourcesResponseSchema, {
        sources: rows.map((s) => create(DepositSourceSchema, { rail: protoRail(s.rail), address: s.address, agentId: s.agent_id, createTime: timestampFromNs(s.create_time_ns) })),
        nextPageToken: next,
      });
    },

    async listDeposits(req, ctx) {
      const agent = authorizeReadDeposits(principalOf(ctx), req.agentId, "list deposits");
      const v: Violation[] = [];
      const size = parsePageSize(req.pageSize, v);
      const rail = optionalRail(req.rail, v);
      const query = ["deposits", agent, rail];
      const before = decodeToken(req.pageToken, query, v);
      if (v.length > 0) throw invalidArgument(v);
      const who = agent === "" ? null : agent; // admin without an agent: the HELD queue
      const { rows, next } = await page(size, (n) => deposits.listDeposits(who, rail, before, n), (d) => ({ time_ns: d.create_time_ns, id: d.deposit_id }), query);
      return create(ListDepositsResponseSchema, { deposits: rows.map(depositView), nextPageToken: next });
    },

    async listDepositRefusals(req, ctx) {
      requireAdmin(principalOf(ctx), "list refused deposit reports");
      const v: Violation[] = [];
      const size = parsePageSize(req.pageSize, v);
      const rail = optionalRail(req.rail, v);
      const query = ["refusals", rail];
      const before = decodeToken(req.pageToken, query, v);
      if (v.length > 0) throw invalidArgument(v);
      const { rows, next } = await page(
        size,
        (n) => deposits.listRefusals(rail, before === null ? null : BigInt(before.id), n),
        (r) => ({ time_ns: r.time_ns, id: r.refusal_id.toString() }),
        query,
      );
      return create(ListDepositRefusalsResponseSchema, {
        refusals: rows.map((r) =>
          create(DepositRefusalSchema, {
            refusalId: r.refusal_id,
            rail: protoRail(r.rail),
            chainId: r.chain_id,
            txRef: r.tx_ref,
            eventIndex: r.event_index,
            reason: r.reason,
            detail: r.detail,
            reportJson: r.report,
            refuseTime: timestampFromNs(r.time_ns),
          }),
        ),
        nextPageToken: next,
      });
    },

    async releaseHeldDeposit(req, ctx) {
      const p = principalOf(ctx);
      requireAdmin(p, "release a held deposit");
      const v: Violation[] = [];
      const id = parseHexId(req.depositId, "deposit_id", v);
      if (!OWNER_ID_RE.test(req.agentId)) v.push({ field: "agent_id", description: OWNER_ID_RULE });
      const reason = req.reason.trim();
      if (reason === "" || reason.length > MAX_REASON_CHARS) v.push({ field: "reason", description: `must be a sentence of 1-${MAX_REASON_CHARS} characters` });
      if (v.length > 0 || id === null) throw invalidArgument(v);
      const row = await deposits.getDeposit(req.depositId);
      if (row === null) throw statusError(Code.NotFound, "DEPOSIT_NOT_FOUND", `deposit ${req.depositId} does not exist`, { deposit_id: req.depositId });
      const notHeld = (why: string) => failedPrecondition("DEPOSIT_NOT_HELD", `deposit ${row.deposit_id} ${why}: only a HELD deposit can be released`, { deposit_id: row.deposit_id, state: row.state });
      const releasedHere = row.state === "credited" && row.released_by !== null && row.agent_id === req.agentId;
      if (row.state !== "held" && !releasedHere) throw notHeld(`is ${row.state.toUpperCase()}${row.agent_id ? ` (agent ${row.agent_id})` : ""}`);
      const wallet_id = agentWalletId(req.agentId);
      const [w] = await ledger.lookupAccounts([wallet_id]);
      // Submitting to a missing or closed wallet would burn the deposit id for ever (ADR 0085).
      if (w === undefined) throw accountNotFound(idToHex(wallet_id));
      if (w.flags & AccountFlags.closed) throw failedPrecondition("ACCOUNT_CLOSED", `agent ${req.agentId}'s wallet is closed: nothing released`, { agent_id: req.agentId });
      const key = canonicalDepositKey(row.rail, { chain_id: row.chain_id, tx_ref: row.tx_ref, event_index: row.event_index });
      const transfer = depositCreditPlan({ key, wallet_id, amount_micro: row.amount_micro });
      if (transfer.id !== id) throw new Error(`deposit ${row.deposit_id}: recorded key derives id ${transfer.id.toString(16)}`);
      const [result] = await ledger.createTransfers([transfer]);
      const outcome = depositOutcome(result!);
      switch (outcome.kind) {
        case "credited":
        case "already_credited":
          break;
        case "facts_mismatch":
          throw notHeld(`was already credited in the ledger to another wallet (${outcome.status})`);
        case "wallet_not_found":
        case "id_already_failed":
          throw ledgerRejected("deposit release", outcome.kind);
        case "rejected":
          throw ledgerRejected("deposit release", outcome.status);
      }
      const now = deps.clock();
      const released = await deposits.releaseHeld(row.deposit_id, req.agentId, p.id, reason, now, { actor_kind: p.kind, request_id: ctx.values.get(requestIdKey) || "unknown" });
      if (released === null) throw notHeld("changed while being released");
      requestLogger(ctx).warn(
        { event: "deposit_released", deposit_id: row.deposit_id, agent_id: req.agentId, admin: p.id, reason, amount_micro: String(row.amount_micro) },
        "held deposit released by an admin",
      );
      const [t] = await ledger.lookupTransfers([transfer.id]);
      return create(ReleaseHeldDepositResponseSchema, { deposit: depositView(released), transfer: t ? transferView(t) : undefined });
    },
  };
}
