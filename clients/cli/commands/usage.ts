import { defineClientCommand, UsageError } from "../common.js";
import { reportUsage } from "../../sdk/plugin-session.js";
import { UsageOutcome } from "../../gen/masques/ledger/v1/session_service_pb.js";
import { UserError } from "../common.js";
import { NoActiveSessionError } from "../../sdk/errors.js";

/** `masques-ledger-client usage`: report tokens and tool calls for the active session. */
export const usageCommand = defineClientCommand({
  name: "usage",
  summary: "Report tokens and tool calls used in the active masque session",
  usage: "usage [--input-tokens N] [--output-tokens N] [--tool-calls N] [options]",
  description: `Reports usage for the active session of the plugin's session file. Each report gets the next
sequence number and is queued in the file before it is sent, so a report that hits an outage
(exit 3) is sent with the next usage, heartbeat or doff — and counted exactly once.

With --session and --seq the session file is not used (scripts that track their own sequence).`,
  options: {
    "input-tokens": { type: "string" },
    "output-tokens": { type: "string" },
    "tool-calls": { type: "string" },
    session: { type: "string" },
    seq: { type: "string" },
    quiet: { type: "boolean", short: "q" },
    "if-active": { type: "boolean" },
  },
  optionHelp: `  --input-tokens N        input tokens since the last report
  --output-tokens N       output tokens since the last report
  --tool-calls N          tool calls since the last report
  --session ID --seq N    report for this session with this sequence number (no session file)
  -q, --quiet             print nothing on success (hooks)
  --if-active             no paid masque active: do nothing and exit 0 (hooks that run always)`,
  sessionFile: true,
  positionals: { min: 0, max: 0, names: "" },
  examples: ["masques-ledger-client usage --tool-calls 1", "masques-ledger-client usage --input-tokens 1200 --output-tokens 350"],
  async run(ctx) {
    const input_tokens = ctx.uint("input-tokens") ?? 0n;
    const output_tokens = ctx.uint("output-tokens") ?? 0n;
    const tool_calls = ctx.uint("tool-calls") ?? 0n;
    if (input_tokens + output_tokens + tool_calls === 0n) {
      throw new UsageError("nothing to report: give --input-tokens, --output-tokens and/or --tool-calls");
    }
    const what = `${input_tokens} input + ${output_tokens} output tokens, ${tool_calls} tool call${tool_calls === 1n ? "" : "s"}`;
    const session = ctx.str("session");
    const seq = ctx.uint("seq");
    if ((session === undefined) !== (seq === undefined)) throw new UsageError("--session and --seq go together");
    const client = await ctx.client();
    if (session !== undefined && seq !== undefined) {
      if (seq === 0n) throw new UsageError("--seq: must be >= 1");
      const res = await client.sessions.recordUsage([{ session_id: session, seq, input_tokens, output_tokens, tool_calls }]);
      const r = res.results[0];
      if (r?.outcome === UsageOutcome.REJECTED) {
        throw new UserError(`The daemon refused usage #${seq} of session ${session}: ${r.reason}.`, rejectHint(r.reason), r.reason.toLowerCase());
      }
      const dup = r?.outcome === UsageOutcome.DUPLICATE;
      return {
        human: [`✓ ${dup ? "Already recorded" : "Recorded"} usage #${seq}: ${what}`],
        json: { session_id: session, seq: seq.toString(), outcome: dup ? "duplicate" : "applied" },
      };
    }
    let r;
    try {
      r = await reportUsage(client, ctx.sessionFilePath(), { input_tokens, output_tokens, tool_calls });
    } catch (e) {
      if (e instanceof NoActiveSessionError && ctx.bool("if-active")) {
        return { human: ctx.bool("quiet") ? [] : ["No paid masque session is active; nothing reported."], json: { result: "none" } };
      }
      throw e;
    }
    const bad = r.flush.rejected.find((x) => x.seq === r.seq);
    if (bad) throw new UserError(`The daemon refused usage #${bad.seq}: ${bad.reason}.`, rejectHint(bad.reason), bad.reason.toLowerCase());
    const human = ctx.bool("quiet") ? [] : [`✓ Recorded usage #${r.seq}: ${what}`];
    if (r.flush.queued > 0) human.push(`  ${r.flush.queued} report(s) queued until the don is confirmed`);
    for (const x of r.flush.rejected) human.push(`  ! earlier report #${x.seq} was refused: ${x.reason}`);
    return {
      human,
      json: { session_id: r.session_id, seq: r.seq, acknowledged: r.flush.acknowledged, queued: r.flush.queued, rejected: r.flush.rejected },
    };
  },
});

function rejectHint(reason: string): string {
  switch (reason) {
    case "SESSION_NOT_OPEN":
      return "The session is already settled; usage after doff is not billed. Don again to start a new session.";
    case "SESSION_NOT_FOUND":
      return "Check the session id (`masques-ledger-client sessions`).";
    case "SEQ_REUSED":
      return "That sequence number was already used with different numbers; use the next one.";
    case "PERMISSION_DENIED":
      return "Report usage with the token of the agent that owns the session.";
    default:
      return "Fix the numbers and retry.";
  }
}
