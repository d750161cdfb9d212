import { defineClientCommand, formatUsd, UsageError } from "../common.js";
import { isoTime, sessionJson, sessionStatusName, settledLines, usageLine } from "../render.js";
import { SessionStatus } from "../../gen/masques/ledger/v1/session_service_pb.js";

const STATUSES: Record<string, SessionStatus> = {
  open: SessionStatus.OPEN,
  doffed: SessionStatus.DOFFED,
  reaped: SessionStatus.REAPED,
  cancelled: SessionStatus.CANCELLED,
  expired: SessionStatus.EXPIRED,
};

/** `masques-ledger-client sessions`: list sessions, or show one. */
export const sessionsCommand = defineClientCommand({
  name: "sessions",
  summary: "List your masque sessions (or show one with its price and split)",
  usage: "sessions [<session-id>] [--agent ID | --masque NAME | --author ID] [--status S,...] [--limit N] [options]",
  description: `Without an id: sessions newest first — an agent's own by default, an author's masques with
--author, one masque's with --masque. With an id: that session in full (usage, price, split).`,
  options: {
    agent: { type: "string" },
    masque: { type: "string" },
    author: { type: "string" },
    status: { type: "string" },
    limit: { type: "string" },
    "page-token": { type: "string" },
  },
  optionHelp: `  --agent ID | --masque NAME | --author ID   whose sessions (default: the caller's)
  --status S,...          only these: open, doffed, reaped, cancelled, expired
  --limit N               sessions per page (default 20, at most 500)
  --page-token T          continue from the token printed by the previous page`,
  positionals: { min: 0, max: 1, names: "[<session-id>]" },
  examples: ["masques-ledger-client sessions", "masques-ledger-client sessions --status open", "masques-ledger-client sessions 3f2a...c9 --json"],
  async run(ctx) {
    const client = await ctx.client();
    const id = ctx.positionals[0];
    if (id) {
      const s = await client.sessions.get(id);
      const human =
        s.status === SessionStatus.OPEN
          ? [
              `${s.masqueName} — open since ${isoTime(s.donTime)} (session ${s.sessionId})`,
              `  held ${formatUsd(s.holdMicro)}; accrued so far ${formatUsd(s.priceMicro)}`,
              `  usage: ${usageLine(s)}`,
            ]
          : settledLines(s);
      return { human, json: { session: sessionJson(s) } };
    }
    const owners = ["agent", "masque", "author"].filter((k) => ctx.str(k) !== undefined);
    if (owners.length > 1) throw new UsageError("give at most one of --agent, --masque, --author");
    if (owners.length === 0) {
      const me = client.whoami();
      if (me.kind !== "agent" && me.kind !== "author") throw new UsageError(`whose sessions? An ${me.kind} token needs --agent, --masque or --author`);
    }
    const statuses = (ctx.str("status") ?? "")
      .split(",")
      .map((x) => x.trim().toLowerCase())
      .filter(Boolean)
      .map((x) => {
        const v = STATUSES[x];
        if (v === undefined) throw new UsageError(`--status: unknown status ${JSON.stringify(x)} (open, doffed, reaped, cancelled, expired)`);
        return v;
      });
    const limit = Number(ctx.uint("limit") ?? 20n);
    if (limit < 1 || limit > 500) throw new UsageError("--limit: between 1 and 500");
    const agent = ctx.str("agent");
    const masque = ctx.str("masque");
    const author = ctx.str("author");
    const pageToken = ctx.str("page-token");
    const page = await client.sessions.list({
      ...(agent ? { agent_id: agent } : {}),
      ...(masque ? { masque } : {}),
      ...(author ? { author } : {}),
      statuses,
      page_size: limit,
      ...(pageToken ? { page_token: pageToken } : {}),
    });
    const human =
      page.sessions.length === 0
        ? ["No sessions."]
        : [
            `${"STATUS".padEnd(10)} ${"MASQUE".padEnd(16)} ${"DONNED".padEnd(24)} ${"HELD".padStart(10)} ${"CHARGED".padStart(10)}  SESSION`,
            ...page.sessions.map(
              (s) =>
                `${sessionStatusName(s).padEnd(10)} ${s.masqueName.padEnd(16)} ${(isoTime(s.donTime) ?? "-").padEnd(24)} ${formatUsd(s.holdMicro).padStart(10)} ${formatUsd(
                  s.status === SessionStatus.OPEN ? s.priceMicro : s.chargedMicro,
                ).padStart(10)}${s.status === SessionStatus.OPEN ? "*" : " "} ${s.sessionId}`,
            ),
            ...(page.sessions.some((s) => s.status === SessionStatus.OPEN) ? ["* open: accrued so far"] : []),
            ...(page.nextPageToken ? [`More: masques-ledger-client sessions --page-token ${page.nextPageToken}`] : []),
          ];
    return { human, json: { sessions: page.sessions.map(sessionJson), next_page_token: page.nextPageToken || null } };
  },
});
