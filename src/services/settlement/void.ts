/**
 * Submitting a payout void (issue 17, ADR 0112): the void chain ends with the author debt
 * repayment, which needs the author's debt account. Authors created before refunds existed may
 * not have one, so it is created first (idempotent: `exists` is fine).
 */
import { CreateAccountStatus, type Client, type CreateTransferResult } from "tigerbeetle-node";
import { authorEarningsId } from "../../domain/accounts.js";
import { idToHex } from "../../domain/ids.js";
import { authorDebtAccount } from "../../domain/refunds.js";
import { payoutVoidPlan, type PayoutVoidCauseName } from "../../domain/settlement/plans.js";
import { ledgerRejected } from "../errors.js";

/**
 * Ensures `author_id`'s debt account, then submits payoutVoidPlan for `payout_id_hex` (32 hex
 * digits). Returns the ledger's results for settleOutcome. Throws ledgerRejected if the debt
 * account cannot be created.
 */
export async function submitPayoutVoid(ledger: Client, payout_id_hex: string, author_id: string, cause: PayoutVoidCauseName): Promise<CreateTransferResult[]> {
  const earnings_id = authorEarningsId(author_id);
  const debt = authorDebtAccount(earnings_id);
  const [r] = await ledger.createAccounts([debt]);
  if (r !== undefined && r.status !== CreateAccountStatus.created && r.status !== CreateAccountStatus.exists) {
    throw ledgerRejected(`create ${idToHex(debt.id)}`, CreateAccountStatus[r.status] ?? String(r.status));
  }
  return ledger.createTransfers(payoutVoidPlan(BigInt(`0x${payout_id_hex}`), cause, earnings_id));
}
