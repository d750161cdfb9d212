/**
 * The ledger accounts of settlement, per rail (issue 13; docs/adr/0085-settlement-framework.md).
 *
 * Each rail has three accounts on the USD ledger:
 * - rail inbound (code 400, exists already): debited by every verified deposit, so its debit
 *   balance is what arrived on the rail;
 * - rail outbound (code 410, exists already): credited by every posted payout net, so its credit
 *   balance is what left on the rail (USDC rails: exactly the USDC the hot wallet sent);
 * - rail fees (code 420, new): credited by the fees authors paid for payouts on the rail, which
 *   fund the rail's network fees (gas, rent, routing). The network fees actually paid are
 *   recorded by the control plane and compared by rail reconciliation.
 * All three are unbounded platform accounts without history (CDC has their movement).
 */
import { AccountFlags, type Account } from "tigerbeetle-node";
import { AccountCode, Ledger, Rail, type RailName } from "../codes.js";
import { railAccount } from "../accounts.js";
import { newAccount } from "../records.js";
import { railFeesAccountId } from "./ids.js";

export { railAccountId } from "../accounts.js";

/** A rail's fee account (code rail_fees, user_data_32 = rail). */
export function railFeesAccount(rail: RailName): Account {
  return newAccount({
    id: railFeesAccountId(rail),
    ledger: Ledger.usd_micro,
    code: AccountCode.rail_fees,
    flags: AccountFlags.none,
    user_data_32: Rail[rail],
  });
}

/**
 * Every settlement account of the given rails, to create at start-up beside the platform
 * accounts (idempotent: `exists` is success). Includes inbound and outbound, which
 * startupPlatformAccounts also creates, so either list alone is complete.
 */
export function settlementAccounts(rails: readonly RailName[]): Account[] {
  return rails.flatMap((r) => [railAccount("rail_inbound", r), railAccount("rail_outbound", r), railFeesAccount(r)]);
}
