import { defineClientCommand, formatUsd, type ClientContext, type CommandOutput } from "../common.js";
import { sessionJson, settledLines } from "../render.js";
import { endSession } from "../../sdk/plugin-session.js";
import type { MasquesClient } from "../../sdk/client.js";

/** Shared by doff and cancel. */
export async function runEnd(ctx: ClientContext, how: "doff" | "cancel"): Promise<CommandOutput> {
  const client = await ctx.client();
  const r = await endSession(client, ctx.sessionFilePath(), how, ctx.str("session"));
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
      const lines = settledLines(r.session);
      if (r.pending_dropped) {
        // The user was told that Don failed: no "Cancelled …, the hold is back" line for a hold
        // they never saw (dropping pins the session and voids it at once); the session id stays.
        lines.splice(0, lines.length, ...lines.filter((l) => !l.startsWith("✓ Cancelled ")));
        lines.unshift(`✓ The earlier don of ${r.session.masqueName} never finished, so it was dropped instead of ${how === "doff" ? "doffed" : "cancelled"}: nothing charged.`);
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
  options: { session: { type: "string" } },
  optionHelp: `  --session ID            doff this session instead of the session file's`,
  sessionFile: true,
  positionals: { min: 0, max: 0, names: "" },
  examples: ["masques-ledger-client doff", "masques-ledger-client doff --json"],
  run: (ctx) => runEnd(ctx, "doff"),
});
