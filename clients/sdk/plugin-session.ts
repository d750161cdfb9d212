/**
 * The plugin flow: don / usage / heartbeat / doff / cancel driven by the plugin's session file
 * (`.claude/masque.session.yaml`). The CLI commands are thin wrappers over these functions, and a
 * plugin written in JavaScript can call them directly.
 *
 * Crash and outage safety comes from writing intent to the file *before* each call:
 * - the session id (= the Don's idempotency key) is recorded as `status: pending` before the Don,
 *   so re-running `don` finishes that same Don instead of holding twice. Only an explicit `don`
 *   does: the user was told the Don failed, so a heartbeat reports the pending intent and leaves
 *   it alone, and a doff or cancel drops it without charging anything (issue 12);
 * - each usage report gets its sequence number and is queued in `unsent_usage` before it is sent,
 *   and is removed only once the daemon acknowledged it (a duplicate is an acknowledgement), so a
 *   dropped connection neither loses nor double-counts usage;
 * - Doff/Cancel are idempotent by session id; the file is updated only after the daemon answered.
 * The file lock is never held across a network call.
 */
import { Code } from "@connectrpc/connect";
import type { MasquesClient } from "./client.js";
import { AlreadyDonnedError, MasquesError, NoActiveSessionError } from "./errors.js";
import { formatUsd } from "./money.js";
import { isFullSession, newSessionId, SessionStatus, type BasicSession, type Session, type SessionOf, type SessionViewName } from "./sessions.js";
import { UsageOutcome } from "../gen/masques/ledger/v1/session_service_pb.js";
import { withSessionFile, type LedgerOutcome, type LedgerSessionState, type UnsentUsage } from "./session-file.js";
import { timestampDate } from "@bufbuild/protobuf/wkt";

export interface DonOptions {
  masque: string;
  intent?: string;
  max_spend_micro?: bigint;
  agent_id?: string;
  billing_mode?: "shadow" | "soft" | "live";
  /** The plugin's `source` (private | shared). Default: keep the file's, else "shared". */
  source?: string;
  /** The Claude Code session id: the daemon bills the session from its OTLP events (issue 18). */
  claude_session_id?: string;
  /**
   * How much of the session the Don's reply carries (see SessionViewName; default "full"). With
   * "basic" the file's `active.name` is the masque asked for and `active.donned_at` this machine's
   * clock when the daemon answered (the full view gives the ledger's don time).
   */
  view?: SessionViewName;
}

/**
 * `already_donned` reads the session with GetSession, so it is a full `Session` whatever the view
 * (assignable to `SessionOf<V>`).
 */
export type DonResult<V extends SessionViewName = "full"> =
  | { kind: "donned"; session: SessionOf<V>; resumed: boolean }
  | { kind: "already_donned"; session: SessionOf<V> };

export type DoffResult<V extends SessionViewName = "full"> =
  /**
   * `pending_dropped`: the active Don had never finished; it was cancelled instead (nothing
   * charged). `masque`: the masque's name as the session file recorded it (null when the caller
   * named the session explicitly): what to call a basic session, which carries no name.
   */
  | { kind: "settled"; session: SessionOf<V>; masque: string | null; pending_dropped?: boolean }
  | { kind: "already_settled"; outcome: LedgerOutcome; name: string | null }
  | { kind: "unpaid"; name: string | null }
  | { kind: "never_held"; masque: string; reason: MasquesError };

export interface UsageReport {
  input_tokens?: bigint;
  output_tokens?: bigint;
  tool_calls?: bigint;
}

export interface FlushResult {
  /** Events acknowledged by the daemon now (applied or duplicates of earlier attempts). */
  acknowledged: number;
  /** Events the daemon refused (removed from the queue), with reasons. */
  rejected: Array<{ seq: number; reason: string }>;
  /** Events still queued (only when the session is not confirmed yet). */
  queued: number;
}

const now = () => new Date().toISOString();
/** The ledger's time `f` of a full session; this machine's clock for a basic one (it carries no times). */
const iso = (s: BasicSession | Session, f: "donTime" | "endTime") => {
  const t = isFullSession(s) ? s[f] : undefined;
  return t ? timestampDate(t).toISOString() : now();
};

function outcomeOf(s: BasicSession): LedgerOutcome {
  const status: LedgerOutcome["status"] =
    s.status === SessionStatus.CANCELLED ? "cancelled" : s.status === SessionStatus.REAPED ? "reaped" : s.status === SessionStatus.EXPIRED ? "expired" : "doffed";
  return { session_id: s.sessionId, status, charged_micro: s.chargedMicro, refunded_micro: s.refundMicro };
}

