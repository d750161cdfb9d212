/**
 * The session reaper (ADR 0033): finalizes sessions whose agent vanished, well before the
 * ledger's own timeout would silently void their hold.
 *
 * Every SESSION_REAPER_INTERVAL_MS it walks the open-session index and:
 * - settles, with close reason `idle`, a session with no heartbeat, usage or Don for
 *   SESSION_IDLE_S, billing time from Don to its LAST SIGN OF LIFE (not to now: the agent is not
 *   charged for the idle wait);
 * - settles, with close reason `max_length`, a session within reapMarginNs (>= 3 intervals) of
 *   its hold's timeout, billing time to now (capped at SESSION_MAX_S);
 * - drops from the index a session already past its deadline (the ledger voided it: EXPIRED).
 * - finishes a settlement that was interrupted after its usage meters were closed (ADR 0036).
 * Settlement closes the session's usage meters first (src/services/sessions/settle.ts): the
 * first closer's terms bind, and the Doff chain has deterministic ids, so a concurrent Doff and a
 * reap can never both apply: the loser reads the winner's record.
 */
import { idToHex } from "../../domain/ids.js";
import { readSession } from "./reads.js";
import { finishSession } from "./settle.js";
import { idleNs, type OpenSession, type SessionState } from "./state.js";
import { sessionExpiredEvent } from "../../webhooks/events.js";
import { decodeHoldTag } from "../../domain/sessions.js";

/** Enqueue `session.expired` (ADR 0105); never fails the pass (logged). */
async function notifyExpired(s: SessionState, o: OpenSession): Promise<void> {
  try {
    const version = o.hold ? decodeHoldTag(o.hold.user_data_32).price_version : (await readSession(s, o.session_id))?.price_version;
    const e = version === undefined ? undefined : await s.registry.get(version);
    await s.webhooks.enqueue(sessionExpiredEvent(o.session_id, o.masque_index, e?.author ?? null, o.deadline_ns), s.clock());
  } catch (err) {
    s.log.error({ err, session_id: idToHex(o.session_id) }, "session.expired webhook not enqueued");
  }
}

export interface Reaper {
  stop(): void;
  /** Run one pass now (tests); resolves with how many sessions were settled. */
  tick(): Promise<number>;
}

/** Sessions settled concurrently per pass. */
const PARALLEL = 64;

/**
 * How long before a hold's timeout the reaper settles it (ADR 0033, 0037): 3 intervals, so at
 * least two passes fall inside the margin whatever their phase, and at least min(60 s, a tenth
 * of SESSION_MAX_S). src/config.ts refuses an interval whose 3 intervals exceed half of
 * SESSION_MAX_S.
 */
export function reapMarginNs(interval_ms: number, max_s: number): bigint {
  const three = BigInt(interval_ms) * 3n * 1_000_000n;
  const tenth = (BigInt(max_s) * 1_000_000_000n) / 10n;
  const floor = tenth < 60_000_000_000n ? tenth : 60_000_000_000n;
  return three > floor ? three : floor;
}

/** One pass over the open-session index; resolves with how many sessions were settled. */
export async function reapOnce(s: SessionState): Promise<number> {
  const log = s.log;
  const now = s.clock();
  const margin = reapMarginNs(s.config.SESSION_REAPER_INTERVAL_MS, s.config.SESSION_MAX_S);
  const idle_ns = idleNs(s);
  const expired: OpenSession[] = [];
  const due: { sid: bigint; reason: "idle" | "max_length" | "recover"; end_ns: bigint }[] = [];
  for (const o of s.open.values()) {
    if (o.closing === true && now < o.deadline_ns) {
      due.push({ sid: o.session_id, reason: "recover", end_ns: now }); // settlement started, not finished
    } else if (now >= o.deadline_ns) {
      s.open.delete(o.session_id);
      s.reaped.expired++;
      log.warn({ session_id: idToHex(o.session_id) }, "session expired in the ledger before it could be reaped");
      expired.push(o);
    } else if (now >= o.deadline_ns - margin) {
      due.push({ sid: o.session_id, reason: "max_length", end_ns: now });
    } else if (now - o.last_activity_ns >= idle_ns) {
      due.push({ sid: o.session_id, reason: "idle", end_ns: o.last_activity_ns });
    }
  }
  for (const o of expired) await notifyExpired(s, o);
  let settled = 0;
  for (let i = 0; i < due.length; i += PARALLEL) {
    await Promise.all(
      due.slice(i, i + PARALLEL).map(async (d) => {
        try {
          const v = await readSession(s, d.sid);
          if (!v || v.status !== "open") {
            s.open.delete(d.sid);
            return;
          }
          if (d.reason === "recover") {
            // Finish on the terms the close recorded (finishSession adopts them).
            const r = await finishSession(s, v, { reason: "idle", end_ns: v.last_activity_ns }, null);
            if (r.status === "reaped") {
              settled++;
              s.reaped.recover++;
            }
            log.info({ session_id: idToHex(d.sid), status: r.status }, "session settlement finished after an interruption");
            return;
          }
          // Activity may have arrived since the scan; the ledger's last activity is authoritative for idle.
          const o = s.open.get(d.sid);
          if (d.reason === "idle" && o && s.clock() - o.last_activity_ns < idle_ns) return;
          const end = d.reason === "idle" ? (o && o.last_activity_ns > v.last_activity_ns ? o.last_activity_ns : v.last_activity_ns) : d.end_ns;
          const r = await finishSession(s, v, { reason: d.reason, end_ns: end }, null);
          if (r.status === "reaped") {
            settled++;
            s.reaped[d.reason]++;
          }
          log.info({ session_id: idToHex(d.sid), reason: d.reason, status: r.status }, "session reaped");
        } catch (err) {
          log.error({ err, session_id: idToHex(d.sid) }, "reaping a session failed; will retry");
        }
      }),
    );
  }
  return settled;
}

/** Run reapOnce every SESSION_REAPER_INTERVAL_MS (never two passes at once). */
export function startReaper(s: SessionState): Reaper {
  let running: Promise<number> | null = null;
  let stopped = false;
  const tick = (): Promise<number> => {
    if (running) return running;
    running = reapOnce(s).finally(() => {
      running = null;
    });
    return running;
  };
  const timer = setInterval(() => {
    if (!stopped) tick().catch((err: unknown) => s.log.error({ err }, "reaper pass failed"));
  }, s.config.SESSION_REAPER_INTERVAL_MS);
  timer.unref();
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
    tick,
  };
}
