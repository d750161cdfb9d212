/**
 * Settlement plans: the ledger transfers a service submits for a payout hold, its post on
 * confirmation, its void on failure or cancel, and a verified deposit's credit; and how to read
 * the ledger's answers (issue 13 "Ledger flows"; seed 004 §4.3; docs/adr/0085).
 *
 * Pure: (state + request) → transfers; (results) → typed outcome. Layout on the USD ledger:
 *
 *   hold      earnings → rail outbound   net_micro   pending, timeout 0   code payout
 *   fee_hold  earnings → rail fees       fee_micro   pending, timeout 0   code payout_fee
 *   (linked: both or neither; together they can never take more than the earnings' credits,
 *    because earnings keep debits_must_not_exceed_credits and pending debits count)
 *   post / fee_post   post both (fee_post may post less than held: a Lightning routing fee cap)
 *   void / fee_void   void both; void.user_data_64 = why (1 cancelled, 2 failed); linked to the
 *                     author debt repayment (ADR 0112): returned money repays a refund's debt first
 *
 *   deposit   rail inbound → agent wallet   amount_micro   code deposit   id = deposit id
 *
 * Every transfer carries user_data_128 = payout id / deposit id and user_data_32 = rail.
 * NO timeout on the holds: a late confirmation must never meet an automatic void after the money
 * left on the rail (issue 13).
 */
import { CreateTransferStatus, TransferFlags, type CreateTransferResult, type Transfer } from "tigerbeetle-node";
import { AccountCode, Ledger, Rail, TransferCode, type RailName } from "../codes.js";
import { AMOUNT_MAX_MICRO, authorEarningsId, railAccountId } from "../accounts.js";
import { newTransfer } from "../records.js";
import { planDebtRepayment } from "../refunds.js";
import { depositCreditId, payoutId, payoutTransferIds, railFeesAccountId, type DepositKey } from "./ids.js";

/** Why a payout hold was voided, stored in the void's user_data_64 (0 is never used). */
export const PayoutVoidCause = { cancelled: 1n, failed: 2n } as const;
export type PayoutVoidCauseName = keyof typeof PayoutVoidCause;

/** A payout's hold as the ledger holds it: everything post and void plans need. */
export interface PayoutHold {
  payout_id: bigint;
  rail: RailName;
  earnings_id: bigint;
  net_micro: bigint;
  fee_micro: bigint;
}

function railName(n: number): RailName {
  const r = (Object.keys(Rail) as RailName[]).find((k) => Rail[k] === n);
  if (r === undefined) throw new Error(`user_data_32 ${n} is not a rail`);
  return r;
}

function assertAmount(field: string, v: bigint, min: bigint): void {
  if (v < min || v > AMOUNT_MAX_MICRO) throw new RangeError(`${field}: must be in [${min}, 2^63-1], got ${v}`);
}

// ---- payout hold -------------------------------------------------------------------------------

/**
 * The hold that queues a confirmed payout: two linked pending transfers without timeout, from
 * the author's earnings, net to the rail's outbound account and fee to its fee account. The
 * payout id is derived from (author_id, idempotency_key), so a retry answers `exists`.
 * Throws RangeError for net <= 0, fee < 0 or amounts above 2^63-1 (the quote guarantees them).
 */
export function payoutHoldPlan(args: {
  author_id: string;
  idempotency_key: string;
  rail: RailName;
  net_micro: bigint;
  fee_micro: bigint;
}): { hold: PayoutHold; transfers: Transfer[] } {
  assertAmount("net_micro", args.net_micro, 1n);
  assertAmount("fee_micro", args.fee_micro, 0n);
  assertAmount("amount_micro", args.net_micro + args.fee_micro, 1n);
  const id = payoutId(args.author_id, args.idempotency_key);
  const ids = payoutTransferIds(id);
  const hold: PayoutHold = {
    payout_id: id,
    rail: args.rail,
    earnings_id: authorEarningsId(args.author_id),
    net_micro: args.net_micro,
    fee_micro: args.fee_micro,
  };
  const common = { ledger: Ledger.usd_micro, user_data_128: id, user_data_32: Rail[args.rail], timeout: 0 };
  return {
    hold,
    transfers: [
      newTransfer({
        ...common,
        id: ids.hold,
        debit_account_id: hold.earnings_id,
        credit_account_id: railAccountId("rail_outbound", args.rail),
        amount: args.net_micro,
        code: TransferCode.payout,
        flags: TransferFlags.pending | TransferFlags.linked,
      }),
      newTransfer({
        ...common,
        id: ids.fee_hold,
        debit_account_id: hold.earnings_id,
        credit_account_id: railFeesAccountId(args.rail),
        amount: args.fee_micro,
        code: TransferCode.payout_fee,
        flags: TransferFlags.pending,
      }),
    ],
  };
}

