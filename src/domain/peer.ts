/**
 * Peer transfers between agent wallets (seed 004 FR-1, ADR 0111). Pure: ids and the linked
 * chain; the limits are events of the same chain (src/domain/limits.ts).
 *
 * Chain: [wallet -> wallet (the money), largest-transfer probe + void, peer volume day debit +
 * check (5), daily spending cap day debit + check (5)]: one all-or-nothing unit. The money moves
 * first so that a retry is answered by it (`exists`, `exists_with_different_*`).
 */
import { createHash } from "node:crypto";
import { TransferFlags, type Transfer } from "tigerbeetle-node";
import { AMOUNT_MAX_MICRO } from "./accounts.js";
import { Ledger, TransferCode } from "./codes.js";
import { deterministicId } from "./ids.js";
import { agentCapId, platformCapId, planDayCheck, planMaxCheck } from "./limits.js";
import { newTransfer } from "./records.js";

/** Longest memo, in characters. */
export const MEMO_MAX_CHARS = 280;

/** The transfer id of a sender's idempotency key. */
export function peerTransferId(from_agent_id: string, idempotency_key: string): bigint {
  return deterministicId("transfer", "peer", from_agent_id, idempotency_key);
}

/** 64-bit fingerprint of the memo (user_data_64): the same key with another memo is another request. */
export function memoFingerprint(memo: string): bigint {
  return createHash("sha256").update(memo, "utf8").digest().readBigUInt64BE(0);
}

export interface PeerInput {
  id: bigint;
  from_wallet_id: bigint;
  to_wallet_id: bigint;
  amount_micro: bigint;
  memo: string;
  /** The sender's day accounts for the UTC day of the transfer. */
  day_peer_account_id: bigint;
  day_spend_account_id: bigint;
}

export type PeerLimit = "peer_transfer_max" | "peer_daily_volume" | "daily_cap";

/** The chain and, per limit, the index of its failing event. Throws on sender = recipient (a programming error). */
export function planPeerTransfer(p: PeerInput): { chain: Transfer[]; checks: { index: number; limit: PeerLimit }[] } {
  if (p.from_wallet_id === p.to_wallet_id) throw new Error("peer transfer to the sender's own wallet");
  if (p.amount_micro <= 0n || p.amount_micro > AMOUNT_MAX_MICRO) throw new RangeError(`peer amount ${p.amount_micro} out of range`);
  const money = newTransfer({
    id: p.id,
    debit_account_id: p.from_wallet_id,
    credit_account_id: p.to_wallet_id,
    amount: p.amount_micro,
    user_data_64: memoFingerprint(p.memo),
    ledger: Ledger.usd_micro,
    code: TransferCode.peer_transfer,
    flags: TransferFlags.linked,
  });
  const chain = [
    money,
    ...planMaxCheck(p.id, "peer", platformCapId("peer_max"), p.amount_micro),
    ...planDayCheck({ base_id: p.id, family: "peer", day_account_id: p.day_peer_account_id, cap_account_id: platformCapId("peer_daily"), amount_micro: p.amount_micro, user_data_128: p.id }),
    ...planDayCheck({ base_id: p.id, family: "spend", day_account_id: p.day_spend_account_id, cap_account_id: agentCapId("daily", p.from_wallet_id), amount_micro: p.amount_micro, user_data_128: p.id }),
  ];
  chain[chain.length - 1]!.flags &= ~TransferFlags.linked;
  return { chain, checks: [{ index: 1, limit: "peer_transfer_max" }, { index: 3 + 2, limit: "peer_daily_volume" }, { index: 8 + 2, limit: "daily_cap" }] };
}
