/**
 * Readiness (issue 18, ADR 0117): the payments API is ready when the daemon is serving, the
 * ledger answers a lookup and the control-plane database answers `select 1`. Analytics
 * (ClickHouse) is probed and reported as its own health service (`masques.analytics`) and never
 * makes the daemon not-ready (ADR 0040). Probes are bounded by `timeout_ms` and their answer is
 * reused for `cache_ms`, so a burst of checks costs one probe.
 *
 * Analytics is `ok` only while the streamer runs, its sink answers `SELECT 1` and its last copy
 * pass succeeded (ADR 0119): a streamer still retrying its start, or one whose copy is failing
 * mid-run, is reported with the reason, and turns `ok` again once it recovers.
 */
import { sql, type Kysely } from "kysely";
import type { Client } from "tigerbeetle-node";
import type { Database } from "../controlplane/schema.js";
import type { Sink } from "../streamer/sink.js";
import type { StreamerHealth } from "../streamer/streamer.js";

export const ANALYTICS_HEALTH_SERVICE = "masques.analytics";

export interface ReadinessReport {
  ready: boolean;
  status: "SERVING" | "NOT_SERVING";
  checks: { serving: boolean; ledger: string; controlplane: string; analytics: string };
}

export interface Readiness {
  check(): Promise<ReadinessReport>;
  /** Probe now, ignoring the cached answer (e.g. when analytics just came back). */
  refresh(): Promise<ReadinessReport>;
  setServing(serving: boolean): void;
}

export interface ReadinessDeps {
  ledger: Client;
  db: Kysely<Database>;
  sink: () => Sink | undefined;
  /** Why there is no sink (e.g. the streamer's last start failure), for `checks.analytics`. */
  analyticsDown?: () => string | undefined;
  /** The running streamer's copy health: a failing copy makes analytics not ok. */
  streamerHealth?: () => StreamerHealth | undefined;
  timeout_ms?: number;
  cache_ms?: number;
  /** Called after each probe (the gRPC health statuses follow it). */
  onReport?: (r: ReadinessReport) => void;
}

async function probe(what: () => Promise<unknown>, timeout_ms: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      what(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeout_ms} ms`)), timeout_ms))),
    ]);
    return "ok";
  } catch (err) {
    return `unreachable: ${(err as Error).message.slice(0, 200)}`;
  } finally {
    clearTimeout(timer);
  }
}

export function createReadiness(d: ReadinessDeps): Readiness {
  let serving = false;
  let last: { at: number; report: Promise<ReadinessReport> } | null = null;
  const timeout_ms = d.timeout_ms ?? 2_000;
  const cache_ms = d.cache_ms ?? 500;
  const run = async (): Promise<ReadinessReport> => {
    const sink = d.sink();
    const [ledger, controlplane, analyticsProbe] = await Promise.all([
      probe(() => d.ledger.lookupAccounts([1n]), timeout_ms),
      probe(() => sql`select 1`.execute(d.db), timeout_ms),
      sink
        ? probe(() => sink.query("SELECT 1 AS ok"), timeout_ms)
        : Promise.resolve(`unreachable: ${d.analyticsDown?.() ?? "analytics is off or did not start"}`),
    ]);
    const copy = sink && analyticsProbe === "ok" ? d.streamerHealth?.() : undefined;
    const analytics =
      copy?.failing === true
        ? `failing: the copy to ClickHouse failed ${copy.consecutive_failures} time(s) in a row, retrying: ${copy.last_error ?? "unknown error"}`
        : analyticsProbe;
    const ready = serving && ledger === "ok" && controlplane === "ok";
    const report: ReadinessReport = { ready, status: ready ? "SERVING" : "NOT_SERVING", checks: { serving, ledger, controlplane, analytics } };
    d.onReport?.(report);
    return report;
  };
  return {
    check() {
      const now = Date.now();
      if (!last || now - last.at > cache_ms) last = { at: now, report: run() };
      return last.report;
    },
    refresh() {
      last = { at: Date.now(), report: run() };
      return last.report;
    },
    setServing(s) {
      serving = s;
      last = null;
    },
  };
}
