/**
 * The masques plugin's session file, `.claude/masque.session.yaml` (seed 001). The plugin writes
 *
 *   # Auto-managed by masques plugin
 *   active:   { name, source, donned_at }
 *   previous: { name, source, doffed_at }
 *
 * and we add a `ledger` block under `active` (and keep the final one under `previous`) so `/don`,
 * `/doff`, `/id` and a heartbeat hook share one source of truth. Everything else in the file —
 * comments, unknown keys, the plugin's own fields — is preserved (YAML Document API). Writes are
 * atomic (temp file + rename) and serialised by a lock file, so a heartbeat hook and `/doff`
 * racing each other cannot lose an update or leave half a file.
 */
import { mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { Document, parseDocument, isMap } from "yaml";
import { z } from "zod";
import { formatMicroAsUsd, parseUsdToMicro } from "./money.js";

const HEADER = " Auto-managed by masques plugin";

export { DEFAULT_SESSION_FILE, resolveSessionFilePath } from "./session-path.js";

/** A usage report written to the file before it is sent, removed once the daemon acknowledged it. */
export interface UnsentUsage {
  seq: number;
  input_tokens: bigint;
  output_tokens: bigint;
  tool_calls: bigint;
}

/** What the ledger knows about the active paid session. */
export interface LedgerSessionState {
  /**
   * Session id (32 hex), chosen by the client *before* the Don and written here first: it is the
   * Don's idempotency key, so re-running `don` after an outage can never hold twice.
   */
  session_id: string;
  /** Masque name as the daemon's catalog knows it. */
  masque: string;
  /** `pending`: the Don was sent but not confirmed (outage); `active`: held on the ledger. */
  status: "pending" | "active";
  /** Reservation held on Don, micro-USD. */
  reserved_micro?: bigint;
  /** The agent's own spending cap asked for at Don, micro-USD. */
  max_spend_micro?: bigint;
  /** Last usage sequence number assigned for this session (0 = none yet). */
  usage_seq: number;
  /** Usage events assigned a sequence number but not yet acknowledged by the daemon. */
  unsent_usage: UnsentUsage[];
  /** Endpoint the session lives on, so later commands talk to the same daemon. */
  endpoint?: string;
  intent?: string;
}

/** The outcome recorded under `previous.ledger` after doff/cancel. */
export interface LedgerOutcome {
  session_id: string;
  status: "doffed" | "cancelled" | "reaped" | "expired" | "never_held";
  charged_micro?: bigint;
  refunded_micro?: bigint;
}

export interface SessionFileView {
  active: { name: string | null; source: string | null; donned_at: string | null; ledger: LedgerSessionState | null };
  previous: { name: string | null; source: string | null; doffed_at: string | null; ledger: LedgerOutcome | null };
}

export class SessionFileError extends Error {}

const usd = z.string().transform((s, ctx) => {
  try {
    return parseUsdToMicro(s);
  } catch {
    ctx.addIssue({ code: "custom", message: `not a USD amount: ${s}` });
    return z.NEVER;
  }
});
const optStr = z.string().nullish().transform((v) => v ?? undefined);

const count = z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/)]).transform((v) => BigInt(v));
const ledgerActiveSchema = z.object({
  session_id: z.string().min(1),
  masque: z.string().min(1),
  status: z.enum(["pending", "active"]),
  reserved_usd: usd.nullish(),
  max_spend_usd: usd.nullish(),
  usage_seq: z.number().int().nonnegative().default(0),
  unsent_usage: z
    .array(z.object({ seq: z.number().int().positive(), input_tokens: count.default(0n), output_tokens: count.default(0n), tool_calls: count.default(0n) }))
    .nullish(),
  endpoint: optStr,
  intent: optStr,
});
const ledgerPrevSchema = z.object({
  session_id: z.string(),
  status: z.enum(["doffed", "cancelled", "reaped", "expired", "never_held"]),
  charged_usd: usd.nullish(),
  refunded_usd: usd.nullish(),
});

