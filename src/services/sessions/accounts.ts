/**
 * The accounts sessions need before a chain may name them (TigerBeetle never reuses an id that
 * failed, so every account a chain touches is created first; ADR 0032): author earnings, an
 * agent's debt account (soft mode) and each session's usage meters. Creating is idempotent (`exists` is
 * success); what exists is remembered in SessionState so hot paths skip it.
 */
import { AccountFlags, CreateAccountStatus, QueryFilterFlags, type Account } from "tigerbeetle-node";
import { agentDebtId, agentWalletId, authorEarningsAccount, authorEarningsId } from "../../domain/accounts.js";
import { authorDebtAccount } from "../../domain/refunds.js";
import { AccountCode, Ledger } from "../../domain/codes.js";
import { idToHex } from "../../domain/ids.js";
import { newAccount } from "../../domain/records.js";
import { sessionMeterAccounts } from "../../domain/sessions.js";
import { ledgerRejected } from "../errors.js";
import type { SessionState } from "./state.js";

/** Create `accounts`; created/exists is success, anything else is LEDGER_REJECTED. */
export async function createAccountsOk(s: SessionState, accounts: Account[], what: string): Promise<void> {
  const res = await s.ledger.createAccounts(accounts);
  for (const [i, r] of res.entries()) {
    if (r.status !== CreateAccountStatus.created && r.status !== CreateAccountStatus.exists) {
      throw ledgerRejected(`create ${what} ${idToHex(accounts[i]!.id)}`, CreateAccountStatus[r.status] ?? String(r.status));
    }
  }
}

/** Most sessions remembered as metered (memory bound). */
const METERED_MAX = 200_000;

/**
 * The session's usage meters (ADR 0036); they must exist before any transfer names them: a
 * transfer refused for a missing account burns its id for good (id_already_failed).
 */
export async function ensureSessionMeters(s: SessionState, session_id: bigint, wallet_id: bigint): Promise<void> {
  if (s.metered.has(session_id)) return;
  const meters = sessionMeterAccounts(session_id, wallet_id);
  const res = await s.ledger.createAccounts(meters);
  for (const [i, r] of res.entries()) {
    // exists_with_different_flags: the meter exists and was closed (the one flag it can gain).
    if (r.status !== CreateAccountStatus.created && r.status !== CreateAccountStatus.exists && r.status !== CreateAccountStatus.exists_with_different_flags) {
      throw ledgerRejected(`create session usage meter ${idToHex(meters[i]!.id)}`, CreateAccountStatus[r.status] ?? String(r.status));
    }
  }
  markMetered(s, session_id);
}

/** Remember that the session's meters exist. */
export function markMetered(s: SessionState, session_id: bigint): void {
  if (s.metered.size >= METERED_MAX) s.metered.clear();
  s.metered.add(session_id);
}

/** The soft-mode debt account of an agent (user_data_128 = wallet id, so it is found from the hold). */
export async function ensureDebt(s: SessionState, agent_id: string): Promise<void> {
  const wallet = agentWalletId(agent_id);
  if (s.debtReady.has(wallet)) return;
  await createAccountsOk(
    s,
    [newAccount({ id: agentDebtId(agent_id), ledger: Ledger.usd_micro, code: AccountCode.agent_debt, flags: AccountFlags.history, user_data_128: wallet })],
    "agent debt account",
  );
  s.debtReady.add(wallet);
}

/** Earnings accounts of `authors`. */
export async function ensureAuthors(s: SessionState, authors: string[]): Promise<void> {
  const missing = authors.filter((a) => !s.authorsReady.has(a));
  if (missing.length === 0) return;
  // With each earnings account its debt account (ADR 0112): every Doff chain names it.
  await createAccountsOk(s, missing.flatMap((a) => [authorEarningsAccount(a), authorDebtAccount(authorEarningsId(a))]), "author earnings");
  for (const a of missing) s.authorsReady.add(a);
}

/** The debt account of the agent owning `wallet` (looked up by user_data_128 when the agent id is unknown). */
export async function debtAccountOf(s: SessionState, wallet: bigint): Promise<bigint | null> {
  const found = await s.ledger.queryAccounts({
    user_data_128: wallet,
    user_data_64: 0n,
    user_data_32: 0,
    ledger: Ledger.usd_micro,
    code: AccountCode.agent_debt,
    timestamp_min: 0n,
    timestamp_max: 0n,
    limit: 1,
    flags: QueryFilterFlags.none,
  });
  return found[0]?.id ?? null;
}
