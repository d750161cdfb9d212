/**
 * CDC streamer entry points: ledger -> ClickHouse (embedded chDB by default, a ClickHouse server
 * when CLICKHOUSE_URL is set). See docs/adr/0040-cdc-streamer.md.
 *
 *   const s = await startStreamer({ ledger: ctx.ledger, config, log, clock });  // in `serve`
 *   s.lag();            // how far behind ClickHouse is
 *   await s.stop();     // before closing the ledger
 */
import path from "node:path";
import type { Kysely } from "kysely";
import type { Client } from "tigerbeetle-node";
import type { Database } from "../controlplane/schema.js";
import { readPayoutRailFacts } from "../controlplane/settlement.js";
import { idToHex } from "../domain/ids.js";
import type { SettlementRailFacts } from "./derive.js";
import { copyAuditLog } from "./audit.js";
import { copyRailDeposits } from "./rail-deposits.js";
import type { Config } from "../config.js";
import { openLedger } from "../ledger/index.js";
import { reconcile, type ReconcileReport } from "./reconcile.js";
import { ChdbSink } from "./chdb-sink.js";
import { ClickHouseSink } from "./clickhouse-sink.js";
import { migrate, type MigrationReport } from "./migrations.js";
import type { Sink } from "./sink.js";
import { lagForLog, Streamer, type StreamerLag, type StreamerLogger } from "./streamer.js";
import { Reconciler } from "./reconciler.js";
export { lagForLog } from "./streamer.js";

export { ChdbSink } from "./chdb-sink.js";
export { ClickHouseSink } from "./clickhouse-sink.js";
export { migrate, MigrationError, loadMigrations, type MigrationReport } from "./migrations.js";
export { reconcile, formatReconcileReport, type ReconcileReport } from "./reconcile.js";
export type { Sink } from "./sink.js";
export { Reconciler, runOk, type ReconciliationPort, type ReconciliationRun, type ReconciliationTrigger } from "./reconciler.js";
export { Streamer, readCursors, type StreamerLag, type StreamerLogger, type SyncResult } from "./streamer.js";

/** The streamer's part of the daemon configuration. */
export interface StreamerSettings {
  enabled: boolean;
  /** Set: a ClickHouse server; unset: embedded chDB at chdbPath. */
  clickhouseUrl?: string;
  clickhouseUser?: string;
  clickhousePassword?: string;
  database: string;
  chdbPath: string;
  batch: number;
  pollMs: number;
  /** Scheduled reconciliation period inside the daemon; 0 = only on request. */
  reconcileIntervalS: number;
}

export function streamerSettings(config: Config): StreamerSettings {
  return {
    enabled: config.STREAMER_ENABLED,
    clickhouseUrl: config.CLICKHOUSE_URL,
    clickhouseUser: config.CLICKHOUSE_USER,
    clickhousePassword: config.CLICKHOUSE_PASSWORD,
    database: config.CLICKHOUSE_DATABASE,
    chdbPath: path.resolve(config.CHDB_PATH ?? path.join(config.dataDir, "chdb")),
    batch: config.STREAM_BATCH,
    pollMs: config.STREAM_POLL_MS,
    reconcileIntervalS: config.RECONCILE_INTERVAL_S,
  };
}

/** Open the configured sink and bring its schema up to date. */
export async function openSink(s: StreamerSettings): Promise<{ sink: Sink; migrations: MigrationReport; describe: string }> {
  let sink: Sink;
  let describe: string;
  if (s.clickhouseUrl) {
    sink = new ClickHouseSink({
      url: s.clickhouseUrl,
      database: s.database,
      username: s.clickhouseUser,
      password: s.clickhousePassword,
    });
    const u = new URL(s.clickhouseUrl);
    describe = `ClickHouse server ${u.protocol}//${u.host} database ${s.database}`;
  } else {
    sink = await ChdbSink.open({ path: s.chdbPath, database: s.database });
    describe = `embedded chDB at ${s.chdbPath} database ${s.database}`;
  }
  try {
    return { sink, migrations: await migrate(sink), describe };
  } catch (err) {
    await sink.close();
    throw err;
  }
}

export interface RunningStreamer {
  streamer: Streamer;
  sink: Sink;
  describe: string;
  /** Scheduled and on-demand reconciliation against this streamer's sink. */
  reconciler: Reconciler;
  lag(): StreamerLag;
  /** Stop reconciling, stop copying (after the chunk in flight) and close the sink. Idempotent. */
  stop(): Promise<void>;
}