/**
 * Rebuilds a PayoutHold from the two pending transfers read back from the ledger, checking that
 * they are exactly what payoutHoldPlan writes (ids, codes, accounts, pending, no timeout).
 * Throws on anything else: a transfer under a payout id that is not a payout is corruption.
 */
export function readPayoutHold(hold: Transfer, fee_hold: Transfer): PayoutHold {
  const ids = payoutTransferIds(hold.id);
  const rail = railName(hold.user_data_32);
  const problems: string[] = [];
  if (fee_hold.id !== ids.fee_hold) problems.push("fee hold id is not derived from the hold id");
  if (hold.code !== TransferCode.payout || fee_hold.code !== TransferCode.payout_fee) problems.push("codes");
  if (!(hold.flags & TransferFlags.pending) || !(fee_hold.flags & TransferFlags.pending)) problems.push("not pending");
  if (hold.timeout !== 0 || fee_hold.timeout !== 0) problems.push("a payout hold must have no timeout");
  if (hold.credit_account_id !== railAccountId("rail_outbound", rail)) problems.push("hold does not credit the rail outbound account");
  if (fee_hold.credit_account_id !== railFeesAccountId(rail)) problems.push("fee hold does not credit the rail fees account");
  if (fee_hold.debit_account_id !== hold.debit_account_id) problems.push("hold and fee hold debit different accounts");
  if (hold.user_data_128 !== hold.id || fee_hold.user_data_128 !== hold.id) problems.push("user_data_128 is not the payout id");
  if (problems.length > 0) throw new Error(`not a payout hold (${problems.join("; ")})`);
  return { payout_id: hold.id, rail, earnings_id: hold.debit_account_id, net_micro: hold.amount, fee_micro: fee_hold.amount };
}

// ---- post and void -----------------------------------------------------------------------------

/**
 * Posts a payout on the rail's confirmation at finality: net to the rail outbound account, and
 * the fee (all of it, or `fee_posted_micro` <= fee when the rail charges less than the held cap;
 * the rest returns to the author). Linked: both or neither. Deterministic ids: a retry is `exists`.
 */
export function payoutPostPlan(hold: PayoutHold, options: { fee_posted_micro?: bigint } = {}): Transfer[] {
  const fee_posted = options.fee_posted_micro ?? hold.fee_micro;
  if (fee_posted < 0n || fee_posted > hold.fee_micro) {
    throw new RangeError(`fee_posted_micro: must be in [0, ${hold.fee_micro}] (the fee held), got ${fee_posted}`);
  }
  const ids = payoutTransferIds(hold.payout_id);
  const common = { ledger: Ledger.usd_micro, user_data_128: hold.payout_id, user_data_32: Rail[hold.rail] };
  return [
    newTransfer({
      ...common,
      id: ids.post,
      pending_id: ids.hold,
      debit_account_id: hold.earnings_id,
      credit_account_id: railAccountId("rail_outbound", hold.rail),
      amount: hold.net_micro,
      code: TransferCode.payout,
      flags: TransferFlags.post_pending_transfer | TransferFlags.linked,
    }),
    newTransfer({
      ...common,
      id: ids.fee_post,
      pending_id: ids.fee_hold,
      debit_account_id: hold.earnings_id,
      credit_account_id: railFeesAccountId(hold.rail),
      amount: fee_posted,
      code: TransferCode.payout_fee,
      flags: TransferFlags.post_pending_transfer,
    }),
  ];
}