function noActive(message: string, hint = "Use `masques-ledger-client don <masque>` (or /don) to start a paid session."): NoActiveSessionError {
  return new NoActiveSessionError({ message, hint, kind: "user", grpc_code: Code.FailedPrecondition });
}

/**
 * Don a masque and record it in the session file. Idempotent: donning the masque that is already
 * active returns it; an unfinished Don of the same masque (outage) is finished with its original
 * session id.
 */
export async function donMasque<V extends SessionViewName = "full">(client: MasquesClient, path: string, o: DonOptions & { view?: V }): Promise<DonResult<V>> {
  const plan = await withSessionFile(path, async (f) => {
    const v = f.view();
    const l = v.active.ledger;
    if (l) {
      if (l.masque === o.masque && l.status === "active") return { mode: "existing", ledger: l, resumed: false } as const;
      if (l.masque !== o.masque) {
        throw new AlreadyDonnedError({
          message:
            l.status === "active"
              ? `"${l.masque}" is still donned (session ${l.session_id}).`
              : `An earlier don of "${l.masque}" did not finish (session ${l.session_id}, the daemon did not answer).`,
          hint:
            l.status === "active"
              ? "Doff it first: `masques-ledger-client doff` (or /doff), then don the new masque."
              : `Finish it with \`masques-ledger-client don ${l.masque}\`, or drop it with \`masques-ledger-client cancel\`, then don the new masque.`,
          kind: "user",
          grpc_code: Code.FailedPrecondition,
        });
      }
      return { mode: "call", ledger: l, resumed: true } as const; // same masque, pending: finish that Don
    }
    const ledger: LedgerSessionState = {
      session_id: newSessionId(),
      masque: o.masque,
      status: "pending",
      usage_seq: 0,
      unsent_usage: [],
      endpoint: client.config.endpoint,
      ...(o.max_spend_micro !== undefined ? { max_spend_micro: o.max_spend_micro } : {}),
      ...(o.intent ? { intent: o.intent } : {}),
    };
    f.setActiveLedger(ledger);
    await f.save();
    return { mode: "call", ledger, resumed: false } as const;
  });

  if (plan.mode === "existing") {
    const session = await client.sessions.get(plan.ledger.session_id);
    if (session.status === SessionStatus.OPEN) return { kind: "already_donned", session: session as SessionOf<V> };
    // The ledger already settled it (reaped while idle, expired): record that, start a new one.
    await recordEnd(path, session);
    return donMasque(client, path, o);
  }
  const { ledger, resumed } = plan;
  let session: SessionOf<V>;
  try {
    ({ session } = await client.sessions.don<V>({
      masque: o.masque,
      session_id: ledger.session_id,
      ...(o.agent_id ? { agent_id: o.agent_id } : {}),
      ...(ledger.max_spend_micro !== undefined ? { max_spend_micro: ledger.max_spend_micro } : {}),
      ...(o.billing_mode ? { billing_mode: o.billing_mode } : {}),
      ...(o.claude_session_id ? { claude_session_id: o.claude_session_id } : {}),
      ...(o.view ? { view: o.view } : {}),
    }));
  } catch (e) {
    if (e instanceof MasquesError && e.kind === "user") {
      // Refused (no funds, unknown masque, denied...): nothing is held, forget the attempt.
      await withSessionFile(path, async (f) => {
        if (f.view().active.ledger?.session_id === ledger.session_id) {
          f.clearActiveLedger();
          await f.save();
        }
      });
      throw e;
    }
    if (e instanceof MasquesError) {
      throw new MasquesError({
        message: e.message,
        hint: `Nothing is lost: re-run \`masques-ledger-client don ${o.masque}\` (or /don) when the daemon is back. It reuses session ${ledger.session_id}, so it can never hold twice.`,
        kind: e.kind,
        grpc_code: e.grpc_code,
        ...(e.request_id ? { request_id: e.request_id } : {}),
        cause: e,
      });
    }
    throw e;
  }
  await withSessionFile(path, async (f) => {
    const cur = f.view().active.ledger;
    const base = cur?.session_id === ledger.session_id ? cur : ledger;
    f.setActive({
      name: (isFullSession(session) && session.masqueName) || o.masque,
      source: o.source ?? null,
      donned_at: iso(session, "donTime"),
      ledger: { ...base, status: "active", reserved_micro: session.holdMicro },
    });
    await f.save();
  });
  return { kind: "donned", session, resumed };
}

