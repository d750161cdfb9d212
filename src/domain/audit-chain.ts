/**
 * The audit log's hash chain (issue 16, ADR 0101). Pure: hashing and verification; the control
 * plane stores entries (src/controlplane/audit.ts) and the ledger keeps anchors.
 *
 * hash(n) = SHA-256(canonical JSON of entry n's fields, including prev_hash = hash(n-1)); the
 * first entry's prev_hash is 64 zeros. An edited, deleted or reordered entry breaks the chain at
 * its position. Truncating the tail or rewriting the whole chain consistently is caught by the
 * anchors: (seq, hash) pairs written into the ledger (outside the database), which the chain must
 * still contain.
 */
import { createHash } from "node:crypto";

export const GENESIS_HASH = "0".repeat(64);

/** What a caller records (see appendAudit in src/controlplane/audit.ts). */
export interface AuditInput {
  /** When (daemon clock, ns since the epoch). */
  time_ns: bigint;
  /** Principal kind and id (the token's `sub`), or "system" for the daemon itself. */
  actor_kind: string;
  actor_id: string;
  /** Dotted verb, e.g. "revenue_rule.approve", "account.deposit". */
  action: string;
  /** What was acted on, e.g. "revenue_rule:<id>", "account:<hex>". */
  subject: string;
  /** The revenue rule concerned, if any (for filtering). */
  rule_id?: string | null;
  /** `x-request-id` of the call, or a generated one. */
  request_id: string;
  /** Why (a rejection reason, a justification, a description); "" when none. */
  reason?: string;
  /** State before and after (any JSON-serialisable value; bigints become decimal strings). */
  before?: unknown;
  after?: unknown;
  /** Emergency action (flagged everywhere). */
  emergency?: boolean;
  /** When set, a second append with the same key is a no-op (a retried money action). */
  dedupe_key?: string | null;
}

/** A stored entry. */
export interface AuditEntry {
  seq: bigint;
  time_ns: bigint;
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

/** A chain head written into the ledger. */
export interface AuditAnchor {
  seq: bigint;
  /** The first 32 hex digits (128 bits) of hash(seq): what a transfer's user_data_128 holds. */
  hash_prefix: string;
}

/** JSON with bigints as decimal strings (for before/after). */
export function auditJson(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? x.toString() : x));
}

/** SHA-256 (hex) of an entry's fields and its predecessor's hash. */
export function entryHash(e: Omit<AuditEntry, "hash">): string {
  const canonical = JSON.stringify([
    e.seq.toString(), e.time_ns.toString(), e.actor_kind, e.actor_id, e.action, e.subject, e.rule_id,
    e.request_id, e.reason, e.before_json, e.after_json, e.emergency, e.dedupe_key, e.prev_hash,
  ]);
  return createHash("sha256").update(canonical).digest("hex");
}

/** The outcome of a verification: ok, or the position (seq, 1-based) of the first bad entry. */
export interface AuditVerification {
  ok: boolean;
  /** Entries read. */
  entries: number;
  /** Anchors checked. */
  anchors: number;
  /** Position of the first bad entry (1-based chain position); null when ok. */
  first_bad_seq: bigint | null;
  /** What is wrong, in words; "" when ok. */
  detail: string;
}

/**
 * Verify `entries` (as stored, in seq order) against the chain rule and `anchors`. The first
 * problem wins: a position whose seq is not its place (deleted or reordered), a prev_hash not the
 * predecessor's hash, a hash not the entry's (edited), an anchor whose entry is missing
 * (truncated) or differs (rewritten).
 */
export function verifyChain(entries: readonly AuditEntry[], anchors: readonly AuditAnchor[]): AuditVerification {
  let prev = GENESIS_HASH;
  const base = { entries: entries.length, anchors: anchors.length };
  const bad = (seq: bigint, detail: string): AuditVerification => ({ ok: false, ...base, first_bad_seq: seq, detail });
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const pos = BigInt(i + 1);
    if (e.seq !== pos) return bad(pos, `entry at position ${pos} has seq ${e.seq}: an entry was deleted or reordered`);
    if (e.prev_hash !== prev) return bad(pos, `entry ${pos}: prev_hash does not match entry ${pos - 1n}'s hash (deleted, reordered or rewritten)`);
    const h = entryHash(e);
    if (h !== e.hash) return bad(pos, `entry ${pos}: content does not match its hash (edited)`);
    prev = h;
  }
  // Anchors: the earliest failing one names the first position the chain no longer holds.
  const sorted = [...anchors].sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
  for (const a of sorted) {
    const e = entries[Number(a.seq) - 1];
    if (e === undefined) {
      return bad(BigInt(entries.length + 1), `the ledger anchored entry ${a.seq} but the log ends at ${entries.length}: entries were removed (truncated)`);
    }
    if (e.hash.slice(0, 32) !== a.hash_prefix) {
      return bad(a.seq, `entry ${a.seq} differs from the hash anchored in the ledger: the log was rewritten up to here`);
    }
  }
  return { ok: true, ...base, first_bad_seq: null, detail: "" };
}
