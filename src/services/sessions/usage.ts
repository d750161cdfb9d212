/**
 * RecordUsage and Heartbeat: usage events as linked chains on the usage ledgers
 * (src/domain/sessions.ts planUsage / planHeartbeat), each event with its own outcome.
 */
import { create } from "@bufbuild/protobuf";
import { CreateTransferStatus as CT, type Transfer } from "tigerbeetle-node";
import {
  SessionStatus as ApiSessionStatus,
  UsageOutcome,
  UsageResultSchema,
  type UsageEvent,
  type UsageResult,
} from "../../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { AMOUNT_MAX_MICRO } from "../../domain/accounts.js";
import { Ledger } from "../../domain/codes.js";
import { accrue, type PriceBook, type UsageTotals } from "../../domain/pricing.js";
import {
  decodeHoldTag,
  parseSessionId,
  planHeartbeat,
  planUsage,
  sessionMeterId,
  USAGE_KINDS,
  USAGE_LEDGER,
  type SessionView,
  type UsageKind,
} from "../../domain/sessions.js";
import { invalidArgument, type Violation } from "../errors.js";
import { ensureSessionMeters } from "./accounts.js";
import { LEDGER_LIMIT, priceBookEntry, readSession } from "./reads.js";
import { STATUS_TO_API } from "./proto.js";
import { ALL_METERS, idleNs, openSessionFromView, type OpenSession, type SessionState } from "./state.js";

/** Most events one RecordUsage call may carry. */
export const MAX_USAGE_EVENTS = 2_000;
/** Shared (never mutated) result messages: most events of a batch share one of these. */
const APPLIED_RESULT = create(UsageResultSchema, { outcome: UsageOutcome.APPLIED, reason: "" });
const DUPLICATE_RESULT = create(UsageResultSchema, { outcome: UsageOutcome.DUPLICATE, reason: "" });

/** The largest usage total (per kind) and session price the API carries (int64 max). */
const TOTAL_MAX = AMOUNT_MAX_MICRO;
const FIELD: Record<UsageKind, string> = { input_tokens: "input_tokens", output_tokens: "output_tokens", tool_calls: "tool_calls" };

/**
 * Issue 11, values past the API's range: refuse the whole call (INVALID_ARGUMENT naming each
 * event field, nothing applied) when an event would push its session's usage total of a kind, or
 * its price at the maximum session length, past 2^63-1. Totals are the ledger's (the session
 * meters' debits_posted) plus the earlier events of this call. A concurrent call may pass the same
 * check; the two can then reach at most 2^64-2, which the API's uint64 still carries.
 */
async function refuseTotalsPastRange(
  s: SessionState,
  events: readonly UsageEvent[],
  chains: readonly { i: number; chain: Transfer[] }[],
  sessions: Map<bigint, OpenSession | SessionView | null>,
): Promise<void> {
  if (chains.length === 0) return;
  const sids = [...new Set(chains.map((c) => c.chain[0]!.user_data_128))];
  const meters = await s.ledger.lookupAccounts(sids.flatMap((sid) => Object.values(USAGE_LEDGER).map((l) => sessionMeterId(sid, l))));
  const balance = new Map(meters.map((a) => [a.id, a.debits_posted]));
  const totals = new Map<bigint, UsageTotals>(
    sids.map((sid) => [
      sid,
      {
        input_tokens: balance.get(sessionMeterId(sid, USAGE_LEDGER.input_tokens)) ?? 0n,
        output_tokens: balance.get(sessionMeterId(sid, USAGE_LEDGER.output_tokens)) ?? 0n,
        tool_calls: balance.get(sessionMeterId(sid, USAGE_LEDGER.tool_calls)) ?? 0n,
      },
    ]),
  );
  const v: Violation[] = [];
  for (const c of chains) {
    const e = events[c.i]!;
    const sid = c.chain[0]!.user_data_128;
    const t = totals.get(sid)!;
    const next: UsageTotals = {
      input_tokens: t.input_tokens + e.inputTokens,
      output_tokens: t.output_tokens + e.outputTokens,
      tool_calls: t.tool_calls + e.toolCalls,
    };
    let bad = false;
    for (const k of USAGE_KINDS) {
      if (next[k] > TOTAL_MAX) {
        v.push({ field: `events[${c.i}].${FIELD[k]}`, description: `the session's ${k.replace("_", " ")} would total ${next[k]}, past 2^63-1 (the API's range)` });
        bad = true;
      }
    }
    const pb = await priceBookOfSession(s, sessions.get(sid) ?? null);
    if (!bad && pb !== null) {
      const worst = accrue(pb, next, BigInt(s.config.SESSION_MAX_S) * 1000n).price_micro;
      if (worst > TOTAL_MAX) {
        v.push({ field: `events[${c.i}]`, description: `the session's price would reach ${worst} micro-USD, past 2^63-1 (the API's range)` });
        bad = true;
      }
    }
    if (!bad) totals.set(sid, next);
  }
  if (v.length > 0) throw invalidArgument(v);
}