/** Send every queued usage event of the active session; acknowledged ones leave the queue. */
export async function flushUsage(client: MasquesClient, path: string): Promise<FlushResult> {
  const snap = await withSessionFile(path, (f) => f.view().active.ledger);
  if (!snap || snap.unsent_usage.length === 0) return { acknowledged: 0, rejected: [], queued: snap?.unsent_usage.length ?? 0 };
  if (snap.status !== "active") return { acknowledged: 0, rejected: [], queued: snap.unsent_usage.length };
  const events = snap.unsent_usage;
  const res = await client.sessions.recordUsage(events.map((u) => ({ session_id: snap.session_id, ...u })));
  const done = new Set<number>();
  const rejected: FlushResult["rejected"] = [];
  res.results.forEach((r, i) => {
    const ev = events[i];
    if (!ev) return;
    done.add(ev.seq);
    if (r.outcome === UsageOutcome.REJECTED) rejected.push({ seq: ev.seq, reason: r.reason || "REJECTED" });
  });
  const queued = await withSessionFile(path, async (f) => {
    const cur = f.view().active.ledger;
    if (!cur || cur.session_id !== snap.session_id) return 0;
    const left = cur.unsent_usage.filter((u) => !done.has(u.seq));
    f.setActiveLedger({ ...cur, unsent_usage: left });
    await f.save();
    return left.length;
  });
  return { acknowledged: done.size - rejected.length, rejected, queued };
}

/**
 * Report usage for the active session: the event gets the next sequence number and is queued in
 * the file, then everything queued is sent.
 */
export async function reportUsage(client: MasquesClient, path: string, u: UsageReport): Promise<{ seq: number; session_id: string; flush: FlushResult }> {
  const { seq, session_id } = await withSessionFile(path, async (f) => {
    const l = f.view().active.ledger;
    if (!l) throw noActive("No paid masque session is active, so there is nothing to report usage for.");
    const seq = l.usage_seq + 1;
    const ev: UnsentUsage = { seq, input_tokens: u.input_tokens ?? 0n, output_tokens: u.output_tokens ?? 0n, tool_calls: u.tool_calls ?? 0n };
    f.setActiveLedger({ ...l, usage_seq: seq, unsent_usage: [...l.unsent_usage, ev] });
    await f.save();
    return { seq, session_id: l.session_id };
  });
  try {
    return { seq, session_id, flush: await flushUsage(client, path) };
  } catch (e) {
    throw withOutageHint(e, "The usage is kept in the session file and sent with the next usage, heartbeat or doff; it is counted exactly once.");
  }
}

/**
 * Pin a pending Don with its own session id (idempotent: if the original request landed, this is
 * that same session), so the caller can cancel it. Returns the error if the daemon refused it.
 */
async function settlePending(client: MasquesClient, path: string, l: LedgerSessionState): Promise<MasquesError | undefined> {
  try {
    // Only pinned to be cancelled at once: the basic view carries all that is used of the reply.
    await donMasque(client, path, {
      masque: l.masque,
      view: "basic",
      ...(l.intent ? { intent: l.intent } : {}),
      ...(l.max_spend_micro !== undefined ? { max_spend_micro: l.max_spend_micro } : {}),
    });
    return undefined;
  } catch (e) {
    if (e instanceof MasquesError && e.kind === "user") return e;
    throw e;
  }
}

/**
 * Keep the active session alive (for a hook). No paid session: `none`. A Don that never finished
 * (the user was told it failed): `pending`, and nothing is sent — only an explicit `donMasque`
 * finishes it. Flushes queued usage first. If the daemon already settled the session (reaped for
 * idleness, expired), the file is updated to say so.
 */
export async function heartbeatSession(
  client: MasquesClient,
  path: string,
): Promise<
  | { kind: "none" }
  | { kind: "pending"; masque: string; session_id: string }
  | { kind: "alive"; session_id: string; idle_deadline: string | null; flush: FlushResult }
  | { kind: "ended"; session: Session }
> {
  const l = await withSessionFile(path, (f) => f.view().active.ledger);
  if (!l) return { kind: "none" };
  if (l.status === "pending") return { kind: "pending", masque: l.masque, session_id: l.session_id };
  const flush = await flushUsage(client, path);
  const hb = await client.sessions.heartbeat(l.session_id);
  if (hb.status !== SessionStatus.OPEN) {
    const session = await client.sessions.get(l.session_id);
    await recordEnd(path, session);
    return { kind: "ended", session };
  }
  return { kind: "alive", session_id: l.session_id, idle_deadline: hb.idleDeadlineTime ? timestampDate(hb.idleDeadlineTime).toISOString() : null, flush };
}

