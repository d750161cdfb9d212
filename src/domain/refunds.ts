/**
 * Refunds of settled sessions (issue 17, docs/adr/0112-refunds-and-author-debt.md). Pure: ids,
 * accounts and the one linked chain of a refund.
 *
 * A refund of X micro-USD of a session that charged C (= author share A + platform fee P):
 *   platform part p = floor(X * P / C), author part a = X - p (the fee's rounding rule: the
 *   platform rounds down, ADR 0034's remainder side).
 * One chain, all or nothing:
 *   1. refundable(session) -> operator, X            (ledger 91; the refundable account was credited
 *      once with C and has debits_must_not_exceed_credits: total refunded <= C, in the ledger)
 *   2. author debt -> author earnings, a              (the author's debt grows by a for a moment)
 *   3. author earnings -> agent wallet, a             (always covered: 2 just put a there)
 *   4. author earnings -> author debt, balancing_debit | balancing_credit, AMOUNT_MAX
 *      (repays the debt with what the earnings have available, never more than the debt: so the
 *      debt left is exactly the shortfall a - available when the author was already paid out)
 *   5. platform revenue -> agent wallet, p
 * Every chain that credits an author's earnings ends with the same repayment event (Doff), so
 * while an author owes anything their earnings have nothing available and a payout (a debit of
 * the earnings) is refused by the ledger itself.
 */
import { AccountFlags, TransferFlags, type Account, type Transfer } from "tigerbeetle-node";
import { AMOUNT_MAX_MICRO } from "./accounts.js";
import { AccountCode, Ledger, TransferCode } from "./codes.js";
import { deterministicId, hexIdDeriver, idToHex } from "./ids.js";
import { limitOperatorId } from "./limits.js";
import { newAccount, newTransfer } from "./records.js";

/** Most author debt ids remembered (every Doff chain names one; each costs a SHA-256). */
const AUTHOR_DEBT_MEMO_MAX = 10_000;
const authorDebtMemo = new Map<bigint, bigint>();

/** The debt account of an author, keyed by their earnings account id (user_data_128). Memoized. */
export function authorDebtId(earnings_id: bigint): bigint {
  let id = authorDebtMemo.get(earnings_id);
  if (id === undefined) {
    id = deterministicId("account", "author_debt", idToHex(earnings_id));
    if (authorDebtMemo.size >= AUTHOR_DEBT_MEMO_MAX) authorDebtMemo.clear();
    authorDebtMemo.set(earnings_id, id);
  }
  return id;
}
export function authorDebtAccount(earnings_id: bigint): Account {
  return newAccount({ id: authorDebtId(earnings_id), ledger: Ledger.usd_micro, code: AccountCode.author_debt, flags: AccountFlags.history, user_data_128: earnings_id });
}

/** A session's refundable-amount account (ledger spend_limit). */
export function refundableId(session_id: bigint): bigint {
  return deterministicId("account", "session_refundable", idToHex(session_id));
}
export function refundableAccount(session_id: bigint): Account {
  return newAccount({
    id: refundableId(session_id),
    ledger: Ledger.spend_limit,
    code: AccountCode.session_refundable,
    flags: AccountFlags.debits_must_not_exceed_credits | AccountFlags.history,
    user_data_128: session_id,
  });
}
/** The one-time funding of the refundable account with the session's charge (fixed id). */
export function refundableFunding(session_id: bigint, charge_micro: bigint): Transfer {
  return newTransfer({
    id: deterministicId("transfer", "refundable_funding", idToHex(session_id)),
    debit_account_id: limitOperatorId(),
    credit_account_id: refundableId(session_id),
    amount: charge_micro,
    user_data_128: session_id,
    ledger: Ledger.spend_limit,
    code: TransferCode.refundable_funding,
  });
}

/** The refund's id: (session, idempotency key). */
export function refundId(session_id: bigint, idempotency_key: string): bigint {
  return deterministicId("transfer", "refund", idToHex(session_id), idempotency_key);
}

