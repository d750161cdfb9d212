/**
 * MasquesClient: the ergonomic client over the generated Connect clients (clients/gen).
 *
 * - endpoint / token / transport from options or the environment (config.ts);
 * - every call has a total deadline (`timeout_ms`, retries included) and a per-attempt deadline;
 * - transient failures are retried with backoff + jitter; mutating calls carry an idempotency key
 *   generated once per logical call (or given by the caller) and reused on every attempt;
 * - every failure is a typed `MasquesError` (errors.ts) saying what happened and what to do.
 */
import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import type { DescService } from "@bufbuild/protobuf";
import { decodeJwt } from "jose";
import { randomUUID } from "node:crypto";
import {
  AccountService,
  WalletMode,
  type GetBalanceHistoryResponse,
  type ListTransfersResponse,
} from "../gen/masques/ledger/v1/account_service_pb.js";
import { type Account, type AccountRef, Rail, type Transfer, TransferKind } from "../gen/masques/ledger/v1/common_pb.js";
import { resolveClientConfig, type ClientOptions, type ResolvedClientConfig } from "./config.js";
import { errorFrom } from "./details.js";
import { MasquesError, UnauthenticatedError, InvalidArgumentError } from "./errors.js";
import { newIdempotencyKey } from "./idempotency.js";
import { withRetry } from "./retry.js";
import type { AccountSelector, CallContext, CallOptions, MutatingCallOptions, TokenIdentity } from "./call.js";
import { SessionsApi } from "./sessions.js";

export type { AccountSelector, CallOptions, MutatingCallOptions, TokenIdentity } from "./call.js";

export class MasquesClient implements CallContext {
  readonly config: ResolvedClientConfig;
  readonly transport: Transport;
  /** The raw generated AccountService client (no retries, raw ConnectErrors). */
  readonly accountService: Client<typeof AccountService>;
  /** SessionService: don, usage, heartbeat, doff, cancel, reads. */
  readonly sessions: SessionsApi;
  private readonly clients = new Map<DescService, unknown>();

  constructor(options: ClientOptions = {}) {
    this.config = resolveClientConfig(options);
    const token = this.config.token;
    const auth: Interceptor = (next) => async (req) => {
      if (token) req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    };
    const base = { baseUrl: this.config.endpoint, interceptors: [auth] };
    this.transport =
      this.config.transport === "grpc"
        ? createGrpcTransport({ ...base })
        : createConnectTransport({ ...base, httpVersion: "1.1" });
    this.accountService = this.service(AccountService);
    this.sessions = new SessionsApi(this);
  }

  /** A raw generated client for any service of the daemon, over this client's transport. */
  service<S extends DescService>(desc: S): Client<S> {
    let c = this.clients.get(desc) as Client<S> | undefined;
    if (!c) {
      c = createClient(desc, this.transport);
      this.clients.set(desc, c);
    }
    return c;
  }

  /** Who the configured token says the caller is. */
  whoami(): TokenIdentity {
    const token = this.config.token;
    if (!token) {
      throw new UnauthenticatedError({
        message: "No bearer token configured.",
        hint: "Set MASQUES_TOKEN (or pass --token). For local use: `masques-ledger token --kind agent --id <agent-id>` mints one.",
        kind: "user",
        grpc_code: Code.Unauthenticated,
      });
    }
    let claims: Record<string, unknown>;
    try {
      claims = decodeJwt(token);
    } catch {
      throw new UnauthenticatedError({
        message: "The configured bearer token is not a JWT.",
        hint: "Check MASQUES_TOKEN / --token: it must be the token printed by `masques-ledger token` or issued by your admin.",
        kind: "user",
        grpc_code: Code.Unauthenticated,
      });
    }
    const kind = claims["kind"];
    const sub = claims["sub"];
    if ((kind !== "agent" && kind !== "author" && kind !== "rail" && kind !== "admin") || typeof sub !== "string") {
      throw new UnauthenticatedError({
        message: "The configured bearer token has no `kind`/`sub` claims.",
        hint: "Use a token minted by `masques-ledger token` or your admin.",
        kind: "user",
        grpc_code: Code.Unauthenticated,
      });
    }
    return { kind, id: sub };
  }

