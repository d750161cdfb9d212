/**
 * The fixed analytics queries (AnalyticsService, docs/adr/0120). Each builder takes typed
 * parameters only — ledger account ids (bigint), times in ns since the epoch (bigint), bucket
 * widths from an enum, row limits (bounded integers) — and returns the SQL text with those values
 * rendered as numeric literals (`toUInt128('…')` for 128-bit ids). No string from a request ever
 * reaches the SQL: ids are turned into account ids by the daemon first (so an author name is never
 * quoted into a query), and every builder asserts its inputs are in range.
 *
 * Buckets are computed with integer arithmetic on the ns timestamps (UTC days; weeks start on
 * Monday: 1970-01-01 was a Thursday), so chDB and a ClickHouse server agree whatever their time
 * zone. Amounts are summed as UInt256 (sum(UInt128) wraps) and come back as decimal strings.
 */
import { u128 } from "../../streamer/sink.js";
import type { ResultRow } from "../../streamer/sink.js";

export const NS_PER_DAY = 86_400_000_000_000n;
/** Widest window a time-series query accepts (bounds the rows a query can return). */
export const MAX_WINDOW_DAYS = 400;
/** Default window when the request leaves the start unset. */
export const DEFAULT_WINDOW_DAYS = 90;
/** Most rows any list query returns. */
export const MAX_ROWS = 500;

export type Bucket = "day" | "week";

/** A validated window [start_ns, end_ns) in ns since the epoch. */
export interface Window {
  start_ns: bigint;
  end_ns: bigint;
}

function assertWindow(w: Window): void {
  if (!(w.start_ns >= 0n && w.end_ns > w.start_ns && w.end_ns - w.start_ns <= BigInt(MAX_WINDOW_DAYS) * NS_PER_DAY)) {
    throw new Error(`analytics: invalid window ${w.start_ns}..${w.end_ns}`);
  }
}

function assertLimit(limit: number): void {
  if (!(Number.isInteger(limit) && limit >= 1 && limit <= MAX_ROWS)) throw new Error(`analytics: invalid limit ${limit}`);
}

/** SQL for the first day (days since the epoch) of the bucket holding `nsExpr`. */
function bucketDaySql(nsExpr: string, bucket: Bucket): string {
  const day = `intDiv(${nsExpr}, ${NS_PER_DAY})`;
  return bucket === "day" ? day : `(${day} - ((${day} + 3) % 7))`;
}

/** ns since the epoch of the bucket starting on day `day` (days since the epoch). */
export function bucketStartNs(day: bigint): bigint {
  return day * NS_PER_DAY;
}

/** An author's settled sessions per (bucket, masque), by settlement time. */
export function authorEarningsSql(author_account_id: bigint, bucket: Bucket, w: Window): string {
  assertWindow(w);
  return `SELECT ${bucketDaySql("closed_ns", bucket)} AS bucket_day, masque_index,
       max(price_book_version) AS price_book_version, count() AS sessions,
       toString(sum(toUInt256(author_micro))) AS earned_micro
FROM {{db}}.sessions FINAL
WHERE author_account_id = ${u128(author_account_id)} AND status = 'closed'
  AND closed_ns >= ${w.start_ns} AND closed_ns < ${w.end_ns}
GROUP BY bucket_day, masque_index
ORDER BY bucket_day, masque_index`;
}

/** An agent's ended sessions (closed, cancelled, expired), newest first. */
export function agentSpendSql(agent_wallet_id: bigint, w: Window, limit: number): string {
  assertWindow(w);
  assertLimit(limit);
  return `SELECT toString(session_id) AS session_id, toString(status) AS status, masque_index, price_book_version,
       opened_ns, closed_ns, hold_micro, price_micro, author_micro, platform_micro, refund_micro, debt_micro,
       usage_input_tokens, usage_output_tokens, usage_tool_calls, billed_duration_ms
FROM {{db}}.sessions FINAL
WHERE agent_account_id = ${u128(agent_wallet_id)} AND status != 'open'
  AND closed_ns >= ${w.start_ns} AND closed_ns < ${w.end_ns}
ORDER BY closed_ns DESC, session_id
LIMIT ${limit}`;
}

/** Platform fees and authors' shares of settled sessions per bucket. */
export function platformRevenueSql(bucket: Bucket, w: Window): string {
  assertWindow(w);
  return `SELECT ${bucketDaySql("closed_ns", bucket)} AS bucket_day, count() AS sessions,
       toString(sum(toUInt256(platform_micro))) AS platform_micro,
       toString(sum(toUInt256(author_micro))) AS author_micro
FROM {{db}}.sessions FINAL
WHERE status = 'closed' AND closed_ns >= ${w.start_ns} AND closed_ns < ${w.end_ns}
GROUP BY bucket_day
ORDER BY bucket_day`;
}

/** Sessions open in the copy. */
export function openSessionsCountSql(): string {
  return `SELECT count() AS open_sessions FROM {{db}}.sessions FINAL WHERE status = 'open'`;
}

/** Open holds with a deadline, soonest first. */
export function expiringHoldsSql(limit: number): string {
  assertLimit(limit);
  return `SELECT toString(id) AS id, toString(user_data_128) AS tag_id, amount, deadline_ns
FROM {{db}}.holds FINAL
WHERE state = 'open' AND deadline_ns > 0
ORDER BY deadline_ns, id
LIMIT ${limit}`;
}

/** A result cell as a bigint (integers of 64 bits or more come back as decimal strings). */
export function cellBig(row: ResultRow, column: string): bigint {
  const v = row[column];
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  if (typeof v === "string" && /^\d+$/.test(v)) return BigInt(v);
  throw new Error(`analytics: column ${column} is not an unsigned integer: ${JSON.stringify(v)}`);
}

/** A result cell as a string. */
export function cellText(row: ResultRow, column: string): string {
  const v = row[column];
  if (typeof v !== "string") throw new Error(`analytics: column ${column} is not a string: ${JSON.stringify(v)}`);
  return v;
}