/** The price book pinned on a session (null when unknown here). */
async function priceBookOfSession(s: SessionState, v: OpenSession | SessionView | null): Promise<PriceBook | null> {
  if (v === null) return null;
  const version = "price_version" in v ? v.price_version : v.hold ? decodeHoldTag(v.hold.user_data_32).price_version : null;
  return version === null ? null : ((await priceBookEntry(s, version))?.pricing ?? null);
}

/** Resolve sessions: open index first, the ledger for the rest. */
export async function lookupSessions(s: SessionState, sids: bigint[]): Promise<Map<bigint, OpenSession | SessionView | null>> {
  const out = new Map<bigint, OpenSession | SessionView | null>();
  const unknown: bigint[] = [];
  for (const sid of sids) {
    const o = s.open.get(sid);
    if (o) out.set(sid, o);
    else unknown.push(sid);
  }
  const views = await Promise.all(unknown.map((sid) => readSession(s, sid)));
  unknown.forEach((sid, i) => out.set(sid, views[i] ?? null));
  return out;
}

export interface UsageReport {
  results: UsageResult[];
  applied: number;
  duplicates: number;
  rejected: number;
}

/**
 * Record `events` (1..MAX_USAGE_EVENTS, checked by the handler). `agentFor(wallet)` is the
 * per-event authorization rule: the agent whose meters take the usage, or null (PERMISSION_DENIED).
 * `refuse(session)`, when given, names why a session's events are refused (REJECTED with that reason).
 */
