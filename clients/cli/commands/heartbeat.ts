import { readFile } from "node:fs/promises";
import { defineClientCommand, formatUsd, UserError } from "../common.js";

/**
 * `masques-ledger-client heartbeat`: keep the active session alive (for a hook). It runs on every
 * prompt and tool call, so it loads the session-file parser only when the file exists and the SDK
 * client only when a paid session is active.
 */
export const heartbeatCommand = defineClientCommand({
  name: "heartbeat",
  summary: "Keep the active masque session alive (meant for a plugin hook)",
  usage: "heartbeat [--quiet] [options]",
  description: `Tells the daemon the active session is still in use, so it is not finalized as abandoned
after SESSION_IDLE_S. Also sends usage queued during an outage.
No paid session active: prints nothing with --quiet and exits 0, so a hook can call it always.
A don that failed (it exited non-zero) is never finished by the heartbeat: it exits 1 and says
so, and only an explicit \`masques-ledger-client don <masque>\` retries it (or \`cancel\` drops it).
If the daemon already finalized the session (idle) the session file is updated and it exits 1
with the outcome on stderr.`,
  options: { quiet: { type: "boolean", short: "q" }, session: { type: "string" } },
  optionHelp: `  -q, --quiet             print nothing on success (hooks)
  --session ID            heartbeat this session (no session file)`,
  sessionFile: true,
  positionals: { min: 0, max: 0, names: "" },
  examples: ["masques-ledger-client heartbeat --quiet"],
  async run(ctx) {
    const quiet = ctx.bool("quiet");
    const none = { human: quiet ? [] : ["No paid masque session is active; nothing to keep alive."], json: { result: "none" } };
    const explicit = ctx.str("session");
    if (explicit) {
      const [client, { shortEnum }, { SessionStatusSchema }] = await Promise.all([
        ctx.client(),
        import("../render.js"),
        import("../../gen/masques/ledger/v1/session_service_pb.js"),
      ]);
      const hb = await client.sessions.heartbeat(explicit);
      const status = shortEnum(SessionStatusSchema, hb.status, "SESSION_STATUS_");
      return { human: quiet ? [] : [`♥ session ${explicit}: ${status}`], json: { session_id: explicit, status } };
    }
    const path = ctx.sessionFilePath();
    // Fast path, no lock needed (the file is replaced atomically): no file, or a file without an
    // active ledger session (the plugin's own, or after a doff) means nothing to keep alive. Only
    // YAML is parsed here; the validating reader (zod) and the SDK client load past this point.
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return none;
      throw e;
    }
    const { parse } = await import("yaml");
    if (!hasActiveLedger(parse, text)) return none;
    const { withSessionFile } = await import("../../sdk/session-file.js");
    const ledger = await withSessionFile(path, (f) => f.view().active.ledger);
    if (!ledger) return none;
    if (ledger.status === "pending") throw pendingDon(ledger.masque, ledger.session_id);
    const [client, { heartbeatSession }, { shortEnum }, { SessionStatus, SessionStatusSchema }] = await Promise.all([
      ctx.client(),
      import("../../sdk/plugin-session.js"),
      import("../render.js"),
      import("../../gen/masques/ledger/v1/session_service_pb.js"),
    ]);
    const r = await heartbeatSession(client, path);
    if (r.kind === "none") return none;
    if (r.kind === "pending") throw pendingDon(r.masque, r.session_id);
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

/**
 * A don the user was told had failed: report it, never finish it here (issue 12). Exit 1, so a
 * Claude Code hook shows it to the user.
 */
function pendingDon(masque: string, session_id: string): UserError {
  return new UserError(
    `The earlier don of ${masque} did not finish (the daemon did not answer), so ${masque} is not donned and nothing is being metered (session ${session_id} is only an intent).`,
    `Retry it with \`masques-ledger-client don ${masque}\` (or /don ${masque}): it reuses that session and never holds twice. Or drop it with \`masques-ledger-client cancel\`: nothing is charged.`,
    "don_pending",
  );
}

/** False only when `text` is valid YAML whose `active` has no `ledger` block; a malformed file goes to the full reader, which says what is wrong. */
function hasActiveLedger(parse: (text: string) => unknown, text: string): boolean {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch {
    return true;
  }
  if (doc === null || doc === undefined) return false;
  if (typeof doc !== "object") return true;
  const active = (doc as Record<string, unknown>)["active"];
  if (active === null || active === undefined) return false;
  if (typeof active !== "object") return true;
  const ledger = (active as Record<string, unknown>)["ledger"];
  return ledger !== null && ledger !== undefined;
}