/** deterministicId("transfer", "author_debt_repayment", hex) in one SHA-256 call (every Doff derives one). */
const repaymentIdOfHex = hexIdDeriver("transfer", "author_debt_repayment");

/** The id of the repayment event of the chain whose base id is `base_id` (ADR 0112). */
export function debtRepaymentId(base_id: bigint): bigint {
  return repaymentIdOfHex(idToHex(base_id));
}

/** The repayment event that ends every chain crediting `earnings_id` (id derived from the chain's `base_id`). */
export function planDebtRepayment(base_id: bigint, earnings_id: bigint, user_data_128: bigint): Transfer {
  return newTransfer({
    id: debtRepaymentId(base_id),
    debit_account_id: earnings_id,
    credit_account_id: authorDebtId(earnings_id),
    amount: AMOUNT_MAX_MICRO,
    user_data_128,
    ledger: Ledger.usd_micro,
    code: TransferCode.author_debt_repayment,
    flags: TransferFlags.balancing_debit | TransferFlags.balancing_credit,
  });
}

export interface RefundSplit {
  author_micro: bigint;
  platform_micro: bigint;
}

/** Split X of a charge (author A + platform P) in the charge's proportions; the platform rounds down. */
export function splitRefund(amount_micro: bigint, author_charge_micro: bigint, platform_charge_micro: bigint): RefundSplit {
  const charge = author_charge_micro + platform_charge_micro;
  if (amount_micro <= 0n || amount_micro > charge) throw new RangeError(`refund ${amount_micro} outside 1..${charge}`);
  const platform_micro = (amount_micro * platform_charge_micro) / charge;
  const s = { author_micro: amount_micro - platform_micro, platform_micro };
  if (s.author_micro + s.platform_micro !== amount_micro || s.author_micro > author_charge_micro || s.platform_micro > platform_charge_micro) {
    throw new Error("refund split is not exact");
  }
  return s;
}

export interface RefundInput {
  id: bigint;
  session_id: bigint;
  wallet_id: bigint;
  earnings_id: bigint;
  platform_revenue_id: bigint;
  amount_micro: bigint;
  split: RefundSplit;
}

/** Transfer ids of a refund's chain, derived from its id. */
export function refundTransferIds(id: bigint) {
  const d = (name: string) => deterministicId("transfer", "refund", name, idToHex(id));
  return { counted: id, debt: d("author_debt"), author: d("author"), platform: d("platform"), repayment: debtRepaymentId(id) };
}

/** The refund chain (see the file comment); index 0 is the refundable check. */
export function planRefund(r: RefundInput): Transfer[] {
  const ids = refundTransferIds(r.id);
  const usd = { ledger: Ledger.usd_micro, user_data_128: r.session_id };
  const chain: Transfer[] = [
    newTransfer({ id: ids.counted, debit_account_id: refundableId(r.session_id), credit_account_id: limitOperatorId(), amount: r.amount_micro, user_data_128: r.session_id, ledger: Ledger.spend_limit, code: TransferCode.refund_counted }),
  ];
  if (r.split.author_micro > 0n) {
    chain.push(
      newTransfer({ ...usd, id: ids.debt, debit_account_id: authorDebtId(r.earnings_id), credit_account_id: r.earnings_id, amount: r.split.author_micro, code: TransferCode.author_debt }),
      newTransfer({ ...usd, id: ids.author, debit_account_id: r.earnings_id, credit_account_id: r.wallet_id, amount: r.split.author_micro, code: TransferCode.refund_author }),
      planDebtRepayment(r.id, r.earnings_id, r.session_id),
    );
  }
  if (r.split.platform_micro > 0n) {
    chain.push(newTransfer({ ...usd, id: ids.platform, debit_account_id: r.platform_revenue_id, credit_account_id: r.wallet_id, amount: r.split.platform_micro, code: TransferCode.refund_platform }));
  }
  for (let i = 0; i < chain.length - 1; i++) chain[i]!.flags |= TransferFlags.linked;
  return chain;
}
