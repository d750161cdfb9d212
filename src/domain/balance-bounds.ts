/**
 * The issuance limit: no micro-USD amount the ledger holds can leave the API's range
 * (0..2^63-1, common.proto), enforced inside the ledger (docs/adr/0055-issuance-limit.md).
 *
 * Pure: no I/O. Every transfer that brings money INTO ledger 1 (a deposit from a rail or the
 * platform operator, a postpaid credit line grant or increase, a soft-mode overrun charged as
 * debt in the Doff chain) is submitted in one linked chain
 * with an `issuance_limit` transfer of the same amount on its own ledger, from a control account
 * (`debits_must_not_exceed_credits`) that was funded once with 2^63-1. The ledger therefore
 * refuses, atomically and whatever the number of daemons, the issuance that would take the total
 * ever issued past 2^63-1 (`exceeds_credits` on the control account). Money inside ledger 1 only
 * moves along acyclic paths (wallet -> escrow -> earnings/revenue -> rail outbound; a credit line
 * given back is re-issued when granted again), so no account's lifetime debits or credits,
 * pending or posted, can exceed the total issued, hence 2^63-1.
 *
 * The pattern is TigerBeetle's control/operator-account recipe
 * (https://docs.tigerbeetle.com/coding/recipes/balance-bounds/ and
 * .../balance-invariant-transfers/): a control account with a balance invariant, funded by an
 * operator account, touched in the same linked chain as the transfer it limits.
 */
import { AccountFlags, CreateTransferStatus, TransferFlags, type Account, type Transfer } from "tigerbeetle-node";
import { AMOUNT_MAX_MICRO, type Balances } from "./accounts.js";
import { AccountCode, Ledger, TransferCode } from "./codes.js";
import { deterministicId, idToHex } from "./ids.js";
import { newAccount, newTransfer } from "./records.js";
import { splitRevenue, type Settlement } from "./split.js";

/** The most micro-USD that can ever be issued into ledger 1: the API's amount range (int64 max). */
export const ISSUANCE_LIMIT_MICRO = AMOUNT_MAX_MICRO;

export const issuanceLimitOperatorId = (): bigint => deterministicId("account", "issuance_limit_operator", "platform");
export const issuanceLimitControlId = (): bigint => deterministicId("account", "issuance_limit_control", "platform");
export const issuanceLimitIssuedId = (): bigint => deterministicId("account", "issuance_limit_issued", "platform");

/** The issuance limit's three accounts (ledger `issuance_limit`); creating them again is `exists`. */
export function issuanceLimitAccounts(): Account[] {
  const ledger = Ledger.issuance_limit;
  return [
    newAccount({ id: issuanceLimitOperatorId(), ledger, code: AccountCode.issuance_limit_operator, flags: AccountFlags.none }),
    newAccount({
      id: issuanceLimitControlId(),
      ledger,
      code: AccountCode.issuance_limit_control,
      flags: AccountFlags.debits_must_not_exceed_credits,
    }),
    newAccount({ id: issuanceLimitIssuedId(), ledger, code: AccountCode.issuance_limit_issued, flags: AccountFlags.none }),
  ];
}

/**
 * The one-time funding of the control account with the whole limit. Its id is fixed, so every
 * daemon may submit it before its first issuance: the ledger creates it once and answers
 * `exists` after that. Every account involved ends with totals <= 2^63-1.
 */
export function issuanceLimitFunding(): Transfer {
  return newTransfer({
    id: deterministicId("transfer", "issuance_limit_funding", "platform"),
    debit_account_id: issuanceLimitOperatorId(),
    credit_account_id: issuanceLimitControlId(),
    amount: ISSUANCE_LIMIT_MICRO,
    ledger: Ledger.issuance_limit,
    code: TransferCode.issuance_limit_funding,
  });
}

/** The id of the limit transfer that goes with issuing transfer `issuingId` (derived, so retries match). */
export function issuanceLimitTransferId(issuingId: bigint): bigint {
  return deterministicId("transfer", "issuance_limit", idToHex(issuingId));
}

/**
 * `issuing` (a single-phase ledger-1 transfer that brings money in) as a linked chain with its
 * limit transfer: [issuing (linked), control -> issued for the same amount]. The issuing transfer
 * comes first so that a retry or a conflicting reuse of its id is answered by the issuing
 * transfer itself (`exists`, `exists_with_different_*`), exactly as without the limit.
 * Throws on a transfer that cannot be an issuance (a programming error).
 */
export function withIssuanceLimit(issuing: Transfer): Transfer[] {
  if (issuing.ledger !== Ledger.usd_micro) throw new Error(`issuance on ledger ${issuing.ledger}, want ${Ledger.usd_micro}`);
  if (issuing.flags !== TransferFlags.none) throw new Error(`issuance with flags ${issuing.flags}, want none`);
  if (issuing.amount < 0n || issuing.amount > ISSUANCE_LIMIT_MICRO) throw new Error(`issuance amount ${issuing.amount} out of range`);
  return [{ ...issuing, flags: TransferFlags.linked }, issuanceLimitTransfer(issuing, { linked: false })];
}