async function recordEnd(path: string, session: BasicSession | Session): Promise<void> {
  await withSessionFile(path, async (f) => {
    if (f.view().active.ledger?.session_id !== session.sessionId) return;
    f.moveActiveToPrevious(iso(session, "endTime"), outcomeOf(session));
    await f.save();
  });
}

/**
 * Doff (or cancel) the active masque: flushes queued usage, settles the session and moves it to
 * `previous` with the outcome. A Don that never finished is dropped, never charged: it is pinned
 * with its own session id (so a late copy of the original request cannot hold afterwards) and
 * cancelled at once — the hold returns whole (`pending_dropped`). Idempotent: after a doff,
 * doffing again returns the recorded outcome. `options.view` (default "full") is the view of the
 * Doff/Cancel reply (see SessionViewName); with "basic" the file's `previous.doffed_at` is this
 * machine's clock when the daemon answered.
 */
export async function endSession<V extends SessionViewName = "full">(
  client: MasquesClient,
  path: string,
  how: "doff" | "cancel",
  explicitSessionId?: string,
  options: { view?: V } = {},
): Promise<DoffResult<V>> {
  const callView = options.view ? { view: options.view } : {};
  if (explicitSessionId) {
    const session = how === "doff" ? await client.sessions.doff<V>(explicitSessionId, callView) : await client.sessions.cancel<V>(explicitSessionId, callView);
    await recordEnd(path, session);
    return { kind: "settled", session, masque: null };
  }
  const v = await withSessionFile(path, (f) => f.view());
  let l = v.active.ledger;
  if (!l) {
    if (v.active.name) {
      // Donned by the plugin without the ledger (a free masque): just doff it locally.
      await withSessionFile(path, async (f) => {
        f.moveActiveToPrevious(now());
        await f.save();
      });
      return { kind: "unpaid", name: v.active.name };
    }
    if (v.previous.ledger) return { kind: "already_settled", outcome: v.previous.ledger, name: v.previous.name };
    throw noActive("No masque is currently active.", "Nothing to do. `masques-ledger-client sessions` lists your sessions on the ledger.");
  }
  let dropPending = false;
  if (l.status === "pending") {
    dropPending = true;
    const refused = await settlePending(client, path, l);
    if (refused) {
      await withSessionFile(path, async (f) => {
        if (f.view().active.ledger?.session_id !== l!.session_id) return;
        f.moveActiveToPrevious(now(), { session_id: l!.session_id, status: "never_held" });
        await f.save();
      });
      return { kind: "never_held", masque: l.masque, reason: refused };
    }
    l = (await withSessionFile(path, (f) => f.view().active.ledger)) ?? l;
  }
  const op = dropPending ? "cancel" : how;
  if (op === "doff") {
    try {
      await flushUsage(client, path);
    } catch (e) {
      throw withOutageHint(e, "The masque is still donned and its usage is kept. Re-run `masques-ledger-client doff` (or /doff) when the daemon is back; nothing is charged twice.");
    }
  }
  let session: SessionOf<V>;
  try {
    session = op === "doff" ? await client.sessions.doff<V>(l.session_id, callView) : await client.sessions.cancel<V>(l.session_id, callView);
  } catch (e) {
    if (e instanceof MasquesError && e.kind === "outage") {
      throw withOutageHint(e, `The masque is still donned. Re-run \`masques-ledger-client ${how}\` (or /doff) when the daemon is back; it settles session ${l.session_id} exactly once.`);
    }
    if (e instanceof MasquesError && e.grpc_code === Code.FailedPrecondition && op === "cancel") {
      // Already settled (doffed or reaped): record what the ledger says and report it.
      const s = await client.sessions.get(l.session_id);
      await recordEnd(path, s);
      throw new MasquesError({
        message: `Session ${l.session_id} can no longer be cancelled: it was already ${SessionStatus[s.status].toLowerCase()} (charged ${formatUsd(s.chargedMicro)}).`,
        hint: "Nothing else to do; the session file now records the outcome.",
        kind: "user",
        grpc_code: Code.FailedPrecondition,
        cause: e,
      });
    }
    throw e;
  }
  await recordEnd(path, session);
  return dropPending ? { kind: "settled", session, masque: l.masque, pending_dropped: true } : { kind: "settled", session, masque: l.masque };
}

/**
 * `e` with the plugin flow's own hint when it is an outage (the daemon unreachable or failing:
 * what was kept and what to re-run), else `e` unchanged. Keeps the message, gRPC code and cause.
 */
function withOutageHint(e: unknown, hint: string): unknown {
  if (!(e instanceof MasquesError) || e.kind !== "outage") return e;
  return new MasquesError({ message: e.message, hint, kind: "outage", grpc_code: e.grpc_code, cause: e });
}
