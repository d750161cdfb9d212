/**
 * The session reaper (ADR 0033): finalizes sessions whose agent vanished, well before the
 * ledger's own timeout would silently void their hold.
 *
 * Every SESSION_REAPER_INTERVAL_MS it walks the open-session index and:
 * - settles, with close reason `idle`, a session with no heartbeat, usage or Don for
 *   SESSION_IDLE_S, billing time from Don to its LAST SIGN OF LIFE (not to now: the agent is not
 *   charged for the idle wait);
 * - settles, with close reason `max_length`, a session within a safety margin of its hold's
 *   timeout (margin = max(3 intervals, 60 s), at most a tenth of SESSION_MAX_S), billing time to
 *   now (capped at SESSION_MAX_S);
 * - drops from the index a session already past its deadline (the ledger voided it: EXPIRED).
 * Settlement is the same linked Doff chain with the same deterministic ids, so a concurrent Doff
 * and a reap can never both apply: the loser reads the winner's record.
 */
import type { Logger } from "pino";
import type { SessionEngine } from "./session-service.js";

export interface Reaper {
  stop(): void;
  /** Run one pass now (tests); resolves with how many sessions were settled. */
  tick(): Promise<number>;
}

const PARALLEL = 64;

export function reapMarginNs(interval_ms: number, max_s: number): bigint {
  const three = BigInt(interval_ms) * 3n * 1_000_000n;
  const floor = 60_000_000_000n;
  let margin = three > floor ? three : floor;
  const tenth = (BigInt(max_s) * 1_000_000_000n) / 10n;
  if (margin > tenth) margin = tenth;
  return margin;
}

export async function reapOnce(engine: SessionEngine, interval_ms: number, log: Logger): Promise<number> {
  const now = engine.now();
  const margin = reapMarginNs(interval_ms, engine.max_s);
  const due: { sid: bigint; reason: "idle" | "max_length"; end_ns: bigint }[] = [];
  for (const s of engine.open.values()) {
    if (now >= s.deadline_ns) {
      engine.open.delete(s.session_id);
      log.warn({ session_id: s.session_id.toString(16).padStart(32, "0") }, "session expired in the ledger before it could be reaped");
    } else if (now >= s.deadline_ns - margin) {
      due.push({ sid: s.session_id, reason: "max_length", end_ns: now });
    } else if (now - s.last_activity_ns >= engine.idle_ns) {
      due.push({ sid: s.session_id, reason: "idle", end_ns: s.last_activity_ns });
    }
  }
  let settled = 0;
  for (let i = 0; i < due.length; i += PARALLEL) {
    await Promise.all(
      due.slice(i, i + PARALLEL).map(async (d) => {
        try {
          const v = await engine.view(d.sid);
          if (!v || v.status !== "open") {
            engine.open.delete(d.sid);
            return;
          }
          // Activity may have arrived since the scan; the ledger's last activity is authoritative for idle.
          const o = engine.open.get(d.sid);
          if (d.reason === "idle" && o && engine.now() - o.last_activity_ns < engine.idle_ns) return;
          const end = d.reason === "idle" ? (o && o.last_activity_ns > v.last_activity_ns ? o.last_activity_ns : v.last_activity_ns) : d.end_ns;
          const r = await engine.settle(v, d.reason, end, null);
          if (r.status === "reaped") settled++;
          log.info({ session_id: d.sid.toString(16).padStart(32, "0"), reason: d.reason, status: r.status }, "session reaped");
        } catch (err) {
          log.error({ err, session_id: d.sid.toString(16).padStart(32, "0") }, "reaping a session failed; will retry");
        }
      }),
    );
  }
  return settled;
}

export function startReaper(engine: SessionEngine, interval_ms: number, log: Logger): Reaper {
  let running: Promise<number> | null = null;
  let stopped = false;
  const tick = (): Promise<number> => {
    if (running) return running;
    running = reapOnce(engine, interval_ms, log).finally(() => {
      running = null;
    });
    return running;
  };
  const timer = setInterval(() => {
    if (!stopped) tick().catch((err: unknown) => log.error({ err }, "reaper pass failed"));
  }, interval_ms);
  timer.unref();
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
    tick,
  };
}