/** Reads payouts' rail facts from the control plane for `settlements` (ADR 0084). */
function railFactsReader(db: Kysely<Database>): (payout_ids: readonly bigint[]) => Promise<SettlementRailFacts[]> {
  return async (payout_ids) => {
    const rows = await readPayoutRailFacts(db, payout_ids.map(idToHex));
    return rows.map((r) => ({ payout_id: BigInt(`0x${r.payout_id}`), tx_ref: r.tx_ref, block_number: r.block_number, confirmations: r.confirmations, network_fee_native: r.network_fee_native }));
  };
}

/**
 * Open the sink, migrate, resume from the stored cursor and copy continuously in the background.
 * Resolves once running (typically well under 2 s); rejects if the sink cannot be opened or
 * migrated. The daemon's request handling never waits on it: chDB runs its queries on libuv's
 * thread pool (async API), never on the event loop.
 */
export async function startStreamer(opts: {
  ledger: Client;
  config: Config;
  log?: StreamerLogger;
  /** The ledger's clock (ns since epoch), to decide when holds have expired. */
  clock?: () => bigint;
  /** Overrides of the configured settings (tests, the `stream` command). */
  settings?: Partial<StreamerSettings>;
  /** The control-plane database: its audit log is copied too (issue 16). Unset: not copied. */
  controlplane?: Kysely<Database>;
}): Promise<RunningStreamer> {
  const settings = { ...streamerSettings(opts.config), ...opts.settings };
  const { sink, migrations, describe } = await openSink(settings);
  let streamer: Streamer;
  try {
    streamer = await Streamer.create({
      client: opts.ledger,
      sink,
      batch: settings.batch,
      poll_ms: settings.pollMs,
      now_ns: opts.clock,
      logger: opts.log,
      rail_facts: opts.controlplane === undefined ? undefined : railFactsReader(opts.controlplane),
    });
  } catch (err) {
    // Reading the stored cursor failed: release the sink so the daemon's next attempt (ADR 0119)
    // opens it afresh.
    await sink.close().catch(() => undefined);
    throw err;
  }
  opts.log?.info(
    { sink: describe, migrations_applied: migrations.applied, cursor_ts: String(streamer.cursor.transfers) },
    "streamer started",
  );
  streamer.start();
  const reconciler = new Reconciler({
    client: opts.ledger,
    sink,
    streamer,
    interval_s: settings.reconcileIntervalS,
    clock: opts.clock ?? (() => BigInt(Date.now()) * 1_000_000n),
    log: opts.log,
  });
  reconciler.start();
  // The audit log (issue 16): copied between the streamer's passes (never during one or during a
  // reconciliation), every poll interval (at least 1 s).
  const cp = opts.controlplane;
  let auditCopy: Promise<unknown> = Promise.resolve();
  const auditTimer = cp
    ? setInterval(() => {
        auditCopy = streamer
          .exclusive(async () => {
            await copyAuditLog(cp, sink);
            // Deposits' rail facts (issue 13, ADR 0084), the same way.
            await copyRailDeposits(cp, sink);
          })
          .catch((err: unknown) => opts.log?.error({ err }, "streamer: audit log / rail deposits copy failed; retrying"));
      }, Math.max(1000, settings.pollMs))
    : undefined;
  auditTimer?.unref();
  let stopped: Promise<void> | null = null;
  return {
    streamer,
    sink,
    describe,
    reconciler,
    lag: () => streamer.lag(),
    stop: () =>
      (stopped ??= (async () => {
        clearInterval(auditTimer);
        await auditCopy;
        await reconciler.stop();
        await streamer.stop();
        const h = streamer.lagHistogram;
        opts.log?.info(
          { lag: lagForLog(streamer.lag()), events: h.total, lag_p50_ms: h.quantile(0.5), lag_p99_ms: h.quantile(0.99) },
          "streamer stopped",
        );
        await sink.close();
      })()),
  };
}

/**
 * Reconcile the ledger and ClickHouse named by a configuration (what `masques-ledger reconcile`
 * runs; e2e suites call it on a stopped daemon's data directory). With `sync` (default) the copy
 * first catches up with the ledger, exactly as the streamer would next.
 */
export async function reconcileFromConfig(
  config: Config,
  opts: { sync?: boolean } = {},
): Promise<{ report: ReconcileReport; synced_transfers: number; describe: string }> {
  const settings = streamerSettings(config);
  const ledger = await openLedger(config);
  try {
    const { sink, describe } = await openSink(settings);
    try {
      let synced_transfers = 0;
      if (opts.sync ?? true) {
        const streamer = await Streamer.create({ client: ledger.client, sink, batch: settings.batch });
        synced_transfers = (await streamer.syncOnce()).transfers;
      }
      return { report: await reconcile({ client: ledger.client, sink }), synced_transfers, describe };
    } finally {
      await sink.close();
    }
  } finally {
    await ledger.close();
  }
}
