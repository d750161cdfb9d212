import { defineClientCommand, formatUsd, VIEW_OPTION, viewFlag, type ClientContext, type CommandOutput } from "../common.js";
import { sessionJson, settledLines } from "../render.js";
import { endSession } from "../../sdk/plugin-session.js";
import type { MasquesClient } from "../../sdk/client.js";
import { isFullSession } from "../../sdk/sessions.js";

/**
 * Shared by doff and cancel. The reply's view (ADR 0128), unless --view says: doff's summary
 * prints the usage, so full; cancel's prints the name, hold and session id, so basic when the
 * session file names the masque (not with --session); --json prints the whole session, so full.
 */
export async function runEnd(ctx: ClientContext, how: "doff" | "cancel"): Promise<CommandOutput> {
  const explicit = ctx.str("session");
  const view = viewFlag(ctx) ?? (how === "cancel" && !ctx.json && explicit === undefined ? "basic" : "full");
  const client = await ctx.client();
  const r = await endSession(client, ctx.sessionFilePath(), how, explicit, { view });
  switch (r.kind) {
    case "unpaid":
      return { human: [`✓ Doffed ${r.name ?? "the masque"}. Back to baseline (it had no paid session).`], json: { result: "unpaid", name: r.name } };
    case "already_settled": {
      const o = r.outcome;
      return {
        human: [
          `✓ Nothing active: ${r.name ?? "the last masque"} was already ${o.status.replace("_", " ")}` +
            (o.charged_micro !== undefined ? ` (charged ${formatUsd(o.charged_micro)})` : "") +
            `. Back to baseline.`,
        ],
        json: { result: "already_settled", name: r.name, session_id: o.session_id, status: o.status, charged_micro: o.charged_micro?.toString() ?? null },
      };
    }
    case "never_held":
      return {
        human: [`✓ Doffed ${r.masque}. Its don never went through (${r.reason.message}), so nothing was held or charged.`],
        json: { result: "never_held", masque: r.masque, reason: r.reason.toJSON() },
      };
    case "settled": {
      const lines = settledLines(r.session, r.masque);
      if (r.pending_dropped) {
        // The user was told that Don failed: no "Cancelled …, the hold is back" line for a hold
        // they never saw (dropping pins the session and voids it at once); the session id stays.
        lines.splice(0, lines.length, ...lines.filter((l) => !l.startsWith("✓ Cancelled ")));
        lines.unshift(`✓ The earlier don of ${isFullSession(r.session) ? r.session.masqueName : (r.masque ?? "the masque")} never finished, so it was dropped instead of ${how === "doff" ? "doffed" : "cancelled"}: nothing charged.`);
        const wallet = await walletLine(client);
        if (wallet) lines.push(wallet);
        return { human: lines, json: { result: "pending_dropped", session: sessionJson(r.session) } };
      }
      const wallet = await walletLine(client);
      if (wallet) lines.push(wallet);
      return { human: lines, json: { result: how === "doff" ? "doffed" : "cancelled", session: sessionJson(r.session) } };
    }
  }
}

async function walletLine(client: MasquesClient): Promise<string | undefined> {
  try {
    if (client.whoami().kind !== "agent") return undefined;
    const a = await client.getAccount(undefined, { timeout_ms: 3_000 });
    return `  wallet available: ${formatUsd(a.balance?.availableMicro ?? 0n)}`;
  } catch {
    return undefined; // informational only
  }
}

/** `masques-ledger-client doff`: settle the active session and clear it from the plugin's file. */
export const doffCommand = defineClientCommand({
  name: "doff",
  summary: "Doff the active masque: pay for actual use, get the rest of the hold back",
  usage: "doff [--session ID] [options]",
  description: `Settles the active session of the plugin's session file: sends queued usage, then the daemon
prices the session and, in one atomic step, charges the price from the hold (the rest returns to
your wallet) and pays the author and the platform. The session moves to \`previous\` in the file
(like the plugin's /doff), with what was charged.

Safe to re-run: after an outage (exit 3) re-run it; a second doff returns the recorded result.`,
  options: { session: { type: "string" }, ...VIEW_OPTION },
  optionHelp: `  --session ID            doff this session instead of the session file's
  --view basic|full       how much of the session the daemon sends back (default full: the summary
                          prints the usage). basic: no usage line, and --json carries the session
                          id, status, close reason, billing mode, hold and amounts only (no masque,
                          times or usage); previous.doffed_at is then this machine's clock`,
  sessionFile: true,
  positionals: { min: 0, max: 0, names: "" },
  examples: ["masques-ledger-client doff", "masques-ledger-client doff --json"],
  run: (ctx) => runEnd(ctx, "doff"),
});
