/** `masques-ledger serve`: run the ledger daemon in the foreground until SIGINT/SIGTERM. */
import type { CliCommand } from "../command.js";
import { ExitCode } from "../command.js";
import { ConfigError, configHelp, loadConfig } from "../../config.js";
import { createLogger } from "../../log.js";
import { runDaemon } from "../../daemon.js";
import { DataDirInUseError } from "../../ledger/embedded/lock.js";

const help = `Usage: masques-ledger serve

Runs the ledger daemon in the foreground (what \`npm start\` runs):
  - native gRPC over HTTP/2 on MASQUES_GRPC_ADDR, with server reflection (v1, v1alpha) and
    grpc.health.v1;
  - Connect, gRPC-Web and JSON over HTTP/1.1 and HTTP/2 (h2c) on MASQUES_HTTP_ADDR
    (GET /healthz answers without a token).
Every RPC except health and reflection needs \`authorization: Bearer <JWT>\`. Without
MASQUES_JWT_PUBLIC_KEYS, a loopback-only daemon creates a dev key pair under
$MASQUES_DATA_DIR/keys; mint tokens with \`masques-ledger token\`. On a non-loopback address
the daemon refuses to start without keys.
Logs are JSON lines on stdout. SIGINT/SIGTERM drain in-flight calls, then close the ledger.
Configuration is read from the environment only (a .env file is not read; export it first).
Memory: \`npm start\` and the Docker image give V8 a 64 MiB young generation (less GC per call,
ADR 0129). V8 reads it only at process start, so when you start \`serve\` yourself pass it the
same way: NODE_OPTIONS=--max-semi-space-size=64 masques-ledger serve (the start-up log line
"v8 young generation" says what the daemon got).
Exit codes: 0 stopped cleanly, 2 invalid configuration, 3 start-up failure.

${configHelp()}`;

export const serveCommand: CliCommand = {
  name: "serve",
  summary: "Run the ledger daemon (gRPC + Connect/JSON) in the foreground",
  help,
  async run(argv) {
    if (argv.length > 0) {
      process.stderr.write(`serve: unexpected argument "${argv[0]}" (configuration comes from the environment; see --help)\n`);
      return ExitCode.usage;
    }
    let config;
    try {
      config = loadConfig();
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`masques-ledger serve: ${err.message}\n`);
        return ExitCode.usage;
      }
      throw err;
    }
    const log = createLogger({ level: config.MASQUES_LOG_LEVEL });
    let daemon;
    try {
      daemon = await runDaemon(config, log);
    } catch (err) {
      if (err instanceof ConfigError) {
        log.fatal({ issues: err.issues }, err.message);
        process.stderr.write(`masques-ledger serve: ${err.message}\n`);
        return ExitCode.usage;
      }
      log.fatal({ err }, "start-up failed");
      process.stderr.write(`masques-ledger serve: start-up failed: ${(err as Error).message}\n`);
      if (err instanceof DataDirInUseError) {
        process.stderr.write(
          `  Another process (pid ${err.pid}, likely a daemon) uses this MASQUES_DATA_DIR (${config.MASQUES_DATA_DIR}); the embedded stores admit one process.\n` +
            "  Stop it, or give this daemon its own MASQUES_DATA_DIR (and MASQUES_GRPC_ADDR / MASQUES_HTTP_ADDR); to check its analytics copy use `masques-ledger reconcile`.\n",
        );
      }
      return ExitCode.outage;
    }
    const d = daemon;
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      signals += 1;
      if (signals > 1) {
        log.warn({ signal: sig }, "second signal: exiting immediately");
        process.exit(130);
      }
      void d.stop(`signal ${sig}`);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    await d.stopped;
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    return ExitCode.ok;
  },
};
