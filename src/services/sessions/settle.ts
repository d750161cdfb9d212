/**
 * Settling a session (Doff, the reaper) and cancelling it, in three steps (ADR 0036):
 * 1. close the session's usage meters (planCloseMeters): from then on the ledger refuses its
 *    usage, and the close records the terms (reason, end of billed time) — the first closer
 *    decides them, every later settler (a racing Doff, the reaper, recovery) adopts them;
 * 2. read the session back from the ledger: its final usage;
 * 3. submit the chain the terms say: planDoff priced with the pinned price book, or planCancel.
 * A crash between 1 and 3 leaves a closed, unsettled session that the reaper (or the next Doff
 * or Cancel) finishes from the ledger alone. Racing settlements are decided by the ledger
 * (deterministic ids: the loser reads the winner's record).
 */
import { CreateTransferStatus as CT, type Transfer } from "tigerbeetle-node";
import { idToHex } from "../../domain/ids.js";
import { capDebtAtIssuanceHeadroom, issuanceHeadroomMicro, issuanceLimitControlId, issuanceLimitTransferId } from "../../domain/balance-bounds.js";
import {
  billedDurationMs,
  closeTermsOf,
  planCancel,
  planCloseMeters,
  planDoff,
  priceSession,
  reconstructSession,
  sessionCloseIds,
  sessionTransferIds,
  type CloseReason,
  type CloseTerms,
  type DoffInput,
  type SessionAccountIds,
  type SessionView,
} from "../../domain/sessions.js";
import { failedPrecondition, ledgerRejected } from "../errors.js";
import { debtAccountOf, ensureAuthors, ensureDebt, ensureSessionMeters } from "./accounts.js";
import { priceBookOf, readAfterOwnClose, readForSettlement, readSession, sessionTransfers, type SessionRead } from "./reads.js";
import { pinnedFeeBps } from "./pins.js";
import type { SessionState } from "./state.js";
import { sessionSettledEvent } from "../../webhooks/events.js";
import type { PriceBookEntry } from "../../domain/catalog.js";

/**
 * Enqueue `session.settled` for a session the ledger shows settled (ADR 0105). The ledger already
 * decided, so a failure to write the event is logged and never fails the settlement; the event id
 * is the session's, so the next settler that reads the settlement (a retried Doff, the reaper)
 * enqueues it again harmlessly.
 */
export async function notifySettled(s: SessionState, v: SessionView, e: Pick<PriceBookEntry, "masque_name" | "author">): Promise<void> {
  if (v.status !== "doffed" && v.status !== "reaped") return;
  try {
    // The event (a hash for its id, timestamps as text) is built only if an endpoint may receive it.
    if (!(await s.webhooks.mayReceive("session.settled", e.author))) return;
    await s.webhooks.enqueue(sessionSettledEvent(v, e.masque_name, e.author), s.clock());
  } catch (err) {
    s.log.error({ err, session_id: idToHex(v.session_id) }, "session.settled webhook not enqueued");
  }
}
import { planDebtRepayment } from "../../domain/refunds.js";
import { appendTail, capDebtAtLimits, countedAtDon, countedOf, countedTransferId, limitTail, type Counted } from "./limits.js";
import { refusedBy, type ChainCheck } from "../limits/limits.js";

/**
 * Step 1: close the session's usage meters with `terms`, or find them closed. Returns the terms
 * that bind (the first closer's).
 */
export async function closeMeters(s: SessionState, v: SessionView, terms: CloseTerms): Promise<CloseTerms> {
  return (await closeMetersOwn(s, v, terms)).terms;
}

/**
 * closeMeters, also returning the closing transfers as the ledger stamped them when THIS call
 * created them (null: they existed already, closed by another settler or an earlier attempt).
 */
