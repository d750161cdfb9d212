import { defineClientCommand, VIEW_OPTION } from "../common.js";
import { runEnd } from "./doff.js";

/** `masques-ledger-client cancel`: void the active session's hold; nothing is charged. */
export const cancelCommand = defineClientCommand({
  name: "cancel",
  summary: "Cancel the active masque session: release the hold, charge nothing",
  usage: "cancel [--session ID] [options]",
  description: `Voids the hold of the active session (or --session): nothing is charged and the whole hold
returns to your wallet. Use it when a don was a mistake. A session that was already doffed or
finalized cannot be cancelled (exit 1, and the file records its outcome).`,
  options: { session: { type: "string" }, ...VIEW_OPTION },
  optionHelp: `  --session ID            cancel this session instead of the session file's
  --view basic|full       how much of the session the daemon sends back. Default: basic for the
                          summary (masque from the session file, hold, session id); full with
                          --json or --session. basic's JSON carries the session id, status, close
                          reason, billing mode, hold and amounts only (no masque, times or usage)`,
  sessionFile: true,
  positionals: { min: 0, max: 0, names: "" },
  examples: ["masques-ledger-client cancel"],
  run: (ctx) => runEnd(ctx, "cancel"),
});