/**
 * Voids a payout (definite failure, or the author cancelled it while queued): the whole amount
 * returns to the author's earnings. The cause is recorded in user_data_64, and both causes share
 * one void id: a cancel racing a failure is decided by the ledger (the loser gets
 * exists_with_different_user_data_64).
 *
 * Like every chain that credits an author's earnings (ADR 0112), the void ends with the author
 * debt repayment event: money returning while a refund's debt is outstanding repays the debt
 * first, so a new payout can never use it. `earnings_id` is the hold's debit account; the author's
 * debt account (authorDebtAccount(earnings_id)) must exist, or the whole chain fails.
 */
export function payoutVoidPlan(payout_id: bigint, cause: PayoutVoidCauseName, earnings_id: bigint): Transfer[] {
  const ids = payoutTransferIds(payout_id);
  const common = { ledger: 0, amount: 0n, user_data_128: payout_id, user_data_64: PayoutVoidCause[cause] };
  return [
    newTransfer({ ...common, id: ids.void, pending_id: ids.hold, flags: TransferFlags.void_pending_transfer | TransferFlags.linked }),
    newTransfer({ ...common, id: ids.fee_void, pending_id: ids.fee_hold, flags: TransferFlags.void_pending_transfer | TransferFlags.linked }),
    planDebtRepayment(ids.void, earnings_id, payout_id),
  ];
}

// ---- deposit credit ----------------------------------------------------------------------------

/**
 * Credits a verified deposit: rail inbound → the agent wallet the source is bound to. Its id is
 * the deposit id from the canonical (chain id, tx ref, event index), so a replayed report answers
 * `exists` (credited once) and the same event reported with another wallet or amount answers
 * exists_with_different_* (refused, nothing credited). Throws RangeError on amount <= 0 or above
 * 2^63-1. Only the rail adapter's verified report may lead here (seed 004 §4.3).
 */
export function depositCreditPlan(args: { key: DepositKey; wallet_id: bigint; amount_micro: bigint }): Transfer {
  assertAmount("amount_micro", args.amount_micro, 1n);
  const id = depositCreditId(args.key);
  return newTransfer({
    id,
    debit_account_id: railAccountId("rail_inbound", args.key.rail),
    credit_account_id: args.wallet_id,
    amount: args.amount_micro,
    ledger: Ledger.usd_micro,
    code: TransferCode.deposit,
    flags: TransferFlags.none,
    user_data_128: id,
    user_data_32: Rail[args.key.rail],
  });
}

// ---- reading the ledger's answers --------------------------------------------------------------

const S = CreateTransferStatus;

function statusNames(results: readonly CreateTransferResult[]): string[] {
  return results.map((r) => S[r.status] ?? String(r.status));
}

function isExistsWithDifferent(status: CreateTransferStatus): boolean {
  return (S[status] ?? "").startsWith("exists_with_different_");
}

/** A linked chain answered by the ledger: all created, or already applied by an earlier try. */
function chainOutcome(results: readonly CreateTransferResult[], size: number): "created" | "exists" | null {
  if (results.length !== size) throw new Error(`expected ${size} results, got ${results.length}`);
  if (results.every((r) => r.status === S.created)) return "created";
  // The first event's `exists` fails the chain; the rest answer linked_event_failed or exists.
  if (results[0]!.status === S.exists && results.slice(1).every((r) => r.status === S.exists || r.status === S.linked_event_failed)) {
    return "exists";
  }
  return null;
}

export type HoldOutcome =
  | { kind: "held" | "exists" }
  | { kind: "insufficient_funds" }
  | { kind: "idempotency_key_reused"; statuses: string[] }
  | { kind: "earnings_not_found" }
  /**
   * An earlier try of this payout failed for a transient reason (exceeds_credits, account not
   * found): the ledger never reuses a failed id, so this payout id can never be held. The author
   * requests a new payout with a new key (IDEMPOTENCY_KEY_FAILED, ADR 0050).
   */
  | { kind: "idempotency_key_failed" }
  | { kind: "rejected"; statuses: string[] };

