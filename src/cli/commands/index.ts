import type { CliCommand } from "../command.js";

/** Every subcommand of the `masques-ledger` binary. Add one line per command. */
export const commands: CliCommand[] = [];