function str(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

function viewOf(doc: Document, path: string): SessionFileView {
  const js = (doc.toJS() ?? {}) as Record<string, unknown>;
  const a = (js["active"] ?? {}) as Record<string, unknown>;
  const p = (js["previous"] ?? {}) as Record<string, unknown>;
  let ledger: LedgerSessionState | null = null;
  if (a["ledger"] !== undefined && a["ledger"] !== null) {
    const r = ledgerActiveSchema.safeParse(a["ledger"]);
    if (!r.success) {
      throw new SessionFileError(
        `${path}: active.ledger is malformed (${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}). ` +
          "Fix or delete that block; `masques-ledger-client sessions` shows your open sessions on the ledger.",
      );
    }
    const l = r.data;
    ledger = {
      session_id: l.session_id,
      masque: l.masque,
      status: l.status,
      usage_seq: l.usage_seq,
      unsent_usage: (l.unsent_usage ?? []).map((u) => ({ seq: u.seq, input_tokens: u.input_tokens, output_tokens: u.output_tokens, tool_calls: u.tool_calls })),
      ...(l.reserved_usd != null ? { reserved_micro: l.reserved_usd } : {}),
      ...(l.max_spend_usd != null ? { max_spend_micro: l.max_spend_usd } : {}),
      ...(l.endpoint ? { endpoint: l.endpoint } : {}),
      ...(l.intent ? { intent: l.intent } : {}),
    };
  }
  let outcome: LedgerOutcome | null = null;
  if (p["ledger"] !== undefined && p["ledger"] !== null) {
    const r = ledgerPrevSchema.safeParse(p["ledger"]);
    if (r.success) {
      outcome = {
        session_id: r.data.session_id,
        status: r.data.status,
        ...(r.data.charged_usd != null ? { charged_micro: r.data.charged_usd } : {}),
        ...(r.data.refunded_usd != null ? { refunded_micro: r.data.refunded_usd } : {}),
      };
    }
  }
  return {
    active: { name: str(a["name"]), source: str(a["source"]), donned_at: str(a["donned_at"]), ledger },
    previous: { name: str(p["name"]), source: str(p["source"]), doffed_at: str(p["doffed_at"]), ledger: outcome },
  };
}

/** Counts as YAML numbers while exact in JavaScript, else as decimal strings. */
function yamlCount(v: bigint): number | string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

function ledgerActiveToYaml(l: LedgerSessionState): Record<string, unknown> {
  return {
    session_id: l.session_id,
    masque: l.masque,
    status: l.status,
    ...(l.reserved_micro !== undefined ? { reserved_usd: formatMicroAsUsd(l.reserved_micro) } : {}),
    ...(l.max_spend_micro !== undefined ? { max_spend_usd: formatMicroAsUsd(l.max_spend_micro) } : {}),
    usage_seq: l.usage_seq,
    ...(l.unsent_usage.length > 0
      ? {
          unsent_usage: l.unsent_usage.map((u) => ({
            seq: u.seq,
            input_tokens: yamlCount(u.input_tokens),
            output_tokens: yamlCount(u.output_tokens),
            tool_calls: yamlCount(u.tool_calls),
          })),
        }
      : {}),
    ...(l.endpoint ? { endpoint: l.endpoint } : {}),
    ...(l.intent ? { intent: l.intent } : {}),
  };
}

function outcomeToYaml(o: LedgerOutcome): Record<string, unknown> {
  return {
    session_id: o.session_id,
    status: o.status,
    ...(o.charged_micro !== undefined ? { charged_usd: formatMicroAsUsd(o.charged_micro) } : {}),
    ...(o.refunded_micro !== undefined ? { refunded_usd: formatMicroAsUsd(o.refunded_micro) } : {}),
  };
}

/** A loaded session file that can be edited and saved without losing anything it does not own. */
export class SessionFile {
  private constructor(
    readonly path: string,
    private doc: Document,
    readonly existed: boolean,
  ) {}

  static async load(path: string): Promise<SessionFile> {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") {
        const doc = new Document({});
        doc.commentBefore = HEADER;
        return new SessionFile(path, doc, false);
      }
      throw new SessionFileError(`cannot read session file ${path}: ${(e as Error).message}`);
    }
    let doc: Document = parseDocument(text);
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      throw new SessionFileError(`${path}: not valid YAML (${e.message.split("\n")[0]}). Fix it or delete it (it only records the active masque).`);
    }
    if (doc.contents !== null && !isMap(doc.contents)) {
      throw new SessionFileError(`${path}: expected a YAML mapping with 'active' and 'previous'. Fix it or delete it.`);
    }
    if (doc.contents === null) {
      const fresh = new Document({});
      fresh.commentBefore = doc.commentBefore ?? HEADER;
      doc = fresh;
    }
    return new SessionFile(path, doc, true);
  }

  view(): SessionFileView {
    return viewOf(this.doc, this.path);
  }

  /** Record a Don: the plugin's active fields plus our ledger block; `previous` is kept. */
  setActive(a: { name: string; source?: string | null; donned_at: string; ledger: LedgerSessionState }): void {
    this.doc.setIn(["active", "name"], a.name);
    this.doc.setIn(["active", "source"], a.source ?? this.view().active.source ?? "shared");
    this.doc.setIn(["active", "donned_at"], a.donned_at);
    this.doc.setIn(["active", "ledger"], this.doc.createNode(ledgerActiveToYaml(a.ledger)));
    if (!this.doc.hasIn(["previous"])) {
      this.doc.setIn(["previous"], this.doc.createNode({ name: null, source: null, doffed_at: null }));
    }
  }

  /** Update only the ledger block of the active masque. */
  setActiveLedger(l: LedgerSessionState): void {
    this.doc.setIn(["active", "ledger"], this.doc.createNode(ledgerActiveToYaml(l)));
  }

  /** Record a Doff/Cancel: active -> previous (with the outcome), active cleared like the plugin's /doff. */
  moveActiveToPrevious(at: string, outcome?: LedgerOutcome): void {
    const v = this.view();
    this.doc.setIn(
      ["previous"],
      this.doc.createNode({
        name: v.active.name ?? v.active.ledger?.masque ?? null,
        source: v.active.source,
        doffed_at: at,
        ...(outcome ? { ledger: outcomeToYaml(outcome) } : {}),
      }),
    );
    this.doc.setIn(["active"], this.doc.createNode({ name: null, source: null, donned_at: null }));
  }

  /** Forget the active ledger block without touching the plugin's fields (e.g. a Don that failed for good). */
  clearActiveLedger(): void {
    this.doc.deleteIn(["active", "ledger"]);
  }

  async save(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, this.doc.toString({ lineWidth: 0 }), { mode: 0o600 });
    await rename(tmp, this.path);
  }
}

