/**
 * Don: create the session's hold (src/domain/sessions.ts planDon) and map the ledger's answer.
 * The request is validated and authorized by the handler before this runs.
 */
import { CreateTransferStatus as CT, TransferFlags, type Transfer } from "tigerbeetle-node";
import { availableMicro } from "../../domain/accounts.js";
import type { Masque } from "../../domain/catalog.js";
import { idToHex } from "../../domain/ids.js";
import type { BillingMode } from "../../domain/pricing.js";
import { planDon, reconstructSession, type SessionView } from "../../domain/sessions.js";
import { accountNotFound, failedPrecondition, idempotencyKeyReused, insufficientFunds, ledgerRejected } from "../errors.js";
import { ensureDebt } from "./accounts.js";
import { readSession } from "./reads.js";
import { activePin, pinRule } from "./pins.js";
import type { SessionState } from "./state.js";
import { dayOf, refusedBy, spendingLimitExceeded, type ChainCheck } from "../limits/limits.js";
import { agentCapId, link, planDayCheck, planMaxCheck } from "../../domain/limits.js";

/**
 * The Don chain with its limit checks: [hold, session-cap probe and void, day debit, daily
 * check (4)]. The hold is first, so a retried Don is answered by the hold itself (`exists`).
 * The hold is shrunk to the per-session cap as read now (the probe re-checks it in the chain).
 */
async function limitedDon(s: SessionState, t: Transfer, sid: bigint): Promise<{ chain: Transfer[]; checks: ChainCheck[]; day: bigint; dayId: bigint }> {
  const wallet = t.debit_account_id;
  const day = dayOf(s.clock());
  await s.limits.ensureAgent(wallet);
  // Only the session cap is read here; the refusal path reads the rest for its message.
  const [dayId, session_cap_micro] = await Promise.all([s.limits.ensureDay("spend", wallet, day), s.limits.sessionCap(wallet)]);
  if (t.amount > session_cap_micro) t.amount = session_cap_micro;
  const chain = link([
    { ...t },
    ...planMaxCheck(t.id, "spend", agentCapId("session", wallet), t.amount),
    ...planDayCheck({ base_id: t.id, family: "spend", day_account_id: dayId, cap_account_id: agentCapId("daily", wallet), amount_micro: t.amount, user_data_128: sid }),
  ]);
  chain[chain.length - 1]!.flags &= ~TransferFlags.linked;
  return { chain, checks: [{ index: 1, limit: "session_cap" }, { index: 3 + 2, limit: "daily_cap" }], day, dayId };
}

export interface DonCommand {
  session_id: bigint;
  agent_id: string;
  masque: Masque;
  mode: BillingMode;
  /** Amount to hold (0 in shadow mode), micro-USD. */
  hold_micro: bigint;
}

/**
 * Hold the reservation. Returns the session and whether this call created it (false: a retry of
 * the same Don). Errors: INSUFFICIENT_FUNDS, ACCOUNT_NOT_FOUND, IDEMPOTENCY_KEY_REUSED,
 * SESSION_ID_ALREADY_FAILED, ACCOUNT_CLOSED.
 */
