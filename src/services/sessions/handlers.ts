/**
 * SessionService handlers, thin: parse the request (every bad field named), authorize (ONE call
 * into src/services/authz.ts, visible in each handler), execute (don.ts, usage.ts, settle.ts,
 * list.ts), convert to protobuf (proto.ts). They take the authenticated principal; service.ts
 * binds them to Connect.
 */
import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import {
  BillingMode as ApiBillingMode,
  SessionStatus as ApiSessionStatus,
  type DonRequest,
  type ListSessionsRequest,
  type Masque,
  type Session,
  SessionView,
  type UsageEvent,
} from "../../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { AMOUNT_MAX_MICRO, OWNER_ID_RE, OWNER_ID_RULE } from "../../domain/accounts.js";
import { idToHex } from "../../domain/ids.js";
import { parseSessionId } from "../../domain/sessions.js";
import { reservationMicro, type BillingMode } from "../../domain/pricing.js";
import type { Principal } from "../../server/principal.js";
import {
  authorizeActOnSession,
  authorizeDon,
  authorizeListMasques,
  authorizeListSessions,
  authorizeReadSession,
  authorizeRecordUsage,
  isAdmin,
  usageAgentFor,
} from "../authz.js";
import { invalidArgument, statusError, type Violation } from "../errors.js";
import { decodePageToken, timestampFromNs } from "../views.js";
import { executeDon } from "./don.js";
import { executeList } from "./list.js";
import { masqueToProto, MODE_FROM_API, sessionToProto } from "./proto.js";
import { priceBookEntry, readSessionForAction, readSessionWithTransfers, sessionNotFound, type SessionRead } from "./reads.js";
import { executeCancel, executeDoff } from "./settle.js";
import type { SessionState } from "./state.js";
import { executeHeartbeat, executeUsage, lookupSessions, MAX_USAGE_EVENTS, type UsageReport } from "./usage.js";

const LIST_DEFAULT = 50;
/** Longest Claude Code session id a Don may bind (they are UUIDs). */
const CLAUDE_SESSION_ID_MAX = 256;
/** RecordUsage's answer for an event of a session metered from OTLP (issue 18, docs/telemetry.md). */
export const METERED_FROM_OTLP = "METERED_FROM_OTLP";
const LIST_MAX = 500;

function throwIfInvalid(v: readonly Violation[]): void {
  if (v.length > 0) throw invalidArgument(v);
}

function parseSid(text: string, field: string, v: Violation[]): bigint {
  try {
    return parseSessionId(text);
  } catch (e) {
    v.push({ field, description: (e as Error).message.replace(/^session_id /, "") });
    return 0n;
  }
}

/**
 * Check one value of a protobuf enum field. Proto3 enums are open: the wire carries any int32
 * (binary, or a number in JSON), and protobuf-es hands it over as is; a value the enum does not
 * name is refused here, naming `field` and every allowed value (the proto names, `prefix` + the
 * generated member name), instead of falling back to a default or matching nothing.
 */
function checkEnum(value: number, members: Record<string, string | number>, prefix: string, field: string, v: Violation[]): void {
  if (typeof members[value] === "string") return;
  const allowed = Object.entries(members)
    .filter((e): e is [string, number] => typeof e[1] === "number")
    .map(([name, n]) => `${prefix}${name} (${n})`)
    .join(", ");
  v.push({ field, description: `${value} is not a value of the enum: must be one of ${allowed}` });
}

/** Request fields the handlers read (the generated messages, without protobuf-es metadata). */
type Fields<T> = Omit<T, "$typeName" | "$unknown">;

