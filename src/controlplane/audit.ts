/**
 * The audit log in the control plane (issue 16, ADR 0101): append-only, hash-chained entries
 * (src/domain/audit-chain.ts), their reads, and the anchors this database remembers having
 * written into the ledger (the ledger's copy is the one verification trusts).
 *
 *   await db.transaction().execute(async (trx) => {
 *     await changeSomething(trx);
 *     await appendAudit(trx, { time_ns, actor_kind: "admin", actor_id: "alice", action: "x.y", subject: "x:1", request_id });
 *   });
 *
 * Appends are serialised by the one-row `audit_head` (an UPDATE row-locks it until commit), so
 * two daemons appending at once get consecutive positions and a consistent chain.
 */
import { sql, type Kysely, type Transaction } from "kysely";
import { auditJson, entryHash, type AuditEntry, type AuditInput } from "../domain/audit-chain.js";
import type { Database } from "./schema.js";

/** Longest stored text field (reason, before/after JSON), characters: longer is an error. */
export const AUDIT_TEXT_MAX = 64_000;

type Db = Kysely<Database> | Transaction<Database>;

/**
 * Append one entry in the caller's transaction `trx` (run it in the same transaction as the change
 * it records, so both commit or neither). Returns the stored entry; with `dedupe_key` set and
 * already present, returns the existing entry and appends nothing (a retried action).
 * Throws RangeError when a text field exceeds AUDIT_TEXT_MAX.
 */
export async function appendAudit(trx: Transaction<Database>, input: AuditInput): Promise<AuditEntry> {
  const before_json = auditJson(input.before);
  const after_json = auditJson(input.after);
  const reason = input.reason ?? "";
  for (const [name, v] of [["reason", reason], ["before", before_json], ["after", after_json]] as const) {
    if (v !== null && v.length > AUDIT_TEXT_MAX) throw new RangeError(`audit ${name} exceeds ${AUDIT_TEXT_MAX} characters`);
  }
  // Lock the head first: from here until commit no other append can run.
  const head = await sql<{ seq: string; hash: string }>`update audit_head set seq = seq where id = 1 returning seq::text as seq, hash`.execute(trx);
  const h = head.rows[0];
  if (!h) throw new Error("invariant: audit_head row missing (migration 0006)");
  if (input.dedupe_key) {
    const existing = await readEntries(trx, sql`dedupe_key = ${input.dedupe_key}`, 1);
    if (existing[0]) return existing[0];
  }
  const fields: Omit<AuditEntry, "hash"> = {
    seq: BigInt(h.seq) + 1n,
    time_ns: input.time_ns,
    actor_kind: input.actor_kind,
    actor_id: input.actor_id,
    action: input.action,
    subject: input.subject,
    rule_id: input.rule_id ?? null,
    request_id: input.request_id,
    reason,
    before_json,
    after_json,
    emergency: input.emergency ?? false,
    dedupe_key: input.dedupe_key ?? null,
    prev_hash: h.hash,
  };
  const entry: AuditEntry = { ...fields, hash: entryHash(fields) };
  await sql`insert into audit_entry (seq, time_ns, actor_kind, actor_id, action, subject, rule_id, request_id, reason, before_json, after_json, emergency, dedupe_key, prev_hash, hash)
    values (${entry.seq.toString()}, ${entry.time_ns.toString()}, ${entry.actor_kind}, ${entry.actor_id}, ${entry.action}, ${entry.subject}, ${entry.rule_id},
      ${entry.request_id}, ${entry.reason}, ${entry.before_json}, ${entry.after_json}, ${entry.emergency}, ${entry.dedupe_key}, ${entry.prev_hash}, ${entry.hash})`.execute(trx);
  await sql`update audit_head set seq = ${entry.seq.toString()}, hash = ${entry.hash} where id = 1`.execute(trx);
  return entry;
}

interface RawEntry {
  seq: string;
  time_ns: string;
  actor_kind: string;
  actor_id: string;
  action: string;
  subject: string;
  rule_id: string | null;
  request_id: string;
  reason: string;
  before_json: string | null;
  after_json: string | null;
  emergency: boolean;
  dedupe_key: string | null;
  prev_hash: string;
  hash: string;
}

