import type { CliCommand } from "../command.js";
import { serveCommand } from "./serve.js";
import { streamCommand } from "./stream.js";
import { reconcileCommand } from "./reconcile.js";
import { tokenCommand } from "./token.js";
import { donCommand } from "./don.js";
import { usageCommand } from "./usage.js";
import { heartbeatCommand } from "./heartbeat.js";
import { doffCommand } from "./doff.js";
import { cancelCommand } from "./cancel.js";
import { balanceCommand } from "./balance.js";
import { sessionsCommand } from "./sessions.js";
import { earningsCommand } from "./earnings.js";
import { depositCommand } from "./deposit.js";

/** Every subcommand of the `masques-ledger` binary. Add one line per command. */
export const commands: CliCommand[] = [
  serveCommand,
  streamCommand,
  reconcileCommand,
  tokenCommand,
  donCommand,
  usageCommand,
  heartbeatCommand,
  doffCommand,
  cancelCommand,
  balanceCommand,
  sessionsCommand,
  earningsCommand,
  depositCommand,
];
