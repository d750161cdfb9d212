/**
 * `masques-ledger rail lightning` (issue 15, ADR 0096): configuration, start-up checks and the
 * loop of ./adapter.ts. Shares the adapter framework's daemon settings (RAIL_DAEMON_ENDPOINT,
 * RAIL_TOKEN_FILE; src/rails/adapter/config.ts) and SettlementService client; the Lightning loop
 * itself is its own (no signing, no chain scan: invoices and payment hashes), see ADR 0096.
 */
import { ExitCode } from "../../cli/command.js";
import { createLogger } from "../../log.js";
import { AdapterConfigError, adapterConfigDocs, loadAdapterConfig, readTokenFile } from "../adapter/config.js";
import { settlementClient } from "../adapter/daemon-client.js";
import { runAdapter } from "./adapter.js";
import { LightningRailConfigError, lightningRailConfigDocs, loadLightningRailConfig, loadLndCredentials } from "./config.js";
import { connectLnd, LndNetworkMismatchError, LndRestError } from "./lnd-rest.js";

function docs(d: Readonly<Record<string, { doc: string; default: string }>>): string {
  return Object.entries(d)
    .map(([k, v]) => `  ${k}${v.default === "" ? "" : ` (default ${v.default})`}\n      ${v.doc}`)
    .join("\n");
}

export const lightningRailHelp = `Usage: masques-ledger rail lightning

Runs the Lightning rail adapter in the foreground until SIGTERM/SIGINT. Every LND_POLL_INTERVAL_MS
it claims Lightning payouts and, for each one whose payment hash is already recorded, asks LND for
the payment's state FIRST (a hash is paid at most once, also after a crash); a new one is checked
(network, exact amount, expiry by this machine's clock), its hash recorded through the daemon,
then paid through LND's REST API with the routing fee capped at the fee held; success completes it
with the preimage and the fee, a definite failure fails it (the daemon voids: the author's money
comes back). Then it creates the deposit invoices the daemon quoted and reports settled ones (the
daemon credits each once, at the quoted rate). Logs are JSON lines on stdout.

Configuration (environment only):
${docs(adapterConfigDocs)}
${docs(lightningRailConfigDocs)}

The LND REST client has been tested against an LND-compatible stand-in over two real LDK nodes
(tests/support/lnd-rest-server.ts), NOT against LND itself (docs/adr/0093).

Exit codes: 0 stopped by a signal, 2 invalid configuration, 3 LND unreachable at start.`;

/** Runs the Lightning adapter until a signal; returns the exit code. */
export async function runLightningRail(): Promise<number> {
  let adapterConfig, config, credentials;
  try {
    adapterConfig = loadAdapterConfig();
    readTokenFile(adapterConfig.token_file);
    config = loadLightningRailConfig();
    credentials = loadLndCredentials(config);
  } catch (e) {
    if (e instanceof AdapterConfigError || e instanceof LightningRailConfigError) {
      process.stderr.write(`masques-ledger rail lightning: ${e.message}\n`);
      return ExitCode.usage;
    }
    throw e;
  }
  const log = createLogger({ level: process.env.MASQUES_LOG_LEVEL ?? "info" }).child({ component: "rail", rail: "lightning" });
  let lnd;
  try {
    lnd = await connectLnd({ config, credentials });
  } catch (e) {
    if (e instanceof LndNetworkMismatchError) {
      process.stderr.write(`masques-ledger rail lightning: ${e.message}\n`);
      return ExitCode.usage;
    }
    if (e instanceof LndRestError) {
      process.stderr.write(`masques-ledger rail lightning: LND at ${config.rest_url}: ${e.message}\n`);
      return ExitCode.outage;
    }
    throw e;
  }
  const tokenFile = adapterConfig.token_file;
  const settlement = settlementClient(adapterConfig.daemon_endpoint, () => readTokenFile(tokenFile));
  const stop = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    log.info({ signal: sig }, "stopping after the round in progress");
    stop.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  await runAdapter({ settlement, lnd, config, log, now_s: () => Math.floor(Date.now() / 1000) }, stop.signal);
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  log.info({ event: "stopped" }, "rail adapter stopped");
  return ExitCode.ok;
}
