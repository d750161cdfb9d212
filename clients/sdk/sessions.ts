/**
 * SessionService calls of the SDK (don, usage, heartbeat, doff, cancel, reads), as functions over a
 * MasquesClient so client.ts stays about transport, retries and accounts.
 *
 * Idempotency: the session id is the Don's idempotency key (client-chosen; generate it with
 * `newSessionId()` and persist it *before* calling if you want a retry from another process to be
 * safe); usage events are idempotent by (session id, seq); Doff, Cancel and Heartbeat are
 * idempotent by session id. So every call here is retried on transient failures.
 */
import { randomBytes } from "node:crypto";
import {
  BillingMode,
  SessionService,
  SessionStatus,
  SessionView,
  type HeartbeatResponse,
  type ListMasquesResponse,
  type ListSessionsResponse,
  type RecordUsageResponse,
  type Session,
} from "../gen/masques/ledger/v1/session_service_pb.js";
import type { CallContext, CallOptions } from "./call.js";
import { Code } from "@connectrpc/connect";
import { InvalidArgumentError, MasquesError } from "./errors.js";

export { BillingMode, SessionStatus, type Session };

/**
 * How much of the session a Don, Doff or Cancel reply carries (the API's `SessionView`, ADR 0128):
 * - `"basic"`: the id, the state and the money — `sessionId`, `status`, `closeReason`,
 *   `billingMode`, `holdMicro` and every amount (`priceMicro`, `chargedMicro`, `postedMicro`,
 *   `debtMicro`, `refundMicro`, `unbilledMicro`, `authorShareMicro`, `platformFeeMicro`,
 *   `platformFeeBps`), to the micro-USD exactly as the full view has them. About a third of the
 *   bytes and less work for the daemon; for callers that only need the outcome.
 * - `"full"` (the default): all of it — also the masque (`masqueName`, `masqueIndex`, `author`,
 *   `priceVersion`), `agentWalletId`, the four times, the usage and the billed duration.
 * The view shapes only the reply, never what the call does: a retry may ask for either view.
 * `client.sessions.get()` returns the full session at any time.
 */
export type SessionViewName = "basic" | "full";

/** The fields a `"basic"` reply carries (see SessionViewName), in the proto's order. */
export const BASIC_SESSION_FIELDS = [
  "sessionId",
  "billingMode",
  "status",
  "closeReason",
  "holdMicro",
  "priceMicro",
  "chargedMicro",
  "postedMicro",
  "debtMicro",
  "refundMicro",
  "unbilledMicro",
  "authorShareMicro",
  "platformFeeMicro",
  "platformFeeBps",
] as const satisfies readonly (keyof Session)[];

/**
 * A session as a `"basic"` reply has it: only the fields of BASIC_SESSION_FIELDS, as a plain object
 * (the SDK copies them out of the reply, so the fields the daemon left unset are absent, not
 * zero-valued). Amounts are bigint micro-USD. A full `Session` is assignable to it.
 */
export type BasicSession = Pick<Session, (typeof BASIC_SESSION_FIELDS)[number]>;

/** The session a call made with view `V` returns: `BasicSession` for "basic", `Session` for "full"; both if `V` is not known statically. */
export type SessionOf<V extends SessionViewName> = V extends "basic" ? BasicSession : Session;

/** True when `s` is a full session (it carries the masque, times and usage). */
export function isFullSession(s: BasicSession | Session): s is Session {
  return "masqueName" in s;
}

/**
 * The `view` option as the API's enum (undefined stays unset on the wire, which the daemon reads as
 * full: the request is byte for byte what it was before views); anything but "basic" / "full" /
 * undefined is refused before any call.
 */
function viewOf(view: unknown): SessionView {
  if (view === undefined) return SessionView.UNSPECIFIED;
  if (view === "full") return SessionView.FULL;
  if (view === "basic") return SessionView.BASIC;
  throw new InvalidArgumentError({
    message: `Invalid view: expected "basic" or "full", got ${JSON.stringify(view)}.`,
    field: "view",
    rule: `"basic" or "full"`,
    grpc_code: Code.InvalidArgument,
  });
}