/**
 * Load, edit and save the session file under an exclusive lock (`<file>.lock`, created with
 * O_EXCL; a lock older than `stale_ms` is considered abandoned by a crashed process and broken).
 */
export async function withSessionFile<T>(
  path: string,
  fn: (f: SessionFile) => Promise<T> | T,
  opts: { wait_ms?: number; stale_ms?: number } = {},
): Promise<T> {
  const lock = `${path}.lock`;
  const wait_ms = opts.wait_ms ?? 10_000;
  const stale_ms = opts.stale_ms ?? 30_000;
  await mkdir(dirname(path), { recursive: true });
  const start = Date.now();
  for (;;) {
    try {
      const h = await open(lock, "wx");
      await h.writeFile(String(process.pid));
      await h.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      try {
        const s = await stat(lock);
        if (Date.now() - s.mtimeMs > stale_ms) {
          await rm(lock, { force: true });
          continue;
        }
      } catch {
        continue;
      }
      if (Date.now() - start > wait_ms) {
        throw new SessionFileError(`session file ${path} is locked by another masques-ledger process (${lock}); retry, or delete the lock file if no such process runs.`);
      }
      await new Promise((r) => setTimeout(r, 25 + Math.floor(Math.random() * 50)));
    }
  }
  try {
    const f = await SessionFile.load(path);
    return await fn(f);
  } finally {
    await rm(lock, { force: true });
  }
}