function entryOf(r: RawEntry): AuditEntry {
  return { ...r, seq: BigInt(r.seq), time_ns: BigInt(r.time_ns) };
}

async function readEntries(db: Db, where: ReturnType<typeof sql>, limit: number): Promise<AuditEntry[]> {
  const r = await sql<RawEntry>`select seq::text as seq, time_ns::text as time_ns, actor_kind, actor_id, action, subject, rule_id, request_id, reason,
      before_json, after_json, emergency, dedupe_key, prev_hash, hash
    from audit_entry where ${where} order by audit_entry.seq limit ${limit}`.execute(db);
  return r.rows.map(entryOf);
}

/** Filters of a page of entries (all optional; times in ns, inclusive start, exclusive end). */
export interface AuditFilter {
  rule_id?: string;
  actor_id?: string;
  start_time_ns?: bigint;
  end_time_ns?: bigint;
  /** Entries after this seq (the page cursor). */
  after_seq?: bigint;
}

/** Most entries in one page. */
export const AUDIT_PAGE_MAX = 500;

/** One page of entries in seq order (at most `limit` ≤ AUDIT_PAGE_MAX). */
export async function listAudit(db: Db, f: AuditFilter, limit: number): Promise<AuditEntry[]> {
  if (!(Number.isInteger(limit) && limit >= 1 && limit <= AUDIT_PAGE_MAX)) throw new RangeError(`limit must be 1..${AUDIT_PAGE_MAX}`);
  const conds = [sql`true`];
  if (f.rule_id) conds.push(sql`rule_id = ${f.rule_id}`);
  if (f.actor_id) conds.push(sql`actor_id = ${f.actor_id}`);
  if (f.start_time_ns !== undefined) conds.push(sql`time_ns >= ${f.start_time_ns.toString()}`);
  if (f.end_time_ns !== undefined) conds.push(sql`time_ns < ${f.end_time_ns.toString()}`);
  if (f.after_seq !== undefined) conds.push(sql`seq > ${f.after_seq.toString()}`);
  return readEntries(db, sql.join(conds, sql` and `), limit);
}

/** Rows read per query when reading the whole chain (verification). */
const CHAIN_PAGE = 5_000;

/**
 * Every entry in storage order (by seq), as stored: verification reads what is on disk, so a
 * deleted or reordered row shows as a gap or a misplaced seq.
 */
export async function readChain(db: Db): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  let after = 0n;
  for (;;) {
    const page = await readEntries(db, sql`seq > ${after.toString()}`, CHAIN_PAGE);
    out.push(...page);
    if (page.length < CHAIN_PAGE) return out;
    after = page[page.length - 1]!.seq;
  }
}

/** The chain head: last seq and hash (seq 0 and the genesis hash when empty). */
export async function auditHead(db: Db): Promise<{ seq: bigint; hash: string }> {
  const r = await sql<{ seq: string; hash: string }>`select seq::text as seq, hash from audit_head where id = 1`.execute(db);
  const h = r.rows[0];
  if (!h) throw new Error("invariant: audit_head row missing (migration 0006)");
  return { seq: BigInt(h.seq), hash: h.hash };
}

/** The last anchor this database recorded (null: none yet). */
export async function lastAnchorSeq(db: Db): Promise<bigint | null> {
  const r = await sql<{ seq: string | null }>`select max(seq)::text as seq from audit_anchor`.execute(db);
  const s = r.rows[0]?.seq;
  return s ? BigInt(s) : null;
}

/** Record that the ledger holds an anchor of (seq, hash) as transfer `transfer_id` (idempotent). */
export async function recordAnchor(db: Db, a: { seq: bigint; hash: string; transfer_id: string; time_ns: bigint }): Promise<void> {
  await sql`insert into audit_anchor (seq, hash, transfer_id, time_ns) values (${a.seq.toString()}, ${a.hash}, ${a.transfer_id}, ${a.time_ns.toString()})
    on conflict (seq) do nothing`.execute(db);
}
