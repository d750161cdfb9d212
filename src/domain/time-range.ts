/**
 * Time-range filters on ledger history (AccountService.ListTransfers, GetBalanceHistory) and
 * their translation to a TigerBeetle AccountFilter's `timestamp_min` / `timestamp_max`.
 *
 * Pure: no I/O. The API range is half-open, [start_time, end_time), in google.protobuf.Timestamp;
 * the ledger's filter is inclusive, in ns, with 0 meaning "unbounded", and only accepts
 * timestamps in 1..2^63-1 (TigerBeetle treats any other non-zero bound, and min > max, as an
 * invalid filter). Every edge is decided here (docs/adr/0056-time-range-edges.md):
 *
 * | request                                          | answer                                 |
 * |--------------------------------------------------|----------------------------------------|
 * | start_time / end_time unset                      | unbounded on that side                 |
 * | not a valid Timestamp (seconds outside           | INVALID_ARGUMENT naming the field      |
 * |   0001-01-01..9999-12-31, nanos outside 0..1e9-1) |                                        |
 * | end_time before start_time                       | INVALID_ARGUMENT on end_time           |
 * | end_time == start_time (empty range)             | empty page                             |
 * | start_time at or before the epoch                | unbounded below (nothing is earlier)   |
 * | end_time at or before the epoch (+1 ns)          | empty page (no ledger time is before)  |
 * | start_time after the ledger's last possible time | empty page                             |
 * | end_time after the ledger's last possible time   | unbounded above                        |
 * | page cursor outside the ledger's timestamps      | INVALID_ARGUMENT on page_token         |
 */
import type { Violation } from "./violations.js";

/** TigerBeetle timestamps are ns since the epoch, unique, in 1..2^63-1 (year 2262). */
export const LEDGER_TIMESTAMP_MIN_NS = 1n;
export const LEDGER_TIMESTAMP_MAX_NS = (1n << 63n) - 1n;

/** google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z. */
export const TIMESTAMP_SECONDS_MIN = -62_135_596_800n;
export const TIMESTAMP_SECONDS_MAX = 253_402_300_799n;
const NS_PER_S = 1_000_000_000n;

/** The shape of a google.protobuf.Timestamp (seconds since the epoch, nanos 0..999,999,999). */
export interface TimestampLike {
  readonly seconds: bigint;
  readonly nanos: number;
}

/**
 * A validated request range in ns since the epoch, half-open [start_ns, end_ns); null = unbounded
 * on that side. Values may lie outside the ledger's timestamps (before 1970, after 2262).
 */
export interface TimeRange {
  readonly start_ns: bigint | null;
  readonly end_ns: bigint | null;
}

/** What to ask the ledger: nothing (the answer is an empty page), or inclusive bounds (0 = open). */
export type LedgerTimeWindow =
  | { readonly empty: true }
  | { readonly empty: false; readonly timestamp_min: bigint; readonly timestamp_max: bigint };

/** A Timestamp -> ns since the epoch; null (after pushing a violation on `field`) if invalid. */
export function timestampToNs(t: TimestampLike, field: string, violations: Violation[]): bigint | null {
  const validNanos = Number.isInteger(t.nanos) && t.nanos >= 0 && t.nanos <= 999_999_999;
  if (t.seconds < TIMESTAMP_SECONDS_MIN || t.seconds > TIMESTAMP_SECONDS_MAX || !validNanos) {
    violations.push({
      field,
      description:
        "must be a valid google.protobuf.Timestamp (0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z, nanos 0 to 999999999)",
    });
    return null;
  }
  return t.seconds * NS_PER_S + BigInt(t.nanos);
}

/**
 * Validate a request's [start_time, end_time). Pushes a violation naming `start_time` /
 * `end_time` for an invalid Timestamp, and on `end_time` when it is before `start_time`. An equal
 * pair is a valid empty range.
 */
export function parseTimeRange(
  start: TimestampLike | undefined,
  end: TimestampLike | undefined,
  violations: Violation[],
): TimeRange {
  const start_ns = start === undefined ? null : timestampToNs(start, "start_time", violations);
  const end_ns = end === undefined ? null : timestampToNs(end, "end_time", violations);
  if (start_ns !== null && end_ns !== null && end_ns < start_ns) {
    violations.push({ field: "end_time", description: "must not be before start_time" });
  }
  return { start_ns, end_ns };
}

/**
 * The ledger filter bounds for one page of a newest-first listing: entries in `range` and
 * strictly before `before_ns` (the page cursor; 0n on the first page). Pushes a violation on
 * `page_token` when the cursor is not a ledger timestamp (no token we issue carries one).
 * The result always satisfies the ledger's filter rules: bounds in 0 or 1..2^63-1, min <= max.
 */
export function ledgerTimeWindow(range: TimeRange, before_ns: bigint, violations: Violation[]): LedgerTimeWindow {
  if (before_ns !== 0n && (before_ns < LEDGER_TIMESTAMP_MIN_NS || before_ns > LEDGER_TIMESTAMP_MAX_NS)) {
    violations.push({ field: "page_token", description: "must be a next_page_token returned for the same request filters" });
    return { empty: true };
  }
  // Inclusive lower bound; null = open.
  let min: bigint | null = range.start_ns;
  if (min !== null && min <= LEDGER_TIMESTAMP_MIN_NS) min = null;
  if (min !== null && min > LEDGER_TIMESTAMP_MAX_NS) return { empty: true };
  // Inclusive upper bound: the smaller exclusive end, minus one; null = open.
  const ends = [range.end_ns, before_ns === 0n ? null : before_ns].filter((e): e is bigint => e !== null);
  let max: bigint | null = ends.length === 0 ? null : ends.reduce((a, b) => (a < b ? a : b)) - 1n;
  if (max !== null && max < LEDGER_TIMESTAMP_MIN_NS) return { empty: true };
  if (max !== null && max >= LEDGER_TIMESTAMP_MAX_NS) max = null;
  if (min !== null && max !== null && min > max) return { empty: true };
  const window = { empty: false as const, timestamp_min: min ?? 0n, timestamp_max: max ?? 0n };
  assertLedgerBound(window.timestamp_min);
  assertLedgerBound(window.timestamp_max);
  return window;
}

function assertLedgerBound(ns: bigint): void {
  if (ns !== 0n && (ns < LEDGER_TIMESTAMP_MIN_NS || ns > LEDGER_TIMESTAMP_MAX_NS)) {
    throw new Error(`time window bound ${ns} outside the ledger's timestamps`);
  }
}
