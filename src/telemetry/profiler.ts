/**
 * Opt-in CPU profiler for benchmarks and debugging (issue 20, ADR 0123). Off unless the daemon
 * starts with MASQUES_CPU_PROFILE_DIR: then each SIGUSR2 toggles a V8 CPU profile of the
 * daemon's main thread (a `node:inspector` Profiler session in-process); the stop writes
 * `<dir>/daemon-<pid>-<n>.cpuprofile` (n = 1, 2, … per process; written to a temporary name and
 * renamed, so a file that exists is complete). While a profile runs, `<dir>/daemon-<pid>.profiling`
 * exists (written once sampling has started, like the profiles under a temporary name first;
 * removed at the stop), so a driver can wait for the
 * start instead of guessing. `npm run bench` uses it to split each phase's daemon CPU by category
 * (bench/profile-categories.ts); the files open in Chrome DevTools.
 *
 * Costs nothing when off (no signal handler, no session). While a profile runs, the sampler
 * interrupts the main thread every {@link CPU_PROFILE_SAMPLING_INTERVAL_US} µs (ADR 0123 has the
 * measured overhead). Failures are logged and never stop the daemon.
 */
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import path from "node:path";
import type { Logger } from "pino";

/** The signal that starts and stops a profile. */
export const CPU_PROFILE_SIGNAL = "SIGUSR2";
/** Sampling interval of the profiles, µs (V8's default is 1000; finer gives short phases enough samples). */
export const CPU_PROFILE_SAMPLING_INTERVAL_US = 250;

/** A running toggle; {@link startCpuProfiler} returns it for tests and the signal handler. */
export interface CpuProfiler {
  /** Start a profile if none runs, otherwise stop it and write it; resolves to the file written (or null on a start). */
  toggle(): Promise<string | null>;
  /** Remove the signal handler and discard a running profile. */
  close(): Promise<void>;
}

let installed: CpuProfiler | undefined;

/**
 * Install the SIGUSR2 toggle when `dir` is set (MASQUES_CPU_PROFILE_DIR); undefined otherwise.
 * One per process: installing again (a second daemon in one process) replaces the previous one.
 */
export function startCpuProfiler(dir: string | undefined, log: Logger): CpuProfiler | undefined {
  if (!dir) return undefined;
  void installed?.close();
  let session: Session | undefined;
  let seq = 0;
  let chain: Promise<string | null> = Promise.resolve(null);
  const marker = path.join(dir, `daemon-${process.pid}.profiling`);

  const start = async (): Promise<null> => {
    const t0 = performance.now();
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const s = new Session();
    s.connect();
    await s.post("Profiler.enable");
    await s.post("Profiler.setSamplingInterval", { interval: CPU_PROFILE_SAMPLING_INTERVAL_US });
    await s.post("Profiler.start");
    session = s;
    const start_ms = Math.round(performance.now() - t0);
    await writeFile(`${marker}.tmp`, JSON.stringify({ pid: process.pid, sampling_interval_us: CPU_PROFILE_SAMPLING_INTERVAL_US, start_ms }), { mode: 0o600 });
    await rename(`${marker}.tmp`, marker);
    log.info({ dir, sampling_interval_us: CPU_PROFILE_SAMPLING_INTERVAL_US, start_ms }, "cpu profile started");
    return null;
  };
  const stop = async (): Promise<string> => {
    const s = session!;
    session = undefined;
    try {
      const { profile } = await s.post("Profiler.stop");
      await rm(marker, { force: true });
      seq += 1;
      const file = path.join(dir, `daemon-${process.pid}-${seq}.cpuprofile`);
      await writeFile(`${file}.tmp`, JSON.stringify(profile), { mode: 0o600 });
      await rename(`${file}.tmp`, file);
      log.info({ file }, "cpu profile written");
      return file;
    } finally {
      s.disconnect();
    }
  };
  const toggle = (): Promise<string | null> => {
    chain = chain.catch(() => null).then(() => (session ? stop() : start()));
    return chain;
  };
  const onSignal = () => {
    toggle().catch((err: unknown) => log.error({ err, dir }, "cpu profile toggle failed"));
  };
  process.on(CPU_PROFILE_SIGNAL, onSignal);
  log.info({ dir, signal: CPU_PROFILE_SIGNAL }, "cpu profiling on request enabled (MASQUES_CPU_PROFILE_DIR)");
  const self: CpuProfiler = {
    toggle,
    async close() {
      process.off(CPU_PROFILE_SIGNAL, onSignal);
      if (installed === self) installed = undefined;
      const s = session;
      session = undefined;
      if (s) {
        await s.post("Profiler.stop").catch(() => undefined);
        s.disconnect();
        await rm(marker, { force: true });
      }
    },
  };
  installed = self;
  return self;
}
