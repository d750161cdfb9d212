import type { CliCommand } from "../command.js";
import { serveCommand } from "./serve.js";
import { streamCommand } from "./stream.js";
import { reconcileCommand } from "./reconcile.js";
import { tokenCommand } from "./token.js";

/** Every subcommand of the `masques-ledger` binary. Add one line per command. */
export const commands: CliCommand[] = [
  serveCommand,
  streamCommand,
  reconcileCommand,
  tokenCommand,
];