export async function executeDon(s: SessionState, d: DonCommand): Promise<{ view: SessionView; created: boolean }> {
  const sid = d.session_id;
  if (d.mode === "soft") await ensureDebt(s, d.agent_id);
  const pin = await activePin(s, d.masque);
  const t = planDon(s.ids, {
    session_id: sid,
    agent_id: d.agent_id,
    masque_index: d.masque.index,
    price_version: d.masque.price_version,
    mode: d.mode,
    hold_micro: d.hold_micro,
    timeout_s: s.config.SESSION_MAX_S,
  });
  // Pin the revenue rule before the hold exists (ADR 0100, 0124): on the session's usage meters
  // (ADR 0036), created now, so a session the ledger has always has its pin. A failed Don leaves
  // three empty meter accounts behind (harmless: its session id is spent anyway); a retried Don
  // finds them and keeps the first pin. Concurrently, the spending limits (ADR 0110): the hold is
  // counted on today's day account and checked against the daily and per-session caps in the
  // hold's own linked chain.
  const [fee_bps, limited] = await Promise.all([pinRule(s, sid, t.debit_account_id, d.masque, pin), t.amount > 0n ? limitedDon(s, t, sid) : null]);
  const chain = limited?.chain ?? [t];
  const res = await s.ledger.createTransfers(chain);
  const r = res[0];
  if (!r || res.length !== chain.length) throw ledgerRejected("don", "result count mismatch");
  if (limited !== null && r.status === CT.linked_event_failed) {
    const limit = refusedBy(res, limited.checks);
    if (limit !== null) {
      const now = await s.limits.read(t.debit_account_id, limited.day);
      throw spendingLimitExceeded(limit, limit === "daily_cap" ? now.daily : now.session, t.amount, `agent ${JSON.stringify(d.agent_id)}`);
    }
    const failed = res.find((x) => x.status !== CT.linked_event_failed);
    throw ledgerRejected("don", failed ? (CT[failed.status] ?? String(failed.status)) : "linked_event_failed");
  }
  if (r.status === CT.created) {
    const now = r.timestamp;
    t.timestamp = now; // the hold as the ledger stored it (t is ours: planDon built it for this call)
    s.open.set(sid, {
      session_id: sid,
      wallet_id: t.debit_account_id,
      masque_index: d.masque.index,
      don_ns: now,
      deadline_ns: now + BigInt(t.timeout) * 1_000_000_000n,
      last_activity_ns: now,
      last_beat_written_ns: now,
      meters: 0,
      hold: t,
      ...(fee_bps === undefined ? {} : { fee_bps }),
      // The chain's day debit (planDayCheck's first event) counted the hold as shrunk to the cap.
      counted: limited === null ? null : { day_account_id: limited.dayId, amount_micro: t.amount },
    });
    return { view: reconstructSession(sid, [t], now)!, created: true };
  }
  const name = CT[r.status] ?? String(r.status);
  // The session id is the Don's idempotency key: the same request plans the same hold (the
  // ledger answers `exists`; a different SESSION_MAX_S only changes the timeout, which is not
  // part of the request) and returns the session; any other difference — agent, masque, price
  // book, billing mode, max_spend_micro (the hold amount) — is a different request.
  if (r.status === CT.exists || r.status === CT.exists_with_different_timeout) {
    const existing = await readSession(s, sid);
    if (!existing) throw ledgerRejected("don", `${name} but the session is unreadable`);
    // The ledger compares the timeout before the other fields: compare those here.
    const same =
      existing.agent_wallet_id === t.debit_account_id &&
      existing.hold_micro === t.amount &&
      existing.masque_index === d.masque.index &&
      existing.price_version === d.masque.price_version &&
      existing.mode === d.mode;
    if (same) return { view: existing, created: false };
  }
  if (r.status === CT.exists || name.startsWith("exists_with_different")) {
    throw idempotencyKeyReused(idToHex(sid), idToHex(t.id), "Don (agent, masque, billing mode or max_spend_micro differ)");
  }
  if (r.status === CT.exceeds_credits) {
    const [acct] = await s.ledger.lookupAccounts([t.debit_account_id]);
    throw insufficientFunds(idToHex(t.debit_account_id), acct ? availableMicro(acct) : 0n, d.hold_micro);
  }
  if (r.status === CT.debit_account_not_found) throw accountNotFound(idToHex(t.debit_account_id));
  if (r.status === CT.id_already_failed) {
    throw failedPrecondition(
      "SESSION_ID_ALREADY_FAILED",
      `session id ${idToHex(sid)} was refused earlier (e.g. insufficient funds); the ledger never reuses a refused id: don again with a new session id`,
      { session_id: idToHex(sid) },
    );
  }
  if (r.status === CT.debit_account_already_closed) {
    throw failedPrecondition("ACCOUNT_CLOSED", `agent wallet ${idToHex(t.debit_account_id)} is closed`, {
      account_id: idToHex(t.debit_account_id),
    });
  }
  throw ledgerRejected("don", name);
}
