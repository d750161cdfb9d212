/**
 * A subcommand of the client binary (`masques-ledger-client <name>`) or of the daemon binary
 * (`masques-ledger <name>`, which reuses this shape). Exit codes: 0 ok, 1 user error (bad input,
 * denied, insufficient funds), 2 usage error (bad flags), 3 outage (daemon/ledger unreachable,
 * internal error).
 */
export interface CliCommand {
  name: string;
  /** One line for `<binary> --help`. */
  summary: string;
  /** Full text for `<binary> <name> --help`. */
  help: string;
  run(argv: string[]): Promise<number>;
}

export const ExitCode = { ok: 0, user_error: 1, usage: 2, outage: 3 } as const;

/** The client binary's name: what the plugin calls and what hints tell people to run. */
export const CLIENT_BIN = "masques-ledger-client";