/** The session in the view asked for: a basic view keeps only BASIC_SESSION_FIELDS. */
function inView<V extends SessionViewName>(s: Session, view: SessionView): SessionOf<V> {
  if (view !== SessionView.BASIC) return s as SessionOf<V>;
  const b: BasicSession = {
    sessionId: s.sessionId,
    billingMode: s.billingMode,
    status: s.status,
    closeReason: s.closeReason,
    holdMicro: s.holdMicro,
    priceMicro: s.priceMicro,
    chargedMicro: s.chargedMicro,
    postedMicro: s.postedMicro,
    debtMicro: s.debtMicro,
    refundMicro: s.refundMicro,
    unbilledMicro: s.unbilledMicro,
    authorShareMicro: s.authorShareMicro,
    platformFeeMicro: s.platformFeeMicro,
    platformFeeBps: s.platformFeeBps,
  };
  return b as SessionOf<V>;
}

/** Options of Doff and Cancel: the call's options plus the reply's view. */
export interface EndSessionCallOptions<V extends SessionViewName = SessionViewName> extends CallOptions {
  /** How much of the session the reply carries (see SessionViewName). Default "full". */
  view?: V;
}

/** A fresh 128-bit session id as 32 lowercase hex digits. */
export function newSessionId(): string {
  return randomBytes(16).toString("hex");
}

export interface DonInput {
  /** The masque's name in the daemon's catalog. */
  masque: string;
  /** Client-chosen session id (the Don's idempotency key). Generated if omitted. */
  session_id?: string;
  /** Admins act for an agent; agents omit it. */
  agent_id?: string;
  /** The agent's own cap for this session; the hold is min(masque reserve, max_spend). */
  max_spend_micro?: bigint;
  /** Admin-only override. */
  billing_mode?: "shadow" | "soft" | "live";
  /**
   * The Claude Code session id (its OpenTelemetry `session.id`) this masque session runs in: the
   * daemon then bills the session from Claude Code's OTLP events (docs/telemetry.md).
   */
  claude_session_id?: string;
  /** How much of the session the reply carries (see SessionViewName). Default "full". */
  view?: SessionViewName;
}

export interface UsageInput {
  session_id: string;
  /** >= 1, unique per session: the event's idempotency key. */
  seq: number | bigint;
  input_tokens?: bigint;
  output_tokens?: bigint;
  tool_calls?: bigint;
}

function must<T>(v: T | undefined, what: string): T {
  if (v === undefined) {
    throw new MasquesError({ message: `The daemon sent an incomplete answer: ${what}.`, hint: "Upgrade the daemon or the SDK so they match.", kind: "outage", grpc_code: Code.Internal });
  }
  return v;
}

export class SessionsApi {
  constructor(private readonly c: CallContext) {}

  private get svc() {
    return this.c.service(SessionService);
  }

  /**
   * Dons a masque: holds the reservation. Retrying with the same session id returns the same
   * session (`created: false`) and never holds twice. `input.view: "basic"` returns a
   * `BasicSession` (id, status, mode, hold and amounts; see SessionViewName).
   * Throws InvalidArgumentError (field "view") for a view other than "basic" / "full".
   */
  async don<V extends SessionViewName = "full">(
    input: DonInput & { view?: V },
    opts: CallOptions = {},
  ): Promise<{ session: SessionOf<V>; created: boolean; session_id: string }> {
    const view = viewOf(input.view);
    const session_id = input.session_id ?? newSessionId();
    const billingMode =
      input.billing_mode === "shadow" ? BillingMode.SHADOW : input.billing_mode === "soft" ? BillingMode.SOFT : input.billing_mode === "live" ? BillingMode.LIVE : BillingMode.UNSPECIFIED;
    const res = await this.c.invoke(
      (o) =>
        this.svc.don(
          {
            sessionId: session_id,
            masque: input.masque,
            agentId: input.agent_id ?? "",
            maxSpendMicro: input.max_spend_micro ?? 0n,
            billingMode,
            claudeSessionId: input.claude_session_id ?? "",
            view,
          },
          o,
        ),
      { ...opts, idempotent: true, account_owner: this.c.ownerOf(input.agent_id ? { agent_id: input.agent_id } : undefined) },
    );
    return { session: inView<V>(must(res.session, "Don returned no session"), view), created: res.created, session_id };
  }

