/**
 * Keeps the daemon's streamer coming back (issue 18, ADR 0119). Analytics is not on the money
 * path, so a streamer that cannot start (ClickHouse unreachable, chDB's directory unusable, a
 * migration refused) never stops the daemon: the supervisor retries the whole start (open the
 * sink, migrate, read the stored cursor, start copying) with capped exponential backoff until it
 * succeeds or the daemon stops. The copy then resumes from the cursor stored in ClickHouse, so
 * ledger events made while analytics was down arrive afterwards, once (every table is idempotent,
 * ADR 0040). A streamer that loses ClickHouse after it started retries its own passes (Streamer.start).
 *
 *   const sup = superviseStreamer({ start: () => startStreamer(...), retry_min_ms: 1000, retry_max_ms: 60_000, log });
 *   await sup.begin();     // first attempt, awaited; on failure retries run in the background
 *   sup.current();         // the running streamer, or undefined while retrying
 *   await sup.stop();      // cancels retries, waits for an attempt in flight, stops the streamer
 */
import type { RunningStreamer } from "./index.js";
import type { StreamerLogger } from "./streamer.js";

export interface SupervisorOptions {
  /** One complete start attempt; rejects when the sink cannot be opened or migrated. */
  start: () => Promise<RunningStreamer>;
  /** Delay after the first failed attempt (ms); doubles per failure. */
  retry_min_ms: number;
  /** Upper bound of the delay between attempts (ms). */
  retry_max_ms: number;
  log?: StreamerLogger;
  /** Called once a streamer runs (e.g. to refresh readiness at once). */
  on_started?: (running: RunningStreamer) => void;
  /** [0, 1) source for the jitter; default Math.random. */
  random?: () => number;
}

export interface SupervisorState {
  state: "starting" | "running" | "retrying" | "stopped";
  /** Failed start attempts since the daemon started (a counter: it never goes down). */
  start_failures: number;
  /** The last failed attempt's message (at most 200 characters) while not running. */
  last_error?: string;
}

export interface StreamerSupervisor {
  /** The running streamer, or undefined while starting / retrying / after stop. */
  current(): RunningStreamer | undefined;
  state(): SupervisorState;
  /** Run the first attempt; resolves true when the streamer runs. A failure schedules retries. */
  begin(): Promise<boolean>;
  /** Cancel pending retries, wait for an attempt in flight, stop the streamer. Idempotent. */
  stop(): Promise<void>;
}

/** Most doublings applied to retry_min_ms (2^30 x 10 ms is far past any allowed cap). */
const MAX_DOUBLINGS = 30;

/**
 * Delay before the next attempt after `failures` (>= 1) failed ones: min(max, min x 2^(failures-1)),
 * with "equal jitter" (half fixed, half random) so daemons sharing one ClickHouse do not retry in
 * step. Always within [delay / 2, delay] and never above retry_max_ms.
 */
export function retryDelayMs(failures: number, retry_min_ms: number, retry_max_ms: number, random: () => number = Math.random): number {
  if (!(Number.isInteger(failures) && failures >= 1)) throw new Error(`retryDelayMs: failures must be an integer >= 1, got ${failures}`);
  const cap = Math.max(1, retry_max_ms);
  const delay = Math.min(cap, Math.max(1, retry_min_ms) * 2 ** Math.min(failures - 1, MAX_DOUBLINGS));
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(delay / 2 + (delay / 2) * r);
}

/** Build a supervisor; nothing runs until begin(). */
export function superviseStreamer(o: SupervisorOptions): StreamerSupervisor {
  let running: RunningStreamer | undefined;
  let failures = 0;
  let lastError: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let attempt: Promise<void> = Promise.resolve();
  let stopped = false;
  let began = false;

  const tryStart = async (): Promise<void> => {
    let started: RunningStreamer;
    try {
      started = await o.start();
    } catch (err) {
      failures++;
      lastError = (err as Error).message.slice(0, 200);
      if (stopped) return;
      const retry_in_ms = retryDelayMs(failures, o.retry_min_ms, o.retry_max_ms, o.random);
      o.log?.error(
        { err, start_failures: failures, retry_in_ms },
        failures === 1 ? "streamer failed to start; serving without analytics" : "streamer still cannot start; retrying",
      );
      timer = setTimeout(() => {
        timer = undefined;
        attempt = tryStart();
      }, retry_in_ms);
      timer.unref();
      return;
    }
    if (stopped) {
      await started.stop();
      return;
    }
    running = started;
    lastError = undefined;
    if (failures > 0) o.log?.info({ start_failures: failures, sink: started.describe }, "streamer started after retrying; copying from the stored cursor");
    o.on_started?.(started);
  };

  return {
    current: () => running,
    state: () => ({
      state: stopped ? "stopped" : running ? "running" : failures > 0 ? "retrying" : "starting",
      start_failures: failures,
      ...(running || lastError === undefined ? {} : { last_error: lastError }),
    }),
    begin() {
      if (began) throw new Error("superviseStreamer: begin() called twice");
      began = true;
      attempt = tryStart();
      return attempt.then(() => running !== undefined);
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await attempt;
      const r = running;
      running = undefined;
      await r?.stop();
    },
  };
}