  /**
   * Run one logical call with deadline, retries and typed errors. `fn` receives per-attempt Connect
   * call options; it must send the same request (same idempotency key) on every attempt.
   */
  async invoke<T>(
    fn: (opts: { timeoutMs: number; signal?: AbortSignal; headers: Record<string, string> }) => Promise<T>,
    opts: CallOptions & {
      idempotent: boolean;
      /** The account the call is about, as the caller named it (e.g. `the wallet of agent "bob"`): errors about it say so, not only its hex id. */
      account_owner?: string | undefined;
    },
  ): Promise<T> {
    const deadline_ms = opts.timeout_ms ?? this.config.timeout_ms;
    // One request id per logical call: the daemon logs every attempt under it.
    const request_id = randomUUID();
    try {
      return await withRetry(
        ({ remaining_ms }) =>
          fn({
            timeoutMs: Math.max(1, Math.min(remaining_ms, this.config.attempt_timeout_ms)),
            ...(opts.signal ? { signal: opts.signal } : {}),
            headers: { "x-request-id": request_id },
          }),
        { policy: this.config.retry, idempotent: opts.idempotent, deadline_ms },
      );
    } catch (err) {
      throw errorFrom(err, { endpoint: this.config.endpoint, ...(opts.account_owner ? { account_owner: opts.account_owner } : {}) });
    }
  }

  /**
   * How a person named an account, for error messages: `the wallet of agent "bob"`, `the earnings
   * account of author "ada"`; undefined for a raw account id (the id is what they typed) or when
   * the token names nobody (errors then come from `ref`).
   */
  ownerOf(sel?: AccountSelector): string | undefined {
    if (sel) {
      if ("agent_id" in sel) return `the wallet of agent ${JSON.stringify(sel.agent_id)}`;
      if ("author_id" in sel) return `the earnings account of author ${JSON.stringify(sel.author_id)}`;
      return undefined;
    }
    try {
      const me = this.whoami();
      if (me.kind === "agent") return `the wallet of agent ${JSON.stringify(me.id)} (this token's own)`;
      if (me.kind === "author") return `the earnings account of author ${JSON.stringify(me.id)} (this token's own)`;
    } catch {
      // no usable token: the call itself reports it
    }
    return undefined;
  }

  private ref(sel?: AccountSelector): AccountRef {
    if (sel) {
      if ("account_id" in sel) return { $typeName: "masques.ledger.v1.AccountRef", ref: { case: "accountId", value: sel.account_id } };
      if ("agent_id" in sel) return { $typeName: "masques.ledger.v1.AccountRef", ref: { case: "agentWallet", value: sel.agent_id } };
      return { $typeName: "masques.ledger.v1.AccountRef", ref: { case: "authorEarnings", value: sel.author_id } };
    }
    const me = this.whoami();
    if (me.kind === "agent") return this.ref({ agent_id: me.id });
    if (me.kind === "author") return this.ref({ author_id: me.id });
    throw new InvalidArgumentError({
      message: `${/^[aeiou]/.test(me.kind) ? "An" : "A"} ${me.kind} token has no account of its own to default to.`,
      hint: "Name the account: --agent <id>, --author <id> or --account <32-hex id>.",
      grpc_code: Code.InvalidArgument,
      field: "account",
    });
  }

  // ---- AccountService ---------------------------------------------------------------------

  /** An account with its balances (default: the caller's own wallet or earnings). */
  async getAccount(sel?: AccountSelector, opts: CallOptions = {}): Promise<Account> {
    const account = this.ref(sel);
    const res = await this.invoke((o) => this.accountService.getAccount({ account }, o), { ...opts, idempotent: true, account_owner: this.ownerOf(sel) });
    return mustHave(res.account, "GetAccount returned no account");
  }