/**
 * Maps the results of payoutHoldPlan's chain (exceeds_credits → insufficient_funds, ADR 0050).
 * Note: a refusal for funds burns the failing transfer's id (TigerBeetle's id_already_failed),
 * so the next try of the same payout answers idempotency_key_failed.
 */
export function holdOutcome(results: readonly CreateTransferResult[]): HoldOutcome {
  const c = chainOutcome(results, 2);
  if (c === "created") return { kind: "held" };
  if (c === "exists") return { kind: "exists" };
  const statuses = statusNames(results);
  if (results.some((r) => r.status === S.exceeds_credits)) return { kind: "insufficient_funds" };
  if (results.some((r) => isExistsWithDifferent(r.status))) return { kind: "idempotency_key_reused", statuses };
  if (results.some((r) => r.status === S.debit_account_not_found)) return { kind: "earnings_not_found" };
  if (results.some((r) => r.status === S.id_already_failed)) return { kind: "idempotency_key_failed" };
  return { kind: "rejected", statuses };
}

export type SettleOutcome =
  | { kind: "applied" | "exists" }
  /** Posting a voided payout: money left while the ledger returned it — an alarm, never ignored. */
  | { kind: "already_voided" }
  /** Voiding a posted payout: the rail confirmed it; it cannot be failed. */
  | { kind: "already_posted" }
  /** Voiding with another cause than the void already recorded (cancel raced a failure). */
  | { kind: "voided_with_other_cause" }
  | { kind: "hold_not_found" }
  | { kind: "rejected"; statuses: string[] };

/** Maps the results of payoutPostPlan (2 events) or payoutVoidPlan (3: the repayment ends it). */
export function settleOutcome(results: readonly CreateTransferResult[]): SettleOutcome {
  const c = chainOutcome(results, results.length === 3 ? 3 : 2);
  if (c === "created") return { kind: "applied" };
  if (c === "exists") return { kind: "exists" };
  const has = (s: CreateTransferStatus): boolean => results.some((r) => r.status === s);
  if (has(S.pending_transfer_already_voided)) return { kind: "already_voided" };
  if (has(S.pending_transfer_already_posted)) return { kind: "already_posted" };
  if (has(S.exists_with_different_user_data_64)) return { kind: "voided_with_other_cause" };
  if (has(S.pending_transfer_not_found)) return { kind: "hold_not_found" };
  return { kind: "rejected", statuses: statusNames(results) };
}

export type DepositOutcome =
  | { kind: "credited" | "already_credited" }
  /** The same chain event was credited with another wallet or amount: refuse and record. */
  | { kind: "facts_mismatch"; status: string }
  | { kind: "wallet_not_found" }
  /**
   * An earlier try failed for a transient reason (wallet not found or closed): the ledger never
   * reuses a failed id, so this chain event can NEVER be credited by this path. The service must
   * look the wallet up (open, not closed) before submitting; a deposit that still lands here is
   * held for an admin (manual, audited deposit) and alarmed.
   */
  | { kind: "id_already_failed" }
  | { kind: "rejected"; status: string };

/**
 * Maps the result of depositCreditPlan. wallet_not_found burns the deposit id (TigerBeetle
 * treats account-not-found as transient), hence the look-up-first rule above.
 */
export function depositOutcome(result: CreateTransferResult): DepositOutcome {
  const name = S[result.status] ?? String(result.status);
  if (result.status === S.created) return { kind: "credited" };
  if (result.status === S.exists) return { kind: "already_credited" };
  if (isExistsWithDifferent(result.status)) return { kind: "facts_mismatch", status: name };
  if (result.status === S.credit_account_not_found) return { kind: "wallet_not_found" };
  if (result.status === S.id_already_failed) return { kind: "id_already_failed" };
  return { kind: "rejected", status: name };
}

/** True when an account code is one of a rail's settlement accounts. */
export function isRailAccountCode(code: number): boolean {
  return code === AccountCode.rail_inbound || code === AccountCode.rail_outbound || code === AccountCode.rail_fees;
}
