/** `masques-ledger stream`: the CDC streamer standalone (ledger -> ClickHouse). */
import { parseArgs } from "node:util";
import type { CliCommand } from "../command.js";
import { ExitCode, loadCommandConfig } from "../command.js";
import { openLedger, type OpenedLedger } from "../../ledger/index.js";
import { DataDirInUseError } from "../../ledger/embedded/lock.js";
import { createLogger } from "../../log.js";
import { lagForLog, openSink, Streamer, streamerSettings } from "../../streamer/index.js";

const help = `Usage: masques-ledger stream [--once] [--json]

Copies the ledger into ClickHouse (the CDC streamer that \`serve\` runs when STREAMER_ENABLED),
standalone: accounts, balance snapshots, every transfer, sessions, usage, settlements; in ledger
timestamp order from the cursor stored in ClickHouse, so it resumes where it (or the daemon) left
off. The sink is embedded chDB at CHDB_PATH (default $MASQUES_DATA_DIR/chdb) or a ClickHouse
server at CLICKHOUSE_URL. Migrations in sql/ are applied first.

The embedded ledger and embedded chDB are single-process. A daemon started with
STREAMER_ENABLED=true (the default) already runs this streamer, and reconciles on a schedule
(\`masques-ledger reconcile\` asks it for a run now); use \`stream\` with the daemon stopped,
with STREAMER_ENABLED=false, or with a TigerBeetle cluster (LEDGER=tigerbeetle) and a
ClickHouse server.

  --once   catch up, print a summary and exit (otherwise run until SIGINT/SIGTERM)
  --json   with --once: print the summary as one JSON object

Exit codes: 0 ok, 2 bad flags or configuration, 3 ledger or ClickHouse unavailable.`;

export const streamCommand: CliCommand = {
  name: "stream",
  summary: "Copy the ledger into ClickHouse (CDC streamer, standalone)",
  help,
  async run(argv) {
    let flags;
    try {
      flags = parseArgs({ args: argv, options: { once: { type: "boolean" }, json: { type: "boolean" } }, strict: true }).values;
    } catch (err) {
      process.stderr.write(`stream: ${(err as Error).message}\n`);
      return ExitCode.usage;
    }
    const config = loadCommandConfig("stream");
    if (config === null) return ExitCode.usage;
    const log = createLogger({ level: config.MASQUES_LOG_LEVEL });
    const settings = streamerSettings(config);
    let ledger: OpenedLedger | undefined;
    let opened: Awaited<ReturnType<typeof openSink>> | undefined;
    try {
      ledger = await openLedger(config);
      opened = await openSink(settings);
    } catch (err) {
      await ledger?.close();
      process.stderr.write(`masques-ledger stream: ${(err as Error).message}\n`);
      if (err instanceof DataDirInUseError) {
        process.stderr.write(
          `  The daemon (pid ${err.pid}) holds the embedded stores and already runs this streamer when\n` +
            `  STREAMER_ENABLED=true (its log shows "streamer started" and its lag). To check the copy without\n` +
            `  stopping it: masques-ledger reconcile (asks the daemon through AdminService).\n` +
            `  To run the streamer standalone, stop the daemon or start it with STREAMER_ENABLED=false.\n`,
        );
      }
      return ExitCode.outage;
    }
    const { sink, describe } = opened;
    const streamer = await Streamer.create({
      client: ledger.client,
      sink,
      batch: settings.batch,
      poll_ms: settings.pollMs,
      logger: log,
    });
    try {
      if (flags.once) {
        const t0 = performance.now();
        const r = await streamer.syncOnce();
        const seconds = (performance.now() - t0) / 1000;
        const summary = {
          sink: describe,
          accounts: r.accounts,
          transfers: r.transfers,
          expired: r.expired,
          seconds: Number(seconds.toFixed(3)),
          cursor_ts: String(streamer.cursor.transfers),
        };
        process.stdout.write(
          flags.json
            ? JSON.stringify(summary) + "\n"
            : `copied ${r.accounts} accounts, ${r.transfers} transfers, ${r.expired} expiries in ${summary.seconds}s ` +
                `into ${describe}; cursor ${summary.cursor_ts}\n`,
        );
        return ExitCode.ok;
      }
      log.info({ sink: describe, cursor_ts: String(streamer.cursor.transfers) }, "streamer running");
      streamer.start();
      await new Promise<void>((resolve) => {
        process.once("SIGINT", () => resolve());
        process.once("SIGTERM", () => resolve());
      });
      await streamer.stop();
      log.info({ lag: lagForLog(streamer.lag()) }, "streamer stopped");
      return ExitCode.ok;
    } catch (err) {
      process.stderr.write(`masques-ledger stream: ${(err as Error).message}\n`);
      return ExitCode.outage;
    } finally {
      await sink.close();
      await ledger.close();
    }
  },
};