async function closeMetersOwn(s: SessionState, v: SessionView, terms: CloseTerms): Promise<{ terms: CloseTerms; own: Transfer[] | null }> {
  if (!s.metered.has(v.session_id)) await ensureSessionMeters(s, v.session_id, v.agent_wallet_id);
  const chain = planCloseMeters(v.session_id, terms);
  const res = await s.ledger.createTransfers(chain);
  let first: (typeof res)[number] | undefined;
  for (const r of res) {
    if (r.status !== CT.linked_event_failed && r.status !== CT.created) {
      first = r;
      break;
    }
  }
  const o = s.open.get(v.session_id);
  if (first === undefined || first.status === CT.exists) {
    if (o) o.closing = true;
    const created = first === undefined && res.length === chain.length;
    if (created) for (let i = 0; i < chain.length; i++) chain[i]!.timestamp = res[i]!.timestamp;
    return { terms, own: created ? chain : null };
  }
  if ((CT[first.status] ?? "").startsWith("exists_with_different")) {
    // Closed earlier by another settler (or before a crash) with other terms: those bind.
    const [t] = await s.ledger.lookupTransfers([sessionCloseIds(v.session_id)[0]!]);
    const recorded = t ? closeTermsOf(t) : null;
    if (recorded === null) throw ledgerRejected("close session meters", "closing transfer unreadable");
    if (o) o.closing = true;
    return { terms: recorded, own: null };
  }
  throw ledgerRejected("close session meters", CT[first.status] ?? String(first.status));
}

/**
 * Settle or cancel an open session (steps 1-3 above) with `terms` unless it was closed with
 * others. `agent_id`: the session's agent when known (null: the reaper). Returns the session as
 * the ledger then has it (settled, cancelled, or whatever a racing call made of it).
 */
export async function finishSession(s: SessionState, v: SessionView, terms: CloseTerms, agent_id: string | null): Promise<SessionView> {
  const { terms: binding, own } = await closeMetersOwn(s, v, terms);
  // The final usage, and what the Don counted (ADR 0110): without lookups after a close this
  // call made on a single-writer ledger (readAfterOwnClose), else in one fresh read.
  const quick = own === null ? null : await readAfterOwnClose(s, v.session_id, own);
  let final: SessionRead | null;
  let counted: Counted | null | undefined;
  if (quick !== null) {
    final = quick.read;
    counted = quick.counted;
  } else {
    const counted_id = countedTransferId(v.session_id);
    const fresh = await readForSettlement(s, v.session_id, [counted_id]);
    final = fresh.read;
    counted = countedOf(fresh.also.find((t) => t.id === counted_id));
  }
  if (final === null || final.status !== "open") {
    s.open.delete(v.session_id);
    return final ?? v;
  }
  if (final.hold_micro === 0n) counted = null;
  else if (counted === undefined) counted = await countedAtDon(s, v.session_id);
  if (binding.reason === "cancel") return voidHold(s, final, counted);
  return settle(s, final, binding.reason, binding.end_ns, agent_id, counted);
}

/**
 * Step 3 of a settlement: price the session (final usage) with its pinned price book and submit the Doff chain.
 * `end_ns` is the end of billed time (now for a Doff; the last activity for an idle reap);
 * `agent_id` the session's agent when known (null: the reaper); `counted_read` what the Don counted
 * when the caller read it with the session (undefined: read it here). Returns the settled view (the
 * recorded one if someone settled it first).
 */
