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
  type HeartbeatResponse,
  type ListMasquesResponse,
  type ListSessionsResponse,
  type RecordUsageResponse,
  type Session,
} from "../gen/masques/ledger/v1/session_service_pb.js";
import type { CallContext, CallOptions } from "./call.js";
import { Code } from "@connectrpc/connect";
import { MasquesError } from "./errors.js";

export { BillingMode, SessionStatus, type Session };

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
   * session (`created: false`) and never holds twice.
   */
  async don(input: DonInput, opts: CallOptions = {}): Promise<{ session: Session; created: boolean; session_id: string }> {
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
          },
          o,
        ),
      { ...opts, idempotent: true, account_owner: this.c.ownerOf(input.agent_id ? { agent_id: input.agent_id } : undefined) },
    );
    return { session: must(res.session, "Don returned no session"), created: res.created, session_id };
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

  /** Settles the session; a second Doff returns the recorded result. */
  async doff(session_id: string, opts: CallOptions = {}): Promise<Session> {
    const res = await this.c.invoke((o) => this.svc.doff({ sessionId: session_id }, o), { ...opts, idempotent: true });
    return must(res.session, "Doff returned no session");
  }

  /** Voids the hold: nothing is charged. */
  async cancel(session_id: string, opts: CallOptions = {}): Promise<Session> {
    const res = await this.c.invoke((o) => this.svc.cancel({ sessionId: session_id }, o), { ...opts, idempotent: true });
    return must(res.session, "Cancel returned no session");
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
