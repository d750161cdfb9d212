/**
 * Reconciliation inside the daemon, without downtime: on a schedule (every `interval_s`) and on
 * request (AdminService.RunReconciliation). Each run pauses the streamer between copy passes,
 * catches the copy up with the ledger, compares (src/streamer/reconcile.ts) and resumes; the last
 * result is kept for AdminService.GetReconciliation and logged (warn on drift).
 *
 * Bounds: one run at a time. A caller arriving during a run gets the next run, never the one in
 * progress (it may have started before the caller's writes); every caller arriving during the same
 * run shares that one follow-up run, so at most one run is queued. A run that throws is recorded as
 * a failed result (`error`), never thrown at the scheduler.
 */
import type { Client } from "tigerbeetle-node";
import { reconcile, type ReconcileReport } from "./reconcile.js";
import type { Sink } from "./sink.js";
import type { Streamer, StreamerLogger } from "./streamer.js";

export type ReconciliationTrigger = "schedule" | "request";

/** One finished run. Times are the daemon clock in ns since the epoch. */
export interface ReconciliationRun {
  started_at_ns: bigint;
  finished_at_ns: bigint;
  trigger: ReconciliationTrigger;
  /** Transfers the streamer copied just before comparing. */
  synced_transfers: number;
  /** Set when the comparison completed. */
  report?: ReconcileReport;
  /** Set when it could not complete (ledger or ClickHouse unavailable). */
  error?: string;
}

/** True when the run completed without drift. */
export function runOk(r: ReconciliationRun): boolean {
  return r.report !== undefined && r.report.ok;
}

/** What the admin service needs from the daemon's reconciliation. */
export interface ReconciliationPort {
  /** Run now (or, during a run, the next run, shared by every caller arriving meanwhile) and return its result. */
  run(trigger: ReconciliationTrigger): Promise<ReconciliationRun>;
  /** The last finished run, if any. */
  last(): ReconciliationRun | undefined;
  /** When the next scheduled run is due (ns since epoch), or undefined when not scheduled. */
  nextRunAtNs(): bigint | undefined;
}

export interface ReconcilerOptions {
  client: Client;
  sink: Sink;
  streamer: Streamer;
  /** Seconds between scheduled runs; 0 = only on request. */
  interval_s: number;
  /** ns since epoch. */
  clock: () => bigint;
  log?: StreamerLogger;
}

/** Scheduled and on-demand reconciliation for a running streamer. */
export class Reconciler implements ReconciliationPort {
  private inFlight: Promise<ReconciliationRun> | null = null;
  private queued: Promise<ReconciliationRun> | null = null;
  private lastRun: ReconciliationRun | undefined;
  private timer: NodeJS.Timeout | null = null;
  private nextAtNs: bigint | undefined;
  private stopped = false;

  constructor(private readonly opts: ReconcilerOptions) {
    if (!(Number.isInteger(opts.interval_s) && opts.interval_s >= 0)) {
      throw new Error(`reconciler: interval_s must be a non-negative integer, got ${opts.interval_s}`);
    }
  }

  /** Start the schedule (no-op when interval_s is 0). The first run is one interval from now. */
  start(): void {
    if (this.opts.interval_s === 0 || this.stopped) return;
    this.schedule();
  }

  private schedule(): void {
    const ms = this.opts.interval_s * 1000;
    this.nextAtNs = this.opts.clock() + BigInt(ms) * 1_000_000n;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run("schedule").finally(() => {
        if (!this.stopped) this.schedule();
      });
    }, ms);
    this.timer.unref();
  }

  run(trigger: ReconciliationTrigger): Promise<ReconciliationRun> {
    if (this.stopped) return Promise.reject(new Error("reconciler stopped"));
    if (this.inFlight === null) return (this.inFlight = this.track(trigger));
    this.queued ??= this.inFlight.then(
      () => this.startQueued(trigger),
      () => this.startQueued(trigger),
    );
    return this.queued;
  }

  private startQueued(trigger: ReconciliationTrigger): Promise<ReconciliationRun> {
    this.queued = null;
    if (this.stopped) return Promise.reject(new Error("reconciler stopped"));
    return (this.inFlight = this.track(trigger));
  }

  private track(trigger: ReconciliationTrigger): Promise<ReconciliationRun> {
    return this.runOnce(trigger).finally(() => {
      this.inFlight = null;
    });
  }

  private async runOnce(trigger: ReconciliationTrigger): Promise<ReconciliationRun> {
    const { client, sink, streamer, clock, log } = this.opts;
    const started_at_ns = clock();
    let synced_transfers = 0;
    let run: ReconciliationRun;
    try {
      const report = await streamer.exclusive(async () => {
        synced_transfers = (await streamer.syncOnce()).transfers;
        return reconcile({ client, sink });
      });
      run = { started_at_ns, finished_at_ns: clock(), trigger, synced_transfers, report };
    } catch (err) {
      run = { started_at_ns, finished_at_ns: clock(), trigger, synced_transfers, error: (err as Error).message };
    }
    this.lastRun = run;
    const summary = {
      trigger,
      ok: runOk(run),
      duration_ms: Number((run.finished_at_ns - started_at_ns) / 1_000_000n),
      synced_transfers,
      findings: run.report?.drift.length ?? 0,
      error: run.error,
    };
    if (runOk(run)) log?.info(summary, "reconciliation: no drift");
    else log?.warn({ ...summary, checks: run.report?.checks.filter((c) => !c.ok).map((c) => c.name) }, "reconciliation: DRIFT or failure");
    return run;
  }

  last(): ReconciliationRun | undefined {
    return this.lastRun;
  }

  nextRunAtNs(): bigint | undefined {
    // While a scheduled run is in progress this is the time it was due (the next is set when it ends).
    return this.opts.interval_s === 0 || this.stopped ? undefined : this.nextAtNs;
  }

  /** Stop the schedule and wait for a run in progress. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.queued?.catch(() => undefined);
    await this.inFlight?.catch(() => undefined);
  }
}
