import { ConfigError, loadConfig, type Config } from "../config.js";

/**
 * A `masques-ledger <name>` subcommand. Each lives in src/cli/commands/<name>.ts and is listed in
 * src/cli/commands/index.ts. Exit codes: 0 ok, 1 user error (bad input, denied, insufficient funds),
 * 2 usage error (bad flags), 3 outage (daemon/ledger unreachable, internal error).
 */
export interface CliCommand {
  name: string;
  /** One line for `masques-ledger --help`. */
  summary: string;
  /** Full text for `masques-ledger <name> --help`. */
  help: string;
  run(argv: string[]): Promise<number>;
}

export const ExitCode = { ok: 0, user_error: 1, usage: 2, outage: 3 } as const;

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