export interface SessionHandlers {
  /** `view` (default FULL): how much of the session the reply carries (proto.ts, ADR 0128). */
  don(p: Principal, req: Omit<Fields<DonRequest>, "claudeSessionId" | "view"> & { claudeSessionId?: string; view?: SessionView }): Promise<{ session: Session; created: boolean }>;
  recordUsage(p: Principal, events: readonly UsageEvent[]): Promise<UsageReport>;
  heartbeat(p: Principal, session_id: string): Promise<{ status: ApiSessionStatus; idleDeadlineTime: ReturnType<typeof timestampFromNs> | undefined }>;
  doff(p: Principal, session_id: string, view?: SessionView): Promise<Session>;
  cancel(p: Principal, session_id: string, view?: SessionView): Promise<Session>;
  get(p: Principal, session_id: string): Promise<Session>;
  list(p: Principal, req: Pick<ListSessionsRequest, "owner" | "statuses" | "pageSize" | "pageToken">): Promise<{ sessions: Session[]; nextPageToken: string }>;
  listMasques(p: Principal, pageSize: number, pageToken: string): { masques: Masque[]; nextPageToken: string };
}

/** The handlers of one service instance; `ready` resolves once its state is rebuilt. */
export function sessionHandlers(s: SessionState, ready: Promise<void>): SessionHandlers {
  /** Read a session a Doff / Cancel acts on (NOT_FOUND before authorization, as before). */
  async function readForAction(sid: bigint): Promise<SessionRead> {
    await ready;
    const r = await readSessionForAction(s, sid);
    if (!r) throw sessionNotFound(sid);
    return r;
  }

  return {
    async don(p, req) {
      const agent_id = authorizeDon(p, req.agentId, req.billingMode !== ApiBillingMode.UNSPECIFIED);
      const v: Violation[] = [];
      if (isAdmin(p) && !agent_id) v.push({ field: "agent_id", description: "required when an admin dons for an agent" });
      if (agent_id && !OWNER_ID_RE.test(agent_id)) v.push({ field: "agent_id", description: OWNER_ID_RULE });
      const sid = req.sessionId === "" ? BigInt(`0x${randomBytes(16).toString("hex")}`) | 1n : parseSid(req.sessionId, "session_id", v);
      if (req.maxSpendMicro > AMOUNT_MAX_MICRO) v.push({ field: "max_spend_micro", description: "must be <= 2^63-1" });
      checkEnum(req.billingMode, ApiBillingMode, "BILLING_MODE_", "billing_mode", v);
      checkEnum(req.view ?? SessionView.UNSPECIFIED, SessionView, "SESSION_VIEW_", "view", v);
      if (!req.masque) v.push({ field: "masque", description: "required: the masque's name" });
      const claude = req.claudeSessionId ?? "";
      if (claude.length > CLAUDE_SESSION_ID_MAX || /[\u0000-\u001f]/.test(claude)) {
        v.push({ field: "claude_session_id", description: `at most ${CLAUDE_SESSION_ID_MAX} printable characters` });
      }
      throwIfInvalid(v);
      await ready; // the published catalog is read at start-up
      const masque = s.catalog.byName.get(req.masque);
      if (!masque) {
        throw statusError(Code.NotFound, "MASQUE_NOT_FOUND", `masque ${JSON.stringify(req.masque)} is not in the catalog`, {
          masque: req.masque,
        });
      }
      const flat_micro = masque.pricing.flat_per_session_micro;
      // A hold below the flat fee could never pay the session's own minimum price (ADR 0034). A
      // retry of a session that already exists (donned before this rule) still gets its session.
      if (req.maxSpendMicro > 0n && req.maxSpendMicro < flat_micro && !(await readSessionForAction(s, sid))) {
        throw invalidArgument([
          {
            field: "max_spend_micro",
            description: `must be 0 (no cap) or >= the flat_per_session price of masque ${JSON.stringify(masque.name)} (${flat_micro} micro-USD)`,
          },
        ]);
      }
      // billing_mode is checked above: UNSPECIFIED (0) is the only value without a mode here.
      const mode: BillingMode = MODE_FROM_API[req.billingMode] ?? s.config.BILLING_MODE;
      const hold_micro = mode === "shadow" ? 0n : reservationMicro(masque.pricing, req.maxSpendMicro);
      await ready;
      if (claude !== "") {
        // Written before the hold: once the session exists, whether it is OTLP-metered is final.
        const b = await s.otlp.bind({ session_id: idToHex(sid), claude_session_id: claude, agent_id, bind_time_ns: s.clock() });
        if (b.claude_session_id !== claude || b.agent_id !== agent_id) {
          throw statusError(Code.AlreadyExists, "SESSION_BOUND_ELSEWHERE", `session ${idToHex(sid)} is already bound to another Claude session or agent`, {
            session_id: idToHex(sid),
          });
        }
      }
      const r = await executeDon(s, { session_id: sid, agent_id, masque, mode, hold_micro });
      if (claude === "" && r.created) s.otlp.markUnbound(idToHex(sid));
      return { session: await sessionToProto(s, r.view, req.view), created: r.created };
    },

    async recordUsage(p, events) {
      await ready;
      authorizeRecordUsage(p);
      if (events.length === 0 || events.length > MAX_USAGE_EVENTS) {
        throw invalidArgument([{ field: "events", description: `must hold 1 to ${MAX_USAGE_EVENTS} events` }]);
      }
      // Sessions donned with a Claude session id are metered from OTLP only (never both paths).
      // Parsed once per distinct session id of the call (a batch names few sessions many times).
      const seen = new Set<string>();
      const sids = new Set<string>();
      for (const e of events) {
        if (seen.has(e.sessionId)) continue;
        seen.add(e.sessionId);
        try {
          sids.add(idToHex(parseSessionId(e.sessionId)));
        } catch {
          // refused by executeUsage (INVALID_ARGUMENT)
        }
      }
      const bound = await s.otlp.bindingsOf([...sids], { fresh: false });
      const refuse = bound.size === 0 ? undefined : (sid: bigint) => (bound.has(idToHex(sid)) ? METERED_FROM_OTLP : null);
      return executeUsage(s, events, (wallet) => usageAgentFor(p, wallet), refuse);
    },

    async heartbeat(p, session_id) {
      const v: Violation[] = [];
      const sid = parseSid(session_id, "session_id", v);
      throwIfInvalid(v);
      await ready;
      const found = (await lookupSessions(s, [sid])).get(sid) ?? null;
      if (found === null) throw sessionNotFound(sid);
      authorizeActOnSession(p, "wallet_id" in found ? found.wallet_id : found.agent_wallet_id, sid, "heartbeat");
      const r = await executeHeartbeat(s, found, p.kind === "agent" ? p.id : null);
      return { status: r.status, idleDeadlineTime: r.idle_deadline_ns === null ? undefined : timestampFromNs(r.idle_deadline_ns) };
    },

    async doff(p, session_id, view) {
      const v: Violation[] = [];
      const sid = parseSid(session_id, "session_id", v);
      checkEnum(view ?? SessionView.UNSPECIFIED, SessionView, "SESSION_VIEW_", "view", v);
      throwIfInvalid(v);
      let r = await readForAction(sid);
      authorizeActOnSession(p, r.agent_wallet_id, sid, "doff");
      const end_ns = s.clock();
      const grace_ms = s.config.OTLP_DOFF_GRACE_MS;
      if (r.status === "open" && grace_ms > 0) {
        // OTLP-metered: events stamped before this Doff may still be in the exporter's batch.
        const store = s.otlp;
        if ((await store.bindingsOf([idToHex(sid)], { fresh: false })).size > 0) {
          await store.markDoff(idToHex(sid), end_ns);
          s.log.info({ session_id: idToHex(sid), grace_ms }, "doff waits for OTLP events stamped before it");
          await new Promise((resolve) => setTimeout(resolve, grace_ms));
          r = await readForAction(sid);
        }
      }
      return await sessionToProto(s, await executeDoff(s, r, p.kind === "agent" ? p.id : null, end_ns), view);
    },

    async cancel(p, session_id, view) {
      const v: Violation[] = [];
      const sid = parseSid(session_id, "session_id", v);
      checkEnum(view ?? SessionView.UNSPECIFIED, SessionView, "SESSION_VIEW_", "view", v);
      throwIfInvalid(v);
      const r = await readForAction(sid);
      authorizeActOnSession(p, r.agent_wallet_id, sid, "cancel");
      return await sessionToProto(s, await executeCancel(s, r), view);
    },

    async get(p, session_id) {
      const v: Violation[] = [];
      const sid = parseSid(session_id, "session_id", v);
      throwIfInvalid(v);
      await ready;
      const r = await readSessionWithTransfers(s, sid);
      // The payee is read (cache, else the database) BEFORE the synchronous authorization check.
      const payee_author = r ? ((await priceBookEntry(s, r.price_version))?.author ?? null) : null;
      authorizeReadSession(p, r && { wallet_id: r.agent_wallet_id, session_id: sid, payee_author });
      if (!r) throw sessionNotFound(sid);
      return await sessionToProto(s, r);
    },

    async list(p, req) {
      await ready;
      const v: Violation[] = [];
      if (req.pageSize > LIST_MAX) v.push({ field: "page_size", description: `must be <= ${LIST_MAX}` });
      const size = req.pageSize === 0 ? LIST_DEFAULT : Math.min(req.pageSize, LIST_MAX);
      // A masque outside this daemon's catalog (another daemon's) is named by the stored price
      // books, read BEFORE the synchronous authorization check. An author owns it when one of its
      // price books pays them; the payee filter below still shows them only sessions paying them.
      const stored =
        req.owner.case === "masque" && !s.catalog.byName.has(req.owner.value)
          ? (await s.registry.all()).filter((e) => e.masque_name === req.owner.value)
          : [];
      const storedMasque = stored.find((e) => e.author === p.id) ?? stored[0];
      const owner = authorizeListSessions(
        p,
        req.owner.case === undefined ? { case: undefined, value: "" } : { case: req.owner.case, value: req.owner.value },
        (name) => s.catalog.byName.get(name)?.author ?? storedMasque?.author,
      );
      // The first unnamed element only: the list is as long as the message allows (bounded reply).
      const bad_at = req.statuses.findIndex((x) => typeof ApiSessionStatus[x] !== "string");
      if (bad_at >= 0) checkEnum(req.statuses[bad_at]!, ApiSessionStatus, "SESSION_STATUS_", `statuses[${bad_at}]`, v);
      throwIfInvalid(v);
      const statuses = new Set(req.statuses.filter((x) => x !== ApiSessionStatus.UNSPECIFIED));
      const token_query = ["sessions", owner.case ?? "all", owner.value, [...statuses].sort()];
      const before_ns = decodePageToken(req.pageToken, token_query, v);
      let indexes: number[] = [];
      if (owner.case === "masque") {
        const m = s.catalog.byName.get(owner.value) ?? storedMasque;
        if (!m) throw statusError(Code.NotFound, "MASQUE_NOT_FOUND", `masque ${JSON.stringify(owner.value)} is not known`, { masque: owner.value });
        indexes = ["index" in m ? m.index : m.masque_index];
      } else if (owner.case === "author") {
        indexes = [...new Set([...(await s.registry.indexesOfAuthor(owner.value)), ...s.catalog.indexesOfAuthor(owner.value)])];
      } else if (owner.case === "agentId" && !OWNER_ID_RE.test(owner.value)) {
        v.push({ field: "agent_id", description: OWNER_ID_RULE });
      }
      throwIfInvalid(v);
      const payee = owner.case === "author" ? owner.value : !isAdmin(p) && p.kind === "author" ? p.id : null;
      return executeList(s, {
        owner: owner.case === "agentId" ? { case: "agentId", agent_id: owner.value } : owner.case === undefined ? { case: "all" } : { case: "masques", indexes },
        statuses,
        payee,
        size,
        before_ns,
        token_query,
      });
    },

    listMasques(p, pageSize, pageToken) {
      authorizeListMasques(p);
      const size = pageSize === 0 ? 100 : Math.min(pageSize, 1000);
      const start = pageToken === "" ? 0 : Number.parseInt(Buffer.from(pageToken, "base64url").toString("utf8"), 10);
      if (!Number.isSafeInteger(start) || start < 0) {
        throw invalidArgument([{ field: "page_token", description: "must be a next_page_token returned by ListMasques" }]);
      }
      const all = s.catalog.list();
      const page = all.filter((m) => m.index > start).slice(0, size);
      const last = page[page.length - 1];
      return {
        masques: page.map(masqueToProto),
        nextPageToken: last && all.some((m) => m.index > last.index) ? Buffer.from(String(last.index)).toString("base64url") : "",
      };
    },
  };
}
