import { defineClientCommand, formatUsd, UserError } from "../client-common.js";
import { heartbeatSession } from "../../../clients/sdk/src/plugin-session.js";
import { shortEnum } from "../client-common.js";
import { SessionStatus, SessionStatusSchema } from "../../../clients/gen/masques/ledger/v1/session_service_pb.js";

/** `masques-ledger heartbeat`: keep the active session alive (for a hook). */
export const heartbeatCommand = defineClientCommand({
  name: "heartbeat",
  summary: "Keep the active masque session alive (meant for a plugin hook)",
  usage: "heartbeat [--quiet] [options]",
  description: `Tells the daemon the active session is still in use, so it is not finalized as abandoned
after SESSION_IDLE_S. Also finishes a don that hit an outage and sends queued usage.
No paid session active: prints nothing with --quiet and exits 0, so a hook can call it always.
If the daemon already finalized the session (idle) the session file is updated and it exits 1
with the outcome on stderr.`,
  options: { quiet: { type: "boolean", short: "q" }, session: { type: "string" } },
  optionHelp: `  -q, --quiet             print nothing on success (hooks)
  --session ID            heartbeat this session (no session file)`,
  sessionFile: true,
  positionals: { min: 0, max: 0, names: "" },
  examples: ["masques-ledger heartbeat --quiet"],
  async run(ctx) {
    const quiet = ctx.bool("quiet");
    const client = ctx.client();
    const explicit = ctx.str("session");
    if (explicit) {
      const hb = await client.sessions.heartbeat(explicit);
      const status = shortEnum(SessionStatusSchema, hb.status, "SESSION_STATUS_");
      return { human: quiet ? [] : [`♥ session ${explicit}: ${status}`], json: { session_id: explicit, status } };
    }
    const r = await heartbeatSession(client, ctx.sessionFilePath());
    if (r.kind === "none") {
      return { human: quiet ? [] : ["No paid masque session is active; nothing to keep alive."], json: { result: "none" } };
    }
    if (r.kind === "ended") {
      // stderr + exit 1: in a Claude Code hook this surfaces as a non-blocking error the user sees.
      const st = r.session;
      const how = st.status === SessionStatus.REAPED ? "finalized by the daemon after no heartbeat or usage for a while" : `${shortEnum(SessionStatusSchema, st.status, "SESSION_STATUS_")}`;
      throw new UserError(
        `Your session of ${st.masqueName} had already ended on the ledger (${how}): charged ${formatUsd(st.chargedMicro)}, ${formatUsd(st.refundMicro)} of the ${formatUsd(st.holdMicro)} hold returned. The session file now records it.`,
        `Don the masque again (/don ${st.masqueName}) to start a new paid session.`,
        "session_ended",
      );
    }
    return {
      human: quiet ? [] : [`♥ session ${r.session_id} alive${r.idle_deadline ? ` (idle deadline ${r.idle_deadline})` : ""}${r.flush.acknowledged ? `; sent ${r.flush.acknowledged} queued usage report(s)` : ""}`],
      json: { result: "alive", session_id: r.session_id, idle_deadline: r.idle_deadline, usage_sent: r.flush.acknowledged },
    };
  },
});
