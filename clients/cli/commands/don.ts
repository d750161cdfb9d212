import { defineClientCommand, formatUsd, UsageError, VIEW_OPTION, viewFlag } from "../common.js";
import { sessionJson } from "../render.js";
import { donMasque } from "../../sdk/plugin-session.js";
import { MasquesError, NotFoundError } from "../../sdk/errors.js";
import type { MasquesClient } from "../../sdk/client.js";
import { BillingMode } from "../../gen/masques/ledger/v1/session_service_pb.js";
import { isFullSession } from "../../sdk/sessions.js";

const MODES = ["shadow", "soft", "live"] as const;

/** `masques-ledger-client don <masque> [intent]`: hold the reservation and record the session in the plugin's file. */
export const donCommand = defineClientCommand({
  name: "don",
  summary: "Don a masque: hold its reservation and record the session for /don",
  usage: "don <masque> [options] [--] [intent...]",
  description: `Starts a paid session of <masque>: the daemon holds the masque's reservation (capped by
--max-spend) from your wallet, and the session is written to the plugin's session file
(active.ledger) so /doff, /id and the heartbeat hook find it. [intent] is kept with the session;
put it after \`--\` if it may start with a dash.

Safe to re-run: donning the masque that is already active returns the same session, and after an
outage (exit 3) re-running finishes the same Don (same session id) — it never holds twice.`,
  options: {
    "max-spend": { type: "string" },
    agent: { type: "string" },
    "billing-mode": { type: "string" },
    source: { type: "string" },
    "claude-session-id": { type: "string" },
    "no-session-file": { type: "boolean" },
    ...VIEW_OPTION,
  },
  optionHelp: `  --max-spend USD         your cap for this session; the hold is min(masque reserve, cap)
  --agent ID              don for this agent (admin tokens only)
  --billing-mode MODE     shadow | soft | live (admin tokens only; default: the daemon's)
  --source private|shared recorded as active.source, like the plugin does (default shared)
  --claude-session-id ID  the Claude Code session this runs in (default: $MASQUES_CLAUDE_SESSION_ID);
                          the daemon then bills from Claude Code's OpenTelemetry events, no usage hook
  --no-session-file       do not read or write the session file (scripts); prints the session id
  --view basic|full       how much of the session the daemon sends back. Default: basic for the
                          summary above, which needs only the session id, billing mode and hold;
                          full with --json. basic's JSON carries the session id, status, close
                          reason, billing mode, hold and amounts only (no masque, times or usage);
                          full also records the ledger's don time as active.donned_at in the
                          session file (basic: this machine's clock)`,
  sessionFile: true,
  positionals: { min: 1, max: Number.MAX_SAFE_INTEGER, names: "<masque> [intent...]" },
  examples: ["masques-ledger-client don code-reviewer -- review the parser", "masques-ledger-client don pair-programmer --max-spend 2.50 --json"],
  async run(ctx) {
    const [masque, ...intentWords] = ctx.positionals as [string, ...string[]];
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(masque)) throw new UsageError(`<masque>: ${JSON.stringify(masque)} is not a masque name (letters, digits, . _ -)`);
    const intent = intentWords.join(" ").trim();
    const max_spend_micro = ctx.usd("max-spend");
    if (max_spend_micro === 0n) throw new UsageError("--max-spend: must be greater than 0 (omit it to use the masque's reserve)");
    const mode = ctx.str("billing-mode")?.toLowerCase();
    if (mode !== undefined && !(MODES as readonly string[]).includes(mode)) throw new UsageError(`--billing-mode: expected shadow, soft or live, got ${JSON.stringify(mode)}`);
    const source = ctx.str("source");
    if (source !== undefined && source !== "private" && source !== "shared") throw new UsageError(`--source: expected private or shared, got ${JSON.stringify(source)}`);
    const agent = ctx.str("agent");
    const claude = ctx.str("claude-session-id") ?? process.env.MASQUES_CLAUDE_SESSION_ID;
    // The human summary prints the masque asked for, the session id, the mode and the hold: all in
    // the basic reply (ADR 0128). --json prints the whole session, so it asks for the full one.
    const view = viewFlag(ctx) ?? (ctx.json ? "full" : "basic");
    if (claude !== undefined && (claude.length === 0 || claude.length > 256)) throw new UsageError("--claude-session-id: 1 to 256 characters");
    const client = await ctx.client();
    const input = {
      masque,
      ...(intent ? { intent } : {}),
      ...(max_spend_micro !== undefined ? { max_spend_micro } : {}),
      ...(agent ? { agent_id: agent } : {}),
      ...(mode ? { billing_mode: mode as (typeof MODES)[number] } : {}),
      ...(claude ? { claude_session_id: claude } : {}),
      view,
    };
    try {
      if (ctx.bool("no-session-file")) {
        const r = await client.sessions.don(input);
        const name = isFullSession(r.session) ? r.session.masqueName : masque;
        return {
          human: [`✓ Donned ${name} (session ${r.session.sessionId}); held ${formatUsd(r.session.holdMicro)}.`],
          json: { result: r.created ? "donned" : "already_donned", session: sessionJson(r.session) },
        };
      }
      const path = ctx.sessionFilePath();
      const r = await donMasque(client, path, { ...input, ...(source ? { source } : {}) });
      const s = r.session;
      // A basic reply carries no name: the session is the one of the masque asked for.
      const name = isFullSession(s) ? s.masqueName : masque;
      const human =
        r.kind === "already_donned"
          ? [`✓ ${name} is already donned (session ${s.sessionId}); ${formatUsd(s.holdMicro)} held.`]
          : [
              `✓ Donned ${name}${r.resumed ? " (finished the earlier don)" : ""}`,
              s.billingMode === BillingMode.SHADOW
                ? "  shadow billing: usage is metered and priced, nothing is held or charged"
                : `  held ${formatUsd(s.holdMicro)} from your wallet; at doff you pay for actual use and the rest comes back`,
              `  session ${s.sessionId} · recorded in ${path}`,
            ];
      return { human, json: { result: r.kind, resumed: r.kind === "donned" ? r.resumed : false, session_file: path, session: sessionJson(s) } };
    } catch (e) {
      if (e instanceof NotFoundError && e.reason === "MASQUE_NOT_FOUND") throw await withCatalog(client, e, masque);
      throw e;
    }
  },
});

/** An unknown masque: say which ones the daemon does know (best effort). */
async function withCatalog(client: MasquesClient, e: NotFoundError, asked: string): Promise<MasquesError> {
  try {
    const page = await client.sessions.masques({ page_size: 50 }, { timeout_ms: 3_000 });
    const names = page.masques.map((m) => `${m.name} (reserve ${formatUsd(m.pricing?.reserveMicro ?? 0n)})`);
    if (names.length === 0) return e;
    const close = page.masques.map((m) => m.name).find((n) => n.toLowerCase().startsWith(asked.toLowerCase().slice(0, 3)));
    return new NotFoundError({
      message: e.message,
      hint: `${close ? `Did you mean ${close}? ` : ""}The daemon knows: ${names.join(", ")}.`,
      kind: "user",
      grpc_code: e.grpc_code,
      ...(e.reason ? { reason: e.reason } : {}),
      ...(e.request_id ? { request_id: e.request_id } : {}),
    });
  } catch {
    return e;
  }
}