/**
 * The limit transfer for `issuing` alone, for plans that issue inside a longer linked chain (a
 * soft-mode overrun recorded as debt: `planDoff`, ADR 0055). Place it right after the
 * issuing event; `linked` as the rest of the chain requires. The control account must have been
 * funded before the first such chain (`issuanceLimitFunding`), or the limit transfer fails and
 * its id is `id_already_failed` for good.
 */
export function issuanceLimitTransfer(issuing: Transfer, opts: { linked: boolean }): Transfer {
  return newTransfer({
    id: issuanceLimitTransferId(issuing.id),
    debit_account_id: issuanceLimitControlId(),
    credit_account_id: issuanceLimitIssuedId(),
    amount: issuing.amount,
    user_data_128: issuing.id,
    ledger: Ledger.issuance_limit,
    code: TransferCode.issuance_limit,
    flags: opts.linked ? TransferFlags.linked : TransferFlags.none,
  });
}

/** What may still be issued: the control account's available balance (0 before funding). */
export function issuanceHeadroomMicro(control: Balances): bigint {
  return control.credits_posted - control.debits_posted - control.debits_pending;
}

/**
 * The ledger's answer to a `withIssuanceLimit` chain:
 * - `created`: both events created;
 * - `issuing_failed`: the issuing transfer's own status (`exists` included: a retry);
 * - `limit_exceeded`: the chain would issue past the limit (`exceeds_credits` on the control
 *   account, or `id_already_failed` when the same request was refused that way before: the
 *   headroom never grows, so the answer is the same);
 * - `limit_failed`: any other status of the limit transfer (the limit accounts are missing or
 *   differ: a deployment error).
 * Throws when the result count does not match the chain (a port bug).
 */
export type IssuanceOutcome =
  | { readonly kind: "created" }
  | { readonly kind: "issuing_failed"; readonly status: CreateTransferStatus }
  | { readonly kind: "limit_exceeded" }
  | { readonly kind: "limit_failed"; readonly status: CreateTransferStatus };

export function issuanceOutcome(results: readonly { status: CreateTransferStatus }[]): IssuanceOutcome {
  if (results.length !== 2) throw new Error(`issuance chain: expected 2 results, got ${results.length}`);
  const [issuing, limit] = results as [{ status: CreateTransferStatus }, { status: CreateTransferStatus }];
  if (issuing.status === CreateTransferStatus.created && limit.status === CreateTransferStatus.created) {
    return { kind: "created" };
  }
  if (issuing.status !== CreateTransferStatus.linked_event_failed && issuing.status !== CreateTransferStatus.created) {
    return { kind: "issuing_failed", status: issuing.status };
  }
  if (limit.status === CreateTransferStatus.exceeds_credits || limit.status === CreateTransferStatus.id_already_failed) {
    return { kind: "limit_exceeded" };
  }
  return { kind: "limit_failed", status: limit.status };
}

/** The violation description for an issuance refused by the limit. */
export function issuanceLimitRule(headroomMicro: bigint): string {
  return (
    `would take the micro-USD ever issued into the ledger past ${ISSUANCE_LIMIT_MICRO}, the largest amount the API ` +
    `can represent; at most ${headroomMicro < 0n ? 0n : headroomMicro} can still be issued`
  );
}

/**
 * A soft-mode settlement whose overrun debt (agent debt -> escrow, an issuance) fits the
 * issuance limit's remaining `headroom_micro`: the debt is at most the headroom, the overrun
 * beyond it is unbilled (nobody is charged for it, like a live-mode overrun above the hold), and
 * the author / platform split is taken on what is charged (posted + debt), so
 * author + platform + refund = hold + debt still holds. A Doff is never refused for the limit: the
 * usage happened (ADR 0034, ADR 0055). Returns `s` itself when the debt fits.
 * `fee_bps`: the platform fee the settlement was priced with (0..10000).
 */
export function capDebtAtIssuanceHeadroom(s: Settlement, headroom_micro: bigint, fee_bps: number): Settlement {
  const room = headroom_micro > 0n ? headroom_micro : 0n;
  if (s.debt_micro <= room) return s;
  const moved = splitRevenue(s.posted_micro + room, BigInt(fee_bps));
  const capped: Settlement = {
    ...s,
    debt_micro: room,
    unbilled_micro: s.unbilled_micro + (s.debt_micro - room),
    author_micro: moved.author_micro,
    platform_micro: moved.platform_micro,
  };
  if (capped.author_micro + capped.platform_micro + capped.refund_micro !== capped.hold_micro + capped.debt_micro) {
    throw new Error("capped settlement is not zero-sum on the escrow");
  }
  return capped;
}
