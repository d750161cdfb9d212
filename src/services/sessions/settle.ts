/**
 * Settling a session (Doff, the reaper) and cancelling it: the ledger plans of
 * src/domain/sessions.ts (planDoff, planCancel) priced with the pinned price book, submitted as
 * one linked chain, and the ledger's answer mapped. A settlement racing another one is decided by
 * the ledger (deterministic ids: the loser reads the winner's record).
 */
import { CreateTransferStatus as CT, type Transfer } from "tigerbeetle-node";
import { idToHex } from "../../domain/ids.js";
import {
  billedDurationMs,
  planCancel,
  planDoff,
  priceSession,
  reconstructSession,
  type CloseReason,
  type SessionAccountIds,
  type SessionView,
} from "../../domain/sessions.js";
import { failedPrecondition, ledgerRejected } from "../errors.js";
import { debtAccountOf, ensureAuthors, ensureDebt } from "./accounts.js";
import { priceBookOf, readSession, sessionTransfers, type SessionRead } from "./reads.js";
import type { SessionState } from "./state.js";

/**
 * Settle an open session: price it with its pinned price book and submit the Doff chain.
 * `end_ns` is the end of billed time (now for a Doff; the last activity for an idle reap);
 * `agent_id` the session's agent when known (null: the reaper). Returns the settled view (the
 * recorded one if someone settled it first).
 */
export async function settle(
  s: SessionState,
  v: SessionView & { _txs?: Transfer[] },
  reason: CloseReason,
  end_ns: bigint,
  agent_id: string | null,
): Promise<SessionView> {
  const e = priceBookOf(s, v);
  const fee_bps = s.config.PLATFORM_FEE_BPS;
  const billed = billedDurationMs(v.don_ns, end_ns, s.config.SESSION_MAX_S);
  const settlement = priceSession(e.pricing, v.mode, v.hold_micro, v.usage, billed, fee_bps);
  if (!s.authorsReady.has(e.author)) await ensureAuthors(s, [e.author]);
  const ids: SessionAccountIds = { ...s.ids };
  if (settlement.debt_micro > 0n) {
    if (agent_id !== null) {
      await ensureDebt(s, agent_id);
    } else {
      const debt = await debtAccountOf(s, v.agent_wallet_id);
      if (debt === null) throw ledgerRejected("doff", "agent debt account missing for a soft-mode session");
      ids.agentDebt = () => debt;
    }
  }
  const chain = planDoff(ids, {
    session_id: v.session_id,
    agent_id: agent_id ?? "",
    author_id: e.author,
    masque_index: v.masque_index,
    settlement,
    billed_duration_ms: billed,
    fee_bps,
    reason,
  });
  const res = await s.ledger.createTransfers(chain);
  s.open.delete(v.session_id);
  if (res.length === chain.length && res.every((r) => r.status === CT.created)) {
    const stamped = chain.map((t, i) => ({ ...t, timestamp: res[i]!.timestamp }));
    const now = res[res.length - 1]!.timestamp;
    const txs = [...(v._txs ?? (await sessionTransfers(s, v.session_id))), ...stamped];
    return reconstructSession(v.session_id, txs, now)!;
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
    if (now) return now;
  }
  throw ledgerRejected("doff", CT[status] ?? String(status));
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
export async function executeDoff(s: SessionState, r: SessionRead, agent_id: string | null): Promise<SessionView> {
  if (r.status === "doffed" || r.status === "reaped") return r;
  assertOpen(s, r, "doff");
  const settled = await settle(s, r, "doff", s.clock(), agent_id);
  if (settled.status === "doffed" || settled.status === "reaped") return settled;
  assertOpen(s, settled, "doff");
  throw ledgerRejected("doff", settled.status);
}

/** Cancel an (authorized) session read: void its hold (idempotent). */
export async function executeCancel(s: SessionState, r: SessionRead): Promise<SessionView> {
  const sid = r.session_id;
  if (r.status === "cancelled") return r;
  assertOpen(s, r, "cancel");
  const t = planCancel(sid);
  const [res] = await s.ledger.createTransfers([t]);
  s.open.delete(sid);
  if (res && res.status === CT.created) {
    return reconstructSession(sid, [...r._txs, { ...t, timestamp: res.timestamp }], res.timestamp)!;
  }
  const after = await readSession(s, sid);
  if (after?.status === "cancelled") return after;
  if (after) assertOpen(s, after, "cancel");
  throw ledgerRejected("cancel", res ? (CT[res.status] ?? String(res.status)) : "no result");
}
