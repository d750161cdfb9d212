/**
 * The spending-limit part of settling a session (ADR 0110): the unused part of the counted hold
 * goes back to the Don day's account, and a soft-mode overrun charged as debt is counted and
 * checked against the daily and per-session caps in the Doff chain itself. A Doff is never
 * refused for a limit (the usage happened): the debt is cut to what the caps allow and the rest
 * is unbilled (ADR 0110, like the issuance limit's rule in ADR 0055).
 */
import { TransferFlags, type Transfer } from "tigerbeetle-node";
import { capDebtAtIssuanceHeadroom } from "../../domain/balance-bounds.js";
import { agentCapId, capValueMicro, dayUsedMicro, limitTransferId, planDayCheck, planMaxCheck, planRelease, remainingMicro } from "../../domain/limits.js";
import { sessionTransferIds, type SessionView } from "../../domain/sessions.js";
import type { Settlement } from "../../domain/split.js";
import type { ChainCheck } from "../limits/limits.js";
import type { SessionState } from "./state.js";

/** What the Don counted on its day account (null: nothing, e.g. shadow mode or a session from before limits). */
export interface Counted {
  day_account_id: bigint;
  amount_micro: bigint;
}

/** The id of the transfer by which the session's Don counted its hold on its day (derived). */
export function countedTransferId(session_id: bigint): bigint {
  return limitTransferId(sessionTransferIds(session_id).hold, "spend", "day_spend");
}

/** What that transfer (undefined: not in the ledger) says the Don counted. */
export function countedOf(t: Transfer | undefined): Counted | null {
  return t === undefined ? null : { day_account_id: t.debit_account_id, amount_micro: t.amount };
}

/** Read what the session's Don counted (one lookup of a derived id). */
export async function countedAtDon(s: SessionState, session_id: bigint): Promise<Counted | null> {
  const [t] = await s.ledger.lookupTransfers([countedTransferId(session_id)]);
  return countedOf(t);
}

/**
 * Cut a soft-mode debt to what the caps allow now: the daily cap (what the Don's day has left
 * after the release of the unused hold) and the per-session cap (posted + debt <= cap).
 */
export async function capDebtAtLimits(s: SessionState, v: SessionView, c: Counted, st: Settlement, fee_bps: number): Promise<Settlement> {
  if (st.debt_micro === 0n) return st;
  const wallet = v.agent_wallet_id;
  const [daily, session, day] = await s.ledger.lookupAccounts([agentCapId("daily", wallet), agentCapId("session", wallet), c.day_account_id]);
  const release = c.amount_micro > st.posted_micro ? c.amount_micro - st.posted_micro : 0n;
  const dailyRoom = remainingMicro(capValueMicro(daily), dayUsedMicro(day) - release);
  const sessionRoom = remainingMicro(capValueMicro(session), st.posted_micro);
  const room = dailyRoom < sessionRoom ? dailyRoom : sessionRoom;
  return capDebtAtIssuanceHeadroom(st, room, fee_bps);
}

/**
 * The events to append to the Doff chain (or after a cancel's void): the release of the unused
 * counted hold, then, for a debt, its day debit + daily check and the per-session probe.
 * `offset` is the index of the first appended event in the whole chain (for the checks).
 */
export function limitTail(v: SessionView, c: Counted, charged_micro: bigint, debt_micro: bigint, offset: number): { tail: Transfer[]; checks: ChainCheck[] } {
  const hold = sessionTransferIds(v.session_id).hold;
  const tail: Transfer[] = [];
  const release = c.amount_micro > charged_micro ? c.amount_micro - charged_micro : 0n;
  if (release > 0n) {
    const r = planRelease(hold, c.day_account_id, release, v.session_id); // a new object: ours to flag
    r.flags = TransferFlags.linked;
    tail.push(r);
  }
  const checks: ChainCheck[] = [];
  if (debt_micro > 0n) {
    const at = offset + tail.length;
    tail.push(
      ...planDayCheck({ base_id: hold, family: "debt", day_account_id: c.day_account_id, cap_account_id: agentCapId("daily", v.agent_wallet_id), amount_micro: debt_micro, user_data_128: v.session_id }),
      ...planMaxCheck(hold, "debt", agentCapId("session", v.agent_wallet_id), charged_micro + debt_micro),
    );
    checks.push({ index: at + 2, limit: "daily_cap" }, { index: at + 5, limit: "session_cap" });
  }
  if (tail.length > 0) tail[tail.length - 1]!.flags &= ~TransferFlags.linked;
  return { tail, checks };
}

/**
 * `chain` (complete, last event unlinked) followed by `tail` as one linked chain. Appends to
 * `chain` itself (the caller's freshly planned array) and returns it.
 */
export function appendTail(chain: Transfer[], tail: Transfer[]): Transfer[] {
  if (tail.length === 0) return chain;
  chain[chain.length - 1]!.flags |= TransferFlags.linked;
  for (const t of tail) chain.push(t);
  return chain;
}