export async function settle(
  s: SessionState,
  v: SessionView & { _txs?: Transfer[] },
  reason: CloseReason,
  end_ns: bigint,
  agent_id: string | null,
  counted_read?: Counted | null,
): Promise<SessionView> {
  // Known price books and pins cost no await (a Doff of a session donned here: both in memory).
  const e = s.registry.peek(v.price_version) ?? (await priceBookOf(s, v));
  const fee_bps = s.open.get(v.session_id)?.fee_bps ?? (await pinnedFeeBps(s, v.session_id));
  const billed = billedDurationMs(v.don_ns, end_ns, s.config.SESSION_MAX_S);
  let settlement = priceSession(e.pricing, v.mode, v.hold_micro, v.usage, billed, fee_bps);
  if (settlement.debt_micro > 0n) {
    // The debt is an issuance (ADR 0055): charge at most what the limit has left; the rest is unbilled.
    const [control] = await s.ledger.lookupAccounts([issuanceLimitControlId()]);
    settlement = capDebtAtIssuanceHeadroom(settlement, control === undefined ? 0n : issuanceHeadroomMicro(control), fee_bps);
  }
  if (!s.authorsReady.has(e.author)) await ensureAuthors(s, [e.author]);
  let ids: SessionAccountIds = s.ids;
  if (settlement.debt_micro > 0n) {
    if (agent_id !== null) {
      await ensureDebt(s, agent_id);
    } else {
      const debt = await debtAccountOf(s, v.agent_wallet_id);
      if (debt === null) throw ledgerRejected("doff", "agent debt account missing for a soft-mode session");
      ids = { ...s.ids, agentDebt: () => debt };
    }
  }
  // Spending limits (ADR 0110): what the Don counted on its day; a debt is cut to the caps.
  const counted = v.hold_micro === 0n ? null : counted_read !== undefined ? counted_read : await countedAtDon(s, v.session_id);
  if (counted !== null && settlement.debt_micro > 0n) settlement = await capDebtAtLimits(s, v, counted, settlement, fee_bps);
  const input: DoffInput = { session_id: v.session_id, agent_id: agent_id ?? "", author_id: e.author, masque_index: v.masque_index, settlement, billed_duration_ms: billed, fee_bps, reason };
  let planned = planSettlement(ids, v, input, counted);
  let chain = planned.chain;
  let res = await s.ledger.createTransfers(chain);
  // The issuance-limit event is in the chain only with a debt (its id costs a hash: not on every Doff).
  const limitId = settlement.debt_micro > 0n ? issuanceLimitTransferId(sessionTransferIds(v.session_id).debt) : null;
  const limitAt = limitId === null ? -1 : chain.findIndex((t) => t.id === limitId);
  const limitStatus = limitAt >= 0 ? res[limitAt]?.status : undefined;
  if (limitStatus === CT.exceeds_credits || limitStatus === CT.id_already_failed || refusedBy(res, planned.checks) !== null) {
    // A concurrent issuance took the headroom read above (it never grows back), or a concurrent
    // spend took the cap's room: settle with the whole overrun unbilled rather than refuse the
    // Doff. Only the failing check's id failed for good; the chain's other ids were rolled back
    // and stay usable, and the retried chain has no debt events.
    settlement = capDebtAtIssuanceHeadroom(settlement, 0n, fee_bps);
    planned = planSettlement(ids, v, { ...input, settlement }, counted);
    chain = planned.chain;
    res = await s.ledger.createTransfers(chain);
  }
  s.open.delete(v.session_id);
  let all_created = res.length === chain.length;
  for (let i = 0; all_created && i < res.length; i++) all_created = res[i]!.status === CT.created;
  if (all_created) {
    // The chain is this call's own (plan built it): stamp it as the ledger stored it.
    for (let i = 0; i < chain.length; i++) chain[i]!.timestamp = res[i]!.timestamp;
    const now = res[res.length - 1]!.timestamp;
    const txs = (v._txs ?? (await sessionTransfers(s, v.session_id))).concat(chain);
    const settled = reconstructSession(v.session_id, txs, now)!;
    await notifySettled(s, settled, e);
    return settled;
  }
  const first = res.find((r) => r.status !== CT.linked_event_failed);
  const status = first?.status ?? CT.linked_event_failed;
  if (
    status === CT.exists ||
    status === CT.pending_transfer_already_posted ||
    status === CT.pending_transfer_already_voided ||
    status === CT.pending_transfer_expired ||
    (CT[status] ?? "").startsWith("exists_with_different")
  ) {
    // Settled (or cancelled / expired) concurrently: the ledger's record wins.
    const now = await readSession(s, v.session_id);
    if (now) {
      await notifySettled(s, now, e);
      return now;
    }
  }
  throw ledgerRejected("doff", CT[status] ?? String(status));
}