  /** Opens (or returns) an agent's wallet; idempotent by owner. */
  async openAgentWallet(
    req: { agent_id?: string; mode?: "prepaid" | "postpaid"; credit_limit_micro?: bigint } = {},
    opts: CallOptions = {},
  ): Promise<Account> {
    const mode = req.mode === "postpaid" ? WalletMode.POSTPAID : WalletMode.PREPAID;
    const res = await this.invoke(
      (o) => this.accountService.openAgentWallet({ agentId: req.agent_id ?? "", mode, creditLimitMicro: req.credit_limit_micro ?? 0n }, o),
      { ...opts, idempotent: true },
    );
    return mustHave(res.account, "OpenAgentWallet returned no account");
  }

  /** Opens (or returns) an author's earnings account; idempotent by owner. */
  async openAuthorEarnings(req: { author_id?: string } = {}, opts: CallOptions = {}): Promise<Account> {
    const res = await this.invoke((o) => this.accountService.openAuthorEarnings({ authorId: req.author_id ?? "" }, o), { ...opts, idempotent: true });
    return mustHave(res.account, "OpenAuthorEarnings returned no account");
  }

  /**
   * Credits an agent wallet. Without `rail` it is a manual deposit (admin only). Idempotent by
   * (rail, idempotency_key): the key is generated once for this call and reused on every retry.
   */
  async deposit(
    req: { to: AccountSelector; amount_micro: bigint; rail?: "base" | "solana" | "lightning" },
    opts: MutatingCallOptions = {},
  ): Promise<{ transfer: Transfer; idempotency_key: string }> {
    const idempotency_key = opts.idempotency_key ?? newIdempotencyKey();
    const rail = req.rail === "base" ? Rail.BASE : req.rail === "solana" ? Rail.SOLANA : req.rail === "lightning" ? Rail.LIGHTNING : Rail.UNSPECIFIED;
    const account = this.ref(req.to);
    const res = await this.invoke(
      (o) => this.accountService.deposit({ account, amountMicro: req.amount_micro, rail, idempotencyKey: idempotency_key }, o),
      { ...opts, idempotent: true, account_owner: this.ownerOf(req.to) },
    );
    return { transfer: mustHave(res.transfer, "Deposit returned no transfer"), idempotency_key };
  }

  /** One page of an account's transfers, newest first. */
  async listTransfers(
    req: { account?: AccountSelector; page_size?: number; page_token?: string; kind?: TransferKind } = {},
    opts: CallOptions = {},
  ): Promise<ListTransfersResponse> {
    const account = this.ref(req.account);
    return this.invoke(
      (o) =>
        this.accountService.listTransfers(
          { account, pageSize: req.page_size ?? 0, pageToken: req.page_token ?? "", kind: req.kind ?? TransferKind.UNSPECIFIED },
          o,
        ),
      { ...opts, idempotent: true, account_owner: this.ownerOf(req.account) },
    );
  }

  /** One page of an account's balance history, newest first. */
  async balanceHistory(req: { account?: AccountSelector; page_size?: number; page_token?: string } = {}, opts: CallOptions = {}): Promise<GetBalanceHistoryResponse> {
    const account = this.ref(req.account);
    return this.invoke(
      (o) => this.accountService.getBalanceHistory({ account, pageSize: req.page_size ?? 0, pageToken: req.page_token ?? "" }, o),
      { ...opts, idempotent: true, account_owner: this.ownerOf(req.account) },
    );
  }
}

function mustHave<T>(v: T | undefined, what: string): T {
  if (v === undefined) {
    throw new MasquesError({ message: `The daemon sent an incomplete answer: ${what}.`, hint: "Upgrade the daemon or the SDK so they match.", kind: "outage", grpc_code: Code.Internal });
  }
  return v;
}

export { ConnectError };