  /** Records usage events (1..2000, any of the caller's sessions); each applies once per (session, seq). */
  async recordUsage(events: UsageInput[], opts: CallOptions = {}): Promise<RecordUsageResponse> {
    const req = {
      events: events.map((e) => ({
        sessionId: e.session_id,
        seq: BigInt(e.seq),
        inputTokens: e.input_tokens ?? 0n,
        outputTokens: e.output_tokens ?? 0n,
        toolCalls: e.tool_calls ?? 0n,
      })),
    };
    return this.c.invoke((o) => this.svc.recordUsage(req, o), { ...opts, idempotent: true });
  }

  async heartbeat(session_id: string, opts: CallOptions = {}): Promise<HeartbeatResponse> {
    return this.c.invoke((o) => this.svc.heartbeat({ sessionId: session_id }, o), { ...opts, idempotent: true });
  }

  /**
   * Settles the session; a second Doff returns the recorded result. `opts.view: "basic"` returns a
   * `BasicSession` (the outcome's amounts without the masque, times and usage; see SessionViewName).
   * Throws InvalidArgumentError (field "view") for a view other than "basic" / "full".
   */
  async doff<V extends SessionViewName = "full">(session_id: string, opts: EndSessionCallOptions<V> = {}): Promise<SessionOf<V>> {
    const { view: asked, ...call } = opts;
    const view = viewOf(asked);
    const res = await this.c.invoke((o) => this.svc.doff({ sessionId: session_id, view }, o), { ...call, idempotent: true });
    return inView<V>(must(res.session, "Doff returned no session"), view);
  }

  /**
   * Voids the hold: nothing is charged. `opts.view: "basic"` returns a `BasicSession` (see
   * SessionViewName). Throws InvalidArgumentError (field "view") for another view.
   */
  async cancel<V extends SessionViewName = "full">(session_id: string, opts: EndSessionCallOptions<V> = {}): Promise<SessionOf<V>> {
    const { view: asked, ...call } = opts;
    const view = viewOf(asked);
    const res = await this.c.invoke((o) => this.svc.cancel({ sessionId: session_id, view }, o), { ...call, idempotent: true });
    return inView<V>(must(res.session, "Cancel returned no session"), view);
  }

  async get(session_id: string, opts: CallOptions = {}): Promise<Session> {
    const res = await this.c.invoke((o) => this.svc.getSession({ sessionId: session_id }, o), { ...opts, idempotent: true });
    return must(res.session, "GetSession returned no session");
  }

  /** One page of sessions, newest first. Default owner: the caller (an agent's own sessions). */
  async list(
    req: { agent_id?: string; masque?: string; author?: string; statuses?: SessionStatus[]; page_size?: number; page_token?: string } = {},
    opts: CallOptions = {},
  ): Promise<ListSessionsResponse> {
    let owner: { case: "masque" | "author" | "agentId"; value: string };
    if (req.masque !== undefined) owner = { case: "masque", value: req.masque };
    else if (req.author !== undefined) owner = { case: "author", value: req.author };
    else if (req.agent_id !== undefined) owner = { case: "agentId", value: req.agent_id };
    else {
      // Default: the caller's own sessions (an agent's, or an author's masques').
      const me = this.c.whoami();
      owner = me.kind === "author" ? { case: "author", value: me.id } : { case: "agentId", value: me.id };
    }
    return this.c.invoke(
      (o) => this.svc.listSessions({ owner, statuses: req.statuses ?? [], pageSize: req.page_size ?? 0, pageToken: req.page_token ?? "" }, o),
      { ...opts, idempotent: true },
    );
  }

  /** The masque catalog with current prices. */
  async masques(req: { page_size?: number; page_token?: string } = {}, opts: CallOptions = {}): Promise<ListMasquesResponse> {
    return this.c.invoke((o) => this.svc.listMasques({ pageSize: req.page_size ?? 0, pageToken: req.page_token ?? "" }, o), { ...opts, idempotent: true });
  }
}
