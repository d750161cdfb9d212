/**
 * CDC of the governance audit log (issue 16, ADR 0101): control-plane `audit_entry` rows →
 * ClickHouse `audit_log` (sql/009), in chain order from the copy's own cursor (its highest
 * seq), at least once; the table is keyed by seq, so a repeated copy changes nothing.
 */
import type { Kysely } from "kysely";
import { listAudit } from "../controlplane/audit.js";
import type { Database } from "../controlplane/schema.js";
import { bindDatabase, type Sink } from "./sink.js";

/** Entries copied per page. */
const PAGE = 500;
/** Pages per call at most (the rest on the next call). */
const PAGES_MAX = 100;

const COLUMNS = [
  "seq", "time_ns", "actor_kind", "actor_id", "action", "subject", "rule_id", "request_id",
  "reason", "before_json", "after_json", "emergency", "prev_hash", "hash",
] as const;

/** Copy entries the copy does not have yet; returns how many were copied. */
export async function copyAuditLog(db: Kysely<Database>, sink: Sink): Promise<number> {
  const [row] = await sink.query(bindDatabase("SELECT max(seq) AS seq FROM {{db}}.audit_log", sink.database));
  let cursor = BigInt(String(row?.["seq"] ?? "0"));
  let copied = 0;
  for (let page = 0; page < PAGES_MAX; page++) {
    const entries = await listAudit(db, { after_seq: cursor }, PAGE);
    if (entries.length === 0) break;
    await sink.insert(
      "audit_log",
      COLUMNS,
      entries.map((e) => [
        e.seq, e.time_ns, e.actor_kind, e.actor_id, e.action, e.subject, e.rule_id ?? "", e.request_id,
        e.reason, e.before_json ?? "", e.after_json ?? "", e.emergency, e.prev_hash, e.hash,
      ]),
    );
    copied += entries.length;
    cursor = entries[entries.length - 1]!.seq;
    if (entries.length < PAGE) break;
  }
  return copied;
}
