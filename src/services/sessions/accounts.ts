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
import { decodeRulePin, encodeRulePin, type LedgerRulePin } from "../../domain/rule-pin.js";
import { sessionMeterAccounts, sessionMeterId, USAGE_LEDGER } from "../../domain/sessions.js";
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

/** Statuses that mean the meter exists (its flags or user_data may differ from ours). */
const METER_EXISTS = new Set<CreateAccountStatus>([
  CreateAccountStatus.created,
  CreateAccountStatus.exists,
  // The meter exists and was closed (the one flag it can gain).
  CreateAccountStatus.exists_with_different_flags,
  // The meter carries a rule pin (ADR 0124) and this call had none or another.
  CreateAccountStatus.exists_with_different_user_data_64,
  CreateAccountStatus.exists_with_different_user_data_32,
]);

/**
 * The session's usage meters (ADR 0036); they must exist before any transfer names them: a
 * transfer refused for a missing account burns its id for good (id_already_failed). `pin`: the
 * revenue-rule pin they carry when this call creates them (Don, ADR 0124); meters that exist
 * keep theirs. Returns the statuses (index = USAGE_LEDGERS_ORDER), or null when known to exist.
 */
export async function ensureSessionMeters(s: SessionState, session_id: bigint, wallet_id: bigint, pin: LedgerRulePin | null = null): Promise<CreateAccountStatus[] | null> {
  if (s.metered.has(session_id)) return null;
  const meters = sessionMeterAccounts(session_id, wallet_id);
  if (pin !== null) {
    const tag = encodeRulePin(pin);
    for (const m of meters) Object.assign(m, tag);
  }
  const res = await s.ledger.createAccounts(meters);
  const statuses = meters.map(() => CreateAccountStatus.created);
  for (const [i, r] of res.entries()) {
    if (!METER_EXISTS.has(r.status)) {
      throw ledgerRejected(`create session usage meter ${idToHex(meters[i]!.id)}`, CreateAccountStatus[r.status] ?? String(r.status));
    }
    statuses[i] = r.status;
  }
  markMetered(s, session_id);
  return statuses;
}

/** The meter whose user_data is read for the session's pin (all three carry it). */
export function pinMeterId(session_id: bigint): bigint {
  return sessionMeterId(session_id, USAGE_LEDGER.input_tokens);
}

/**
 * Don's usage meters carrying `pin` (ADR 0124), created before the hold so that a session the
 * ledger has always has its pin. Returns the pin the ledger holds for the session: `pin` when
 * this call created the meters or found them with it; the first pin when a retried Don found
 * them with another (the first pin binds); null when they exist without one; undefined when
 * this daemon already made them (a retried Don: the first call pinned).
 */
export async function ensurePinnedMeters(s: SessionState, session_id: bigint, wallet_id: bigint, pin: LedgerRulePin): Promise<LedgerRulePin | null | undefined> {
  const statuses = await ensureSessionMeters(s, session_id, wallet_id, pin);
  if (statuses === null) return undefined;
  if (statuses.every((st) => st === CreateAccountStatus.created || st === CreateAccountStatus.exists)) return pin;
  const [m] = await s.ledger.lookupAccounts([pinMeterId(session_id)]);
  return m ? decodeRulePin(m) : null;
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
