/** `masques-ledger reconcile`: compare the ledger with its ClickHouse copy; non-zero on drift. */
import { parseArgs } from "node:util";
import type { CliCommand } from "../command.js";
import { ExitCode, loadCommandConfig } from "../command.js";
import { formatReconcileReport, reconcileFromConfig } from "../../streamer/index.js";

const help = `Usage: masques-ledger reconcile [--no-sync] [--json]

Compares the ledger (of record) with its ClickHouse copy and prints a report:
  - transfers: count, id digest, and per account the number and sum of debits and credits,
    up to the streamer's cursor;
  - balances: every account, ledger vs the ClickHouse mirror and vs balances re-derived from
    the copied transfers;
  - conservation: per ledger, total debits = total credits (posted and pending);
  - sessions: author + platform + refund = hold (+ soft-mode debt) for every session, and one
    session per hold.
By default it first catches the copy up with the ledger (what the streamer would do next;
already-copied data is never rewritten, so this cannot hide drift). --no-sync compares as is.

The embedded ledger and chDB are single-process: stop the daemon first (or use a TigerBeetle
cluster and a ClickHouse server).

  --no-sync  do not copy new ledger events before comparing
  --json     print the report as one JSON object

Exit codes: 0 no drift, 1 drift found, 2 bad flags or configuration, 3 ledger or ClickHouse unavailable.`;

export const reconcileCommand: CliCommand = {
  name: "reconcile",
  summary: "Compare the ledger with ClickHouse (counts, sums, balances, conservation)",
  help,
  async run(argv) {
    let flags;
    try {
      flags = parseArgs({ args: argv, options: { "no-sync": { type: "boolean" }, json: { type: "boolean" } }, strict: true }).values;
    } catch (err) {
      process.stderr.write(`reconcile: ${(err as Error).message}\n`);
      return ExitCode.usage;
    }
    const config = loadCommandConfig("reconcile");
    if (config === null) return ExitCode.usage;
    try {
      const { report, synced_transfers } = await reconcileFromConfig(config, { sync: !flags["no-sync"] });
      if (flags.json) {
        process.stdout.write(JSON.stringify({ ...report, cursor_ts: String(report.cursor_ts), synced_transfers }) + "\n");
      } else {
        if (!flags["no-sync"]) process.stdout.write(`caught up ${synced_transfers} transfers before comparing\n`);
        process.stdout.write(formatReconcileReport(report) + "\n");
      }
      return report.ok ? ExitCode.ok : ExitCode.user_error;
    } catch (err) {
      process.stderr.write(`masques-ledger reconcile: ${(err as Error).message}\n`);
      return ExitCode.outage;
    }
  },
};
