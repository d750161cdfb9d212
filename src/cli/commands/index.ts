import type { CliCommand } from "../command.js";
import { serveCommand } from "./serve.js";
import { streamCommand } from "./stream.js";
import { reconcileCommand } from "./reconcile.js";
import { tokenCommand } from "./token.js";
import { keysCommand } from "./keys.js";
import { railCommand } from "./rail.js";
import { commandLoaders } from "../../../clients/cli/commands/index.js";

/**
 * Every subcommand of the daemon binary `masques-ledger`. The plugin-facing client commands (don,
 * usage, heartbeat, doff, cancel, balance, sessions, earnings, deposit) live in the client package's
 * `masques-ledger-client` (clients/cli), never here as well. Add one line per command.
 */
export const commands: CliCommand[] = [serveCommand, streamCommand, reconcileCommand, tokenCommand, keysCommand, railCommand];

/** Names of the client binary's commands, so the daemon binary can point people to it. */
export const CLIENT_COMMAND_NAMES: readonly string[] = commandLoaders.map((c) => c.name);
