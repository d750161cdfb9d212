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
  planUsageInto,
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
 * One session named by a call, resolved once per call (ADR 0131): its events carry a reference to
 * it, so per-event work reads properties instead of looking the 128-bit id up in Maps again.
 */
interface CallSession {
  readonly sid: bigint;
  /** Whether at least one of the call's events for it passed the field checks (it is looked up). */
  named: boolean;
  /** Its wallet, agent and why its events are refused ("" = they are not); set on first use. */
  verdict: { wallet: bigint; agent_id: string; refusal: string } | undefined;
  /** Its totals after the call's events (refuseTotalsPastRange's fast path). */
  totals: UsageTotals | undefined;
  /** Its entry in the open index (null: not open here), read once in the result loop. */
  open: OpenSession | null | undefined;
}

/** One event's planned chain: event index, session, and where its transfers sit in the call's flat list. */
interface PlannedChain {
  i: number;
  session: CallSession;
  /** Index of the chain's first transfer in the flat transfer list. */
  at: number;
  /** Transfers in the chain (1..3). */
  len: number;
}

/**
 * Issue 11, values past the API's range: refuse the whole call (INVALID_ARGUMENT naming each
 * event field, nothing applied) when an event would push its session's usage total of a kind, or
 * its price at the maximum session length, past 2^63-1. Totals are the ledger's (the session
 * meters' debits_posted) plus the earlier events of this call. A concurrent call may pass the same
 * check; the two can then reach at most 2^64-2, which the API's uint64 still carries.
 *
 * Fast path (ADR 0104): event values are >= 0 and `accrue` is monotone in every input
 * (src/domain/pricing.ts), so when each session's totals after ALL of this call's events, and
 * their price, are in range, no earlier prefix can be out of range and no event is refused: one
 * accrue per session instead of one per event. Otherwise the exact per-event walk names the fields.
 */
