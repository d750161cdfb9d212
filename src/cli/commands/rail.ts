/**
 * `masques-ledger rail <rail>`: run a settlement rail adapter in the foreground (ADR 0081). Base and
 * Lightning (src/rails/lightning/cli.ts, ADR 0096) are implemented; Solana adds its driver here. The adapter talks to the daemon only
 * through the generated SettlementService client, as the `rail` principal of its rail.
 */
import type { CliCommand } from "../command.js";
import { ExitCode } from "../command.js";
import { createLogger } from "../../log.js";
import { AdapterConfigError, adapterConfigDocs, loadAdapterConfig, readTokenFile } from "../../rails/adapter/config.js";
import { fileCursorStore } from "../../rails/adapter/cursor.js";
import { settlementClient } from "../../rails/adapter/daemon-client.js";
import { createRailAdapter, type FaultPoint } from "../../rails/adapter/runner.js";
import { BaseRailConfigError, baseRailConfigDocs, loadBaseRailConfig, loadHotWalletKey } from "../../rails/base/config.js";
import { BaseChainStartupError, connectBaseChain } from "../../rails/base/chain.js";
import { baseDriver } from "../../rails/base/driver.js";
import { lightningRailHelp, runLightningRail } from "../../rails/lightning/cli.js";
import { runSolanaRail, solanaRailHelp } from "../../rails/solana/command.js";

const FAULT_POINTS: readonly FaultPoint[] = ["after_sign", "after_record", "after_broadcast"];

function docs(d: Readonly<Record<string, { doc: string; default: string }>>): string {
  return Object.entries(d)
    .map(([k, v]) => `  ${k}${v.default === "" ? "" : ` (default ${v.default})`}\n      ${v.doc}`)
    .join("\n");
}

const help = `Usage: masques-ledger rail base | masques-ledger rail lightning

Runs the Base (USDC) rail adapter in the foreground: every BASE_POLL_INTERVAL_MS it claims the
rail's payouts from the daemon, re-examines every payout already signed first (re-broadcasts the
recorded transaction or settles it from the chain), then pre-flights, signs, records (through the
daemon) and broadcasts new ones, completes them at BASE_FINALITY_DEPTH and fails them on a
definite failure; then scans the chain for deposits from a durable cursor in RAIL_DATA_DIR,
verifies each on chain and reports it. It never signs a payout anew while its recorded
transaction can still land. Logs are JSON lines on stdout. SIGINT/SIGTERM finish the tick in
progress, then exit 0. Exit codes: 0 stopped, 2 invalid configuration, 3 start-up failure.

Configuration (environment only):
${docs(adapterConfigDocs)}
${docs(baseRailConfigDocs)}
  RAIL_FAULT_KILL_AT
      Fault injection for crash-recovery tests only: after_sign | after_record | after_broadcast
      makes the process SIGKILL itself the first time it reaches that step. Never set in production.

${lightningRailHelp}

${solanaRailHelp}`;

export const railCommand: CliCommand = {
  name: "rail",
  summary: "Run a settlement rail adapter (base, lightning, solana) in the foreground",
  help,
  async run(argv) {
    const [name, ...rest] = argv;
    if (name === "lightning" && rest.length === 0) return runLightningRail();
    if (name === "solana" && rest.length === 0) return runSolanaRail();
    if (name !== "base" || rest.length > 0) {
      process.stderr.write(
        `rail: expected exactly one rail name: base, lightning or solana (see --help)\n`,
      );
      return ExitCode.usage;
    }
    let adapterConfig, baseConfig, key;
    try {
      adapterConfig = loadAdapterConfig();
      baseConfig = loadBaseRailConfig();
      key = loadHotWalletKey(baseConfig.hot_wallet_key_file);
      readTokenFile(adapterConfig.token_file);
    } catch (e) {
      if (e instanceof AdapterConfigError || e instanceof BaseRailConfigError) {
        process.stderr.write(`masques-ledger rail base: ${e.message}\n`);
        return ExitCode.usage;
      }
      throw e;
    }
    const faultText = process.env.RAIL_FAULT_KILL_AT?.trim() ?? "";
    if (faultText !== "" && !FAULT_POINTS.includes(faultText as FaultPoint)) {
      process.stderr.write(`masques-ledger rail base: RAIL_FAULT_KILL_AT: expected one of ${FAULT_POINTS.join(", ")}, got "${faultText}"\n`);
      return ExitCode.usage;
    }
    const log = createLogger({ level: process.env.MASQUES_LOG_LEVEL ?? "info" }).child({ component: "rail", rail: "base" });
    let chain;
    try {
      chain = await connectBaseChain(baseConfig, key);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      log.fatal({ err: message }, "cannot connect to the Base node");
      process.stderr.write(`masques-ledger rail base: start-up failed: ${message}\n`);
      return e instanceof BaseChainStartupError ? ExitCode.usage : ExitCode.outage;
    }
    const tokenFile = adapterConfig.token_file;
    const adapter = createRailAdapter({
      settlement: settlementClient(adapterConfig.daemon_endpoint, () => readTokenFile(tokenFile)),
      driver: baseDriver(chain, baseConfig.scan_from_block),
      cursor: fileCursorStore(adapterConfig.data_dir, "base"),
      log,
      claim_max: adapterConfig.claim_max,
      resign_max: adapterConfig.resign_max,
      ...(faultText === ""
        ? {}
        : {
            fault: (point: FaultPoint) => {
              if (point !== faultText) return;
              log.warn({ event: "fault_injected", point }, "RAIL_FAULT_KILL_AT: killing this process");
              process.kill(process.pid, "SIGKILL");
            },
          }),
    });
    const stop = new AbortController();
    const onSignal = (sig: NodeJS.Signals) => {
      log.info({ signal: sig }, "stopping after the tick in progress");
      stop.abort();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    log.info({ event: "listening", hot_wallet: chain.hot_wallet, chain_id: baseConfig.chain_id, daemon: adapterConfig.daemon_endpoint }, "rail adapter started");
    await adapter.run(baseConfig.poll_interval_ms, stop.signal);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    log.info({ event: "stopped" }, "rail adapter stopped");
    return ExitCode.ok;
  },
};
