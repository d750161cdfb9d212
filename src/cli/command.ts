import { ConfigError, loadConfig, type Config } from "../config.js";

/**
 * A `masques-ledger <name>` subcommand of the daemon binary (serve, stream, reconcile, token, keys). Each
 * lives in src/cli/commands/<name>.ts and is listed in src/cli/commands/index.ts. The shape and
 * the exit codes are the client package's (clients/cli/command.ts): 0 ok, 1 user error, 2 usage
 * error, 3 outage.
 */
export { ExitCode, type CliCommand } from "../../clients/cli/command.js";

/**
 * Load the daemon's configuration for a subcommand that opens the ledger/ClickHouse itself.
 * A configuration error is printed (it names the variable and the rule) and yields null: the
 * caller exits with `ExitCode.usage`.
 */
export function loadCommandConfig(name: string): Config | null {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`masques-ledger ${name}: ${err.message}\n`);
      return null;
    }
    throw err;
  }
}
