/**
 * Ledger objects -> ClickHouse rows (positional, in the column order below). Pure functions.
 * Kinds are decoded from src/domain/codes.ts, the one place that names ledger numbers.
 */
import { TransferFlags, type Account, type Transfer } from "tigerbeetle-node";
import { AccountCode, TransferCode } from "../domain/codes.js";
import type { Row } from "./sink.js";

const TRANSFER_KIND = new Map<number, string>(Object.entries(TransferCode).map(([k, v]) => [v, k]));
const ACCOUNT_KIND = new Map<number, string>(Object.entries(AccountCode).map(([k, v]) => [v, k]));

export function transferKind(code: number): string {
  return TRANSFER_KIND.get(code) ?? `code_${code}`;
}
export function accountKind(code: number): string {
  return ACCOUNT_KIND.get(code) ?? `code_${code}`;
}

export type Phase = "single" | "pending" | "post" | "void";
export function transferPhase(flags: number): Phase {
  if (flags & TransferFlags.pending) return "pending";
  if (flags & TransferFlags.post_pending_transfer) return "post";
  if (flags & TransferFlags.void_pending_transfer) return "void";
  return "single";
}

export const TRANSFER_COLUMNS = [
  "id", "debit_account_id", "credit_account_id", "amount", "pending_id", "user_data_128",
  "user_data_64", "user_data_32", "timeout", "ledger", "code", "flags", "timestamp", "kind", "phase",
] as const;

export function transferRow(t: Transfer): Row {
  return [
    t.id, t.debit_account_id, t.credit_account_id, t.amount, t.pending_id, t.user_data_128,
    t.user_data_64, t.user_data_32, t.timeout, t.ledger, t.code, t.flags, t.timestamp,
    transferKind(t.code), transferPhase(t.flags),
  ];
}

export const ACCOUNT_COLUMNS = [
  "id", "debits_pending", "debits_posted", "credits_pending", "credits_posted", "user_data_128",
  "user_data_64", "user_data_32", "reserved", "ledger", "code", "flags", "timestamp", "kind", "snapshot_ns",
  "as_of_ts",
] as const;

/** An account snapshot (its row also lands in account_balances, in-engine). */
export function accountRow(a: Account, snapshot_ns: bigint, as_of_ts: bigint): Row {
  return [
    a.id, a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted, a.user_data_128,
    a.user_data_64, a.user_data_32, a.reserved, a.ledger, a.code, a.flags, a.timestamp,
    accountKind(a.code), snapshot_ns, as_of_ts,
  ];
}

/** Which identity an account belongs to, by its code. */
export function identityKind(code: number): string {
  switch (code) {
    case AccountCode.agent_wallet_prepaid:
    case AccountCode.agent_wallet_postpaid:
    case AccountCode.agent_credit_line:
    case AccountCode.agent_debt:
    case AccountCode.usage_meter:
      return "agent";
    case AccountCode.author_earnings:
      return "author";
    case AccountCode.platform_revenue:
    case AccountCode.session_escrow:
    case AccountCode.platform_credit_issuer:
    case AccountCode.platform_operator:
    case AccountCode.usage_sink:
    case AccountCode.exchange:
      return "platform";
    case AccountCode.rail_inbound:
    case AccountCode.rail_outbound:
    case AccountCode.rail_fees:
      return "rail";
    default:
      return "other";
  }
}

export const IDENTITY_COLUMNS = ["kind", "identity_id", "account_id", "account_code", "ledger", "first_seen_ns"] as const;

/** The owner id is the account's user_data_128 (the account id itself when that is 0). */
export function identityRow(a: Account): Row {
  return [identityKind(a.code), a.user_data_128 !== 0n ? a.user_data_128 : a.id, a.id, a.code, a.ledger, a.timestamp];
}

export const HOLD_COLUMNS = [
  "id", "state", "debit_account_id", "credit_account_id", "amount", "user_data_128", "ledger", "code",
  "timeout_s", "deadline_ns", "resolved_by", "event_ts",
] as const;

/** tagged_transfers; the streamer writes only the synthetic `expired` rows (the rest is a view). */
export const TAGGED_COLUMNS = [
  "tag_id", "timestamp", "id", "debit_account_id", "credit_account_id", "amount", "pending_id",
  "user_data_64", "user_data_32", "timeout", "ledger", "code", "phase",
] as const;

export const CURSOR_COLUMNS = ["stream", "cursor_ts", "events_total", "updated_ns"] as const;

export const STATS_COLUMNS = [
  "time", "scope", "window_s", "events", "events_per_s", "lag_p50_ms", "lag_p99_ms", "lag_max_ms",
  "cursor_ts", "head_ts", "events_behind",
] as const;