export async function executeUsage(
  s: SessionState,
  events: readonly UsageEvent[],
  agentFor: (session_wallet_id: bigint) => string | null,
  refuse?: (session_id: bigint) => string | null,
): Promise<UsageReport> {
  const results: { outcome: UsageOutcome; reason: string }[] = events.map(() => ({ outcome: UsageOutcome.UNSPECIFIED, reason: "" }));
  const sidCache = new Map<string, bigint | null>();
  const parsed: (bigint | null)[] = events.map((e, i) => {
    let sid = sidCache.get(e.sessionId);
    if (sid === undefined) {
      try {
        sid = parseSessionId(e.sessionId);
      } catch {
        sid = null;
      }
      sidCache.set(e.sessionId, sid);
    }
    if (sid === null || e.seq < 1n || e.inputTokens > AMOUNT_MAX_MICRO || e.outputTokens > AMOUNT_MAX_MICRO || e.toolCalls > AMOUNT_MAX_MICRO) {
      results[i] = { outcome: UsageOutcome.REJECTED, reason: "INVALID_ARGUMENT" };
      return null;
    }
    return sid;
  });
  const sessions = await lookupSessions(s, [...new Set(parsed.filter((x): x is bigint => x !== null))]);
  const now = s.clock();
  const chains: { i: number; chain: Transfer[] }[] = [];
  const wallets = new Map<bigint, bigint>();
  for (const [i, e] of events.entries()) {
    const sid = parsed[i];
    if (sid === null || sid === undefined) continue;
    const v = sessions.get(sid) ?? null;
    if (v === null) {
      results[i] = { outcome: UsageOutcome.REJECTED, reason: "SESSION_NOT_FOUND" };
      continue;
    }
    const wallet = "wallet_id" in v ? v.wallet_id : v.agent_wallet_id;
    const agent_id = agentFor(wallet);
    if (agent_id === null) {
      results[i] = { outcome: UsageOutcome.REJECTED, reason: "PERMISSION_DENIED" };
      continue;
    }
    const refusal = refuse?.(sid) ?? null;
    if (refusal !== null) {
      results[i] = { outcome: UsageOutcome.REJECTED, reason: refusal };
      continue;
    }
    const open = "wallet_id" in v ? v.deadline_ns > now : v.status === "open";
    if (!open) {
      results[i] = { outcome: UsageOutcome.REJECTED, reason: "SESSION_NOT_OPEN" };
      continue;
    }
    wallets.set(sid, wallet);
    chains.push({
      i,
      chain: planUsage(s.ids, {
        session_id: sid,
        agent_id,
        seq: e.seq,
        input_tokens: e.inputTokens,
        output_tokens: e.outputTokens,
        tool_calls: e.toolCalls,
      }),
    });
  }
  await Promise.all([...wallets].map(([sid, wallet]) => ensureSessionMeters(s, sid, wallet)));
  await refuseTotalsPastRange(s, events, chains, sessions);
  if (chains.length > 0) {
    const flat = chains.flatMap((c) => c.chain);
    const res: { timestamp: bigint; status: CT }[] = [];
    for (let k = 0; k < flat.length; k += LEDGER_LIMIT) {
      // chains are at most 3 long and never straddle a request (MAX_USAGE_EVENTS * 3 < 8189)
      res.push(...(await s.ledger.createTransfers(flat.slice(k, k + LEDGER_LIMIT))));
    }
    let o = 0;
    for (const c of chains) {
      const rs = res.slice(o, o + c.chain.length);
      o += c.chain.length;
      const first = rs.find((r) => r.status !== CT.linked_event_failed);
      if (!first || first.status === CT.created) {
        results[c.i] = { outcome: UsageOutcome.APPLIED, reason: "" };
        const open = s.open.get(c.chain[0]!.user_data_128);
        const ts = rs[rs.length - 1]?.timestamp ?? now;
        if (open) {
          if (ts > open.last_activity_ns) open.last_activity_ns = ts;
          for (const t of c.chain) open.meters |= 1 << t.ledger;
        }
      } else if (first.status === CT.exists) {
        results[c.i] = { outcome: UsageOutcome.DUPLICATE, reason: "" };
      } else if ((CT[first.status] ?? "").startsWith("exists_with_different")) {
        results[c.i] = { outcome: UsageOutcome.REJECTED, reason: "SEQ_REUSED" };
      } else if (first.status === CT.debit_account_already_closed) {
        // Settlement closed the session's meters first (ADR 0036): this event is not in its price.
        results[c.i] = { outcome: UsageOutcome.REJECTED, reason: "SESSION_NOT_OPEN" };
      } else {
        results[c.i] = { outcome: UsageOutcome.REJECTED, reason: `LEDGER_REJECTED:${CT[first.status] ?? first.status}` };
      }
    }
  }
  const count = (o: UsageOutcome) => results.filter((r) => r.outcome === o).length;
  return {
    results: results.map((r) =>
      r.outcome === UsageOutcome.APPLIED ? APPLIED_RESULT : r.outcome === UsageOutcome.DUPLICATE ? DUPLICATE_RESULT : create(UsageResultSchema, r),
    ),
    applied: count(UsageOutcome.APPLIED),
    duplicates: count(UsageOutcome.DUPLICATE),
    rejected: count(UsageOutcome.REJECTED),
  };
}

/**
 * Heartbeat an (authorized) session: refresh its liveness; at most one ledger write per
 * SESSION_IDLE_S / 10 (`agent_id` null: an admin's heartbeat refreshes memory only).
 * Returns the status and, while open, the idle deadline (ns).
 */
export async function executeHeartbeat(
  s: SessionState,
  v: OpenSession | SessionView,
  agent_id: string | null,
): Promise<{ status: ApiSessionStatus; idle_deadline_ns: bigint | null }> {
  const now = s.clock();
  const sid = v.session_id;
  if (!("wallet_id" in v)) {
    // Not in the open index: settled, cancelled or expired (a heartbeat changes nothing).
    if (v.status !== "open") return { status: STATUS_TO_API[v.status], idle_deadline_ns: null };
    // Open in the ledger but unknown here (another daemon's Don): index it.
    s.open.set(sid, openSessionFromView(v, ALL_METERS));
  }
  const o = s.open.get(sid)!;
  if (now >= o.deadline_ns) {
    s.open.delete(sid);
    return { status: ApiSessionStatus.EXPIRED, idle_deadline_ns: null };
  }
  o.last_activity_ns = now;
  // Throttled ledger write: liveness survives a restart to within SESSION_IDLE_S / 10.
  if (agent_id !== null && now - o.last_beat_written_ns >= idleNs(s) / 10n) {
    await ensureSessionMeters(s, sid, o.wallet_id);
    const [r] = await s.ledger.createTransfers([planHeartbeat(s.ids, sid, agent_id, now)]);
    if (r && (r.status === CT.created || r.status === CT.exists)) {
      o.last_beat_written_ns = now;
      o.meters |= 1 << Ledger.usage_tool_calls;
    }
  }
  return { status: ApiSessionStatus.OPEN, idle_deadline_ns: now + idleNs(s) };
}