async function refuseTotalsPastRange(
  s: SessionState,
  events: readonly UsageEvent[],
  chains: readonly PlannedChain[],
  sessions: Map<bigint, OpenSession | SessionView | null>,
): Promise<void> {
  if (chains.length === 0) return;
  const called = [...new Set(chains.map((c) => c.session))];
  const sids = called.map((c) => c.sid);
  const meterIds: bigint[] = [];
  for (const sid of sids) for (const k of USAGE_KINDS) meterIds.push(sessionMeterId(sid, USAGE_LEDGER[k]));
  const [meters, books] = await Promise.all([
    s.ledger.lookupAccounts(meterIds),
    Promise.all(sids.map((sid) => priceBookOfSession(s, sessions.get(sid) ?? null))),
  ]);
  const balance = new Map(meters.map((a) => [a.id, a.debits_posted]));
  const ledgerTotals = (sid: bigint): UsageTotals => ({
    input_tokens: balance.get(sessionMeterId(sid, USAGE_LEDGER.input_tokens)) ?? 0n,
    output_tokens: balance.get(sessionMeterId(sid, USAGE_LEDGER.output_tokens)) ?? 0n,
    tool_calls: balance.get(sessionMeterId(sid, USAGE_LEDGER.tool_calls)) ?? 0n,
  });
  const priceBook = new Map(sids.map((sid, k) => [sid, books[k] ?? null]));
  const worstMs = BigInt(s.config.SESSION_MAX_S) * 1000n;
  // Fast path: the totals after every event of the call.
  for (const c of called) c.totals = ledgerTotals(c.sid);
  for (const c of chains) {
    const e = events[c.i]!;
    const t = c.session.totals!;
    t.input_tokens += e.inputTokens;
    t.output_tokens += e.outputTokens;
    t.tool_calls += e.toolCalls;
  }
  let inRange = true;
  for (const { sid, totals: t } of called) {
    const pb = priceBook.get(sid) ?? null;
    if (t!.input_tokens > TOTAL_MAX || t!.output_tokens > TOTAL_MAX || t!.tool_calls > TOTAL_MAX || (pb !== null && accrue(pb, t!, worstMs).price_micro > TOTAL_MAX)) {
      inRange = false;
      break;
    }
  }
  if (inRange) return;
  // Exact walk: event by event, an event past the range is named and not counted.
  const totals = new Map<bigint, UsageTotals>(sids.map((sid) => [sid, ledgerTotals(sid)]));
  const v: Violation[] = [];
  for (const c of chains) {
    const e = events[c.i]!;
    const sid = c.session.sid;
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
    const pb = priceBook.get(sid) ?? null;
    if (!bad && pb !== null) {
      const worst = accrue(pb, next, worstMs).price_micro;
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

/**
 * The REJECTED reason of an event that fails the per-event checks: every bad field of event `i`,
 * named and with its rule, as the whole-request path names them ("events[1].seq: must be >= 1";
 * several joined by "; "). The outcome stays REJECTED (clients read it); only this text names why.
 */
export function invalidEventReason(e: UsageEvent, i: number): string {
  const out: string[] = [];
  try {
    parseSessionId(e.sessionId);
  } catch (err) {
    out.push(`events[${i}].session_id: ${(err as Error).message.replace(/^session_id /, "")}`);
  }
  if (e.seq < 1n) out.push(`events[${i}].seq: must be >= 1`);
  for (const [field, n] of [["input_tokens", e.inputTokens], ["output_tokens", e.outputTokens], ["tool_calls", e.toolCalls]] as const) {
    if (n > AMOUNT_MAX_MICRO) out.push(`events[${i}].${field}: must be <= 2^63-1`);
  }
  if (out.length === 0) throw new Error("invariant: invalidEventReason called for a valid event");
  return out.join("; ");
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
  const n = events.length;
  // Every slot is set below: APPLIED / DUPLICATE share one message, a refusal gets its own.
  const results = new Array<UsageResult>(n);
  let rejected = 0;
  const reject = (i: number, reason: string): void => {
    results[i] = create(UsageResultSchema, { outcome: UsageOutcome.REJECTED, reason });
    rejected++;
  };
  // Per distinct session id string: its session (null: not a valid id); per event: that session.
  const byString = new Map<string, CallSession | null>();
  const bySid = new Map<bigint, CallSession>();
  const parsed = new Array<CallSession | null>(n);
  const known: bigint[] = [];
  for (let i = 0; i < n; i++) {
    const e = events[i]!;
    let cs = byString.get(e.sessionId);
    if (cs === undefined) {
      let sid: bigint | null;
      try {
        sid = parseSessionId(e.sessionId);
      } catch {
        sid = null;
      }
      cs = null;
      if (sid !== null) {
        cs = bySid.get(sid) ?? { sid, named: false, verdict: undefined, totals: undefined, open: undefined };
        bySid.set(sid, cs);
      }
      byString.set(e.sessionId, cs);
    }
    if (cs === null || e.seq < 1n || e.inputTokens > AMOUNT_MAX_MICRO || e.outputTokens > AMOUNT_MAX_MICRO || e.toolCalls > AMOUNT_MAX_MICRO) {
      reject(i, invalidEventReason(e, i));
      parsed[i] = null;
      continue;
    }
    parsed[i] = cs;
    if (!cs.named) {
      cs.named = true;
      known.push(cs.sid);
    }
  }
  const sessions = await lookupSessions(s, known);
  const now = s.clock();
  /** Sessions with events to apply: their wallets (their meters are ensured before the write). */
  const wallets = new Map<bigint, bigint>();
  // Per session, once: the wallet, and why its events are refused ("" = they are not).
  const verdictOf = (cs: CallSession): { wallet: bigint; agent_id: string; refusal: string } => {
    let d = cs.verdict;
    if (d !== undefined) return d;
    const v = sessions.get(cs.sid) ?? null;
    if (v === null) d = { wallet: 0n, agent_id: "", refusal: "SESSION_NOT_FOUND" };
    else {
      const wallet = "wallet_id" in v ? v.wallet_id : v.agent_wallet_id;
      const agent_id = agentFor(wallet);
      const refusal = agent_id === null ? "PERMISSION_DENIED" : (refuse?.(cs.sid) ?? null);
      const open = "wallet_id" in v ? v.deadline_ns > now : v.status === "open";
      d = { wallet, agent_id: agent_id ?? "", refusal: refusal ?? (open ? "" : "SESSION_NOT_OPEN") };
      if (d.refusal === "") wallets.set(cs.sid, wallet);
    }
    cs.verdict = d;
    return d;
  };
  const chains: PlannedChain[] = [];
  const flat: Transfer[] = [];
  for (let i = 0; i < n; i++) {
    const cs = parsed[i];
    if (cs === null || cs === undefined) continue;
    const d = verdictOf(cs);
    if (d.refusal !== "") {
      reject(i, d.refusal);
      continue;
    }
    const e = events[i]!;
    const at = flat.length;
    const len = planUsageInto(
      s.ids,
      { session_id: cs.sid, agent_id: d.agent_id, seq: e.seq, input_tokens: e.inputTokens, output_tokens: e.outputTokens, tool_calls: e.toolCalls },
      flat,
    );
    chains.push({ i, session: cs, at, len });
  }
  await Promise.all([...wallets].map(([sid, wallet]) => ensureSessionMeters(s, sid, wallet)));
  await refuseTotalsPastRange(s, events, chains, sessions);
  let applied = 0;
  let duplicates = 0;
  if (chains.length > 0) {
    let res: { timestamp: bigint; status: CT }[];
    if (flat.length <= LEDGER_LIMIT) res = await s.ledger.createTransfers(flat);
    else {
      res = [];
      for (let k = 0; k < flat.length; k += LEDGER_LIMIT) {
        // chains are at most 3 long and never straddle a request (MAX_USAGE_EVENTS * 3 < 8189)
        for (const r of await s.ledger.createTransfers(flat.slice(k, k + LEDGER_LIMIT))) res.push(r);
      }
    }
    for (const c of chains) {
      // The chain's outcome is its first result that is not linked_event_failed (all created: created).
      let first: CT = CT.created;
      for (let k = c.at; k < c.at + c.len; k++) {
        const st = res[k]!.status;
        if (st !== CT.linked_event_failed) {
          first = st;
          break;
        }
      }
      if (first === CT.created) {
        results[c.i] = APPLIED_RESULT;
        applied++;
        const cs = c.session;
        if (cs.open === undefined) cs.open = s.open.get(cs.sid) ?? null;
        const open = cs.open;
        if (open) {
          const ts = res[c.at + c.len - 1]?.timestamp ?? now;
          if (ts > open.last_activity_ns) open.last_activity_ns = ts;
          for (let k = c.at; k < c.at + c.len; k++) open.meters |= 1 << flat[k]!.ledger;
        }
      } else if (first === CT.exists) {
        results[c.i] = DUPLICATE_RESULT;
        duplicates++;
      } else if ((CT[first] ?? "").startsWith("exists_with_different")) {
        reject(c.i, "SEQ_REUSED");
      } else if (first === CT.debit_account_already_closed) {
        // Settlement closed the session's meters first (ADR 0036): this event is not in its price.
        reject(c.i, "SESSION_NOT_OPEN");
      } else {
        reject(c.i, `LEDGER_REJECTED:${CT[first] ?? first}`);
      }
    }
  }
  return { results, applied, duplicates, rejected };
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
