/**
 * `masques-ledger rail <name>`: run a rail adapter as its own process (ARCHITECTURE "Settlement":
 * the only component holding chain / node credentials; it reaches the daemon only through the
 * generated SettlementService client as the `rail` principal of its rail). Built here:
 * `lightning` (issue 15, ADR 0096). The Base and Solana adapters plug into the same dispatch.
 */
import { parseArgs } from "node:util";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SettlementService } from "../../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { createLogger } from "../../log.js";
import { runAdapter } from "../../rails/lightning/adapter.js";
import { LightningRailConfigError, lightningRailConfigDocs, loadLightningRailConfig, loadLndCredentials } from "../../rails/lightning/config.js";
import { connectLnd, LndNetworkMismatchError, LndRestError } from "../../rails/lightning/lnd-rest.js";
import type { CliCommand } from "../command.js";
import { ExitCode } from "../command.js";

const help = `Usage: masques-ledger rail lightning

Runs the Lightning rail adapter until SIGTERM/SIGINT: claims Lightning payouts and pays the
author's BOLT11 invoice through LND's REST API (asking LND for the payment hash first: a hash is
paid at most once, also after a crash), completes them with the preimage or fails them (the daemon
voids; the author's money comes back); creates deposit invoices the daemon quoted and reports the
settled ones (credited once, at the quoted rate).

Environment:
  MASQUES_ENDPOINT   the daemon's gRPC URL (e.g. http://127.0.0.1:50051). Required.
  MASQUES_TOKEN      a bearer token of the rail principal "lightning" with scope rail:settle
                     (e.g. masques-ledger token --kind rail --id lightning). Required.
${Object.entries(lightningRailConfigDocs)
  .map(([k, d]) => `  ${k}${d.default ? ` (default ${d.default})` : ""}\n      ${d.doc}`)
  .join("\n")}

The LND REST client has been tested against an LND-compatible stand-in over real LDK nodes
(tests/support/lnd-rest-server.ts), not against LND itself (docs/adr/0093).

Exit codes: 0 stopped by a signal, 2 bad configuration, 3 LND or the daemon unreachable at start.`;

export const railCommand: CliCommand = {
  name: "rail",
  summary: "Run a rail adapter (lightning) as its own process",
  help,
  async run(argv) {
    const { positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true });
    if (positionals[0] !== "lightning" || positionals.length !== 1) {
      process.stderr.write(`masques-ledger rail: expected "lightning" (the rail to run)\n${help}\n`);
      return ExitCode.usage;
    }
    const endpoint = process.env["MASQUES_ENDPOINT"]?.trim();
    const token = process.env["MASQUES_TOKEN"]?.trim();
    if (!endpoint || !token) {
      process.stderr.write("masques-ledger rail lightning: MASQUES_ENDPOINT and MASQUES_TOKEN (a rail token for \"lightning\") must be set\n");
      return ExitCode.usage;
    }
    let config;
    let credentials;
    try {
      config = loadLightningRailConfig();
      credentials = loadLndCredentials(config);
    } catch (e) {
      if (e instanceof LightningRailConfigError) {
        process.stderr.write(`masques-ledger rail lightning: ${e.message}\n`);
        return ExitCode.usage;
      }
      throw e;
    }
    const log = createLogger({ level: process.env["LOG_LEVEL"] ?? "info" });
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
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    };
    const settlement = createClient(SettlementService, createGrpcTransport({ baseUrl: endpoint, interceptors: [auth] }));
    const stop = new AbortController();
    for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => stop.abort());
    try {
      await runAdapter({ settlement, lnd, config, log, now_s: () => Math.floor(Date.now() / 1000) }, stop.signal);
    } catch (e) {
      const c = ConnectError.from(e);
      process.stderr.write(`masques-ledger rail lightning: ${Code[c.code]}: ${c.rawMessage}\n`);
      return ExitCode.outage;
    }
    return ExitCode.ok;
  },
};
