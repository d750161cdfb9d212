/**
 * `masques-ledger rail solana` (ADR 0092): the Solana (USDC, SPL Token) rail adapter in the
 * foreground, on the rail-agnostic runner (ADR 0081) with the Solana driver (driver.ts). Called
 * from src/cli/commands/rail.ts; exit codes as `rail base`: 0 stopped, 2 invalid configuration,
 * 3 start-up failure.
 */
import { ExitCode } from "../../cli/command.js";
import { createLogger } from "../../log.js";
import { AdapterConfigError, adapterConfigDocs, loadAdapterConfig, readTokenFile } from "../adapter/config.js";
import { fileCursorStore } from "../adapter/cursor.js";
import { settlementClient } from "../adapter/daemon-client.js";
import { createRailAdapter, type FaultPoint } from "../adapter/runner.js";
import { SolanaChainStartupError, connectSolanaChain } from "./chain.js";
import { SolanaRailConfigError, loadHotWalletKeypair, loadSolanaRailConfig, solanaRailConfigDocs } from "./config.js";
import { solanaDriver } from "./driver.js";

const FAULT_POINTS: readonly FaultPoint[] = ["after_sign", "after_record", "after_broadcast"];

function docs(d: Readonly<Record<string, { doc: string; default: string }>>): string {
  return Object.entries(d)
    .map(([k, v]) => `  ${k}${v.default === "" ? "" : ` (default ${v.default})`}\n      ${v.doc}`)
    .join("\n");
}

/** Help text of `rail solana` (appended to `rail --help`). */
export const solanaRailHelp = `Usage: masques-ledger rail solana

Runs the Solana (USDC, SPL Token) rail adapter in the foreground: every SOLANA_POLL_INTERVAL_MS it
claims the rail's payouts, settles every payout already signed first (asks the cluster for the
recorded signature's status; re-sends the same bytes while its blockhash is valid; signs anew with
a fresh blockhash only once the finalized block height passed the recorded last valid block height
with the signature unseen), then pre-flights (USDC, and SOL for fee + ATA rent), signs a
transferChecked to the author's associated token account (created idempotently), records it
through the daemon and sends it; completes payouts at SOLANA_PAYOUT_COMMITMENT. Deposits: lists
the deposit token account's signatures at SOLANA_DEPOSIT_COMMITMENT from a durable cursor in
RAIL_DATA_DIR, verifies each transfer on chain and reports it; refusals are logged.

Configuration (environment only):
${docs(adapterConfigDocs)}
${docs(solanaRailConfigDocs)}
  RAIL_FAULT_KILL_AT
      Fault injection for crash-recovery tests only: after_sign | after_record | after_broadcast.`;

/** Run the Solana adapter until SIGINT/SIGTERM. */
export async function runSolanaRail(): Promise<number> {
  let adapterConfig, config, keypair;
  try {
    adapterConfig = loadAdapterConfig();
    config = loadSolanaRailConfig();
    if (config.chain_id === null) throw new SolanaRailConfigError([{ variable: "SOLANA_CHAIN_ID", message: "required" }]);
    keypair = loadHotWalletKeypair(config.hot_wallet_keypair_file);
    readTokenFile(adapterConfig.token_file);
  } catch (e) {
    if (e instanceof AdapterConfigError || e instanceof SolanaRailConfigError) {
      process.stderr.write(`masques-ledger rail solana: ${e.message}\n`);
      return ExitCode.usage;
    }
    throw e;
  }
  const faultText = process.env.RAIL_FAULT_KILL_AT?.trim() ?? "";
  if (faultText !== "" && !FAULT_POINTS.includes(faultText as FaultPoint)) {
    process.stderr.write(`masques-ledger rail solana: RAIL_FAULT_KILL_AT: expected one of ${FAULT_POINTS.join(", ")}, got "${faultText}"\n`);
    return ExitCode.usage;
  }
  const log = createLogger({ level: process.env.MASQUES_LOG_LEVEL ?? "info" }).child({ component: "rail", rail: "solana" });
  let chain;
  try {
    chain = await connectSolanaChain(config, keypair);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    log.fatal({ err: message }, "cannot connect to the Solana node");
    process.stderr.write(`masques-ledger rail solana: start-up failed: ${message}\n`);
    return e instanceof SolanaChainStartupError ? ExitCode.usage : ExitCode.outage;
  }
  const tokenFile = adapterConfig.token_file;
  const adapter = createRailAdapter({
    settlement: settlementClient(adapterConfig.daemon_endpoint, () => readTokenFile(tokenFile)),
    driver: solanaDriver(chain, config.chain_id),
    cursor: fileCursorStore(adapterConfig.data_dir, "solana"),
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
  log.info({ event: "listening", hot_wallet: chain.hot_wallet, chain_id: config.chain_id, daemon: adapterConfig.daemon_endpoint }, "rail adapter started");
  await adapter.run(config.poll_interval_ms, stop.signal);
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  log.info({ event: "stopped" }, "rail adapter stopped");
  return ExitCode.ok;
}