/**
 * The Doff chain of `d` (planDoff), then the author-debt repayment (ADR 0112: repaid first from
 * what this Doff credits), then the spending-limit tail when the Don counted the hold (ADR 0110),
 * as one linked chain, with the limit checks' indexes in it.
 */
function planSettlement(ids: SessionAccountIds, v: SessionView, d: DoffInput, counted: Counted | null): { chain: Transfer[]; checks: ChainCheck[] } {
  const chain = appendTail(planDoff(ids, d), [planDebtRepayment(sessionTransferIds(v.session_id).hold, ids.authorEarnings(d.author_id), v.session_id)]);
  if (counted === null) return { chain, checks: [] };
  const { tail, checks } = limitTail(v, counted, d.settlement.posted_micro, d.settlement.debt_micro, chain.length);
  return { chain: appendTail(chain, tail), checks };
}

/** FAILED_PRECONDITION for a session `action` cannot apply to (cancelled, expired, settled). */
export function assertOpen(s: SessionState, v: SessionView, action: string): void {
  if (v.status === "cancelled") {
    s.open.delete(v.session_id);
    throw failedPrecondition("SESSION_CANCELLED", `cannot ${action} session ${idToHex(v.session_id)}: it was cancelled`, {
      session_id: idToHex(v.session_id),
    });
  }
  if (v.status === "expired") {
    s.open.delete(v.session_id);
    throw failedPrecondition(
      "SESSION_EXPIRED",
      `cannot ${action} session ${idToHex(v.session_id)}: the ledger voided its hold at the maximum session length; nothing was charged`,
      { session_id: idToHex(v.session_id) },
    );
  }
  if (v.status === "doffed" || v.status === "reaped") {
    throw failedPrecondition("SESSION_SETTLED", `cannot ${action} session ${idToHex(v.session_id)}: it is already settled`, {
      session_id: idToHex(v.session_id),
    });
  }
}

/** Doff an (authorized) session read: settle it now, or return its recorded settlement. */
export async function executeDoff(s: SessionState, r: SessionRead, agent_id: string | null, end_ns?: bigint): Promise<SessionView> {
  if (r.status === "doffed" || r.status === "reaped") return r;
  assertOpen(s, r, "doff");
  const settled = await finishSession(s, r, { reason: "doff", end_ns: end_ns ?? s.clock() }, agent_id);
  if (settled.status === "doffed" || settled.status === "reaped") return settled;
  assertOpen(s, settled, "doff");
  throw ledgerRejected("doff", settled.status);
}

/** Cancel an (authorized) session read: void its hold (idempotent). */
export async function executeCancel(s: SessionState, r: SessionRead): Promise<SessionView> {
  if (r.status === "cancelled") return r;
  assertOpen(s, r, "cancel");
  const after = await finishSession(s, r, { reason: "cancel", end_ns: s.clock() }, null);
  if (after.status === "cancelled") return after;
  assertOpen(s, after, "cancel");
  throw ledgerRejected("cancel", after.status);
}

/** Step 3 of a cancel: void the hold of an open session whose meters are closed. */
async function voidHold(s: SessionState, r: SessionRead, counted: Counted | null): Promise<SessionView> {
  const sid = r.session_id;
  const t = planCancel(sid);
  // The whole counted hold goes back to the Don day's account, in the void's chain (ADR 0110).
  // `counted`: read with the session after the close (null: nothing counted, or no hold).
  const chain = counted === null ? [t] : appendTail([t], limitTail(r, counted, 0n, 0n, 1).tail);
  const [res] = await s.ledger.createTransfers(chain);
  s.open.delete(sid);
  if (res && res.status === CT.created) {
    return reconstructSession(sid, [...r._txs, { ...t, timestamp: res.timestamp }], res.timestamp)!;
  }
  const after = await readSession(s, sid);
  if (after) return after;
  throw ledgerRejected("cancel", res ? (CT[res.status] ?? String(res.status)) : "no result");
}
