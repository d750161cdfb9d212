/**
 * SessionService: Don, RecordUsage, Heartbeat, Doff, Cancel, GetSession, ListSessions, ListMasques.
 *
 * Thin over the domain: src/domain/sessions.ts builds the ledger events and rebuilds sessions from
 * the ledger; pricing.ts / split.ts compute the price and the split. The ledger is the only
 * record of a session; the in-memory `open` map is an index of sessions this daemon knows to be
 * open (for the reaper and to validate usage without a read), rebuilt from the ledger at start-up.
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  AccountFilterFlags,
  AccountFlags,
  CreateAccountStatus,
  CreateTransferStatus,
  QueryFilterFlags,
  TransferFlags,
  type Account,
  type Client,
  type Transfer,
} from "tigerbeetle-node";
import type { Logger } from "pino";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import {
  BillingMode as ApiBillingMode,
  CloseReason as ApiCloseReason,
  MasqueSchema,
  PricingSchema,
  SessionService,
  SessionStatus as ApiSessionStatus,
  UsageOutcome,
  UsageResultSchema,
  type Session,
  type UsageEvent,
} from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import type { Config } from "../config.js";
import {
  AMOUNT_MAX_MICRO,
  OWNER_ID_RE,
  OWNER_ID_RULE,
  agentDebtId,
  agentWalletId,
  authorEarningsAccount,
  authorEarningsId,
  availableMicro,
  platformAccountId,
  usageSinkId,
} from "../domain/accounts.js";
import { loadCatalog, PriceBookRegistry, type Catalog, type PriceBookEntry } from "../domain/catalog.js";
import { AccountCode, Ledger, TransferCode } from "../domain/codes.js";
import { deterministicId, idToHex } from "../domain/ids.js";
import { accrue, formatPicoAsUsd, reservationMicro, type BillingMode } from "../domain/pricing.js";
import {
  billedDurationMs,
  parseSessionId,
  planCancel,
  planDoff,
  planDon,
  planHeartbeat,
  planUsage,
  priceSession,
  reconstructSession,
  sessionTransferIds,
  USAGE_LEDGER,
  type CloseReason,
  type SessionAccountIds,
  type SessionView,
} from "../domain/sessions.js";
import type { Principal } from "../server/principal.js";
import { defineService, type DaemonContext, type ServiceRegistration } from "../server/registry.js";
import { isAdmin, principalOf, requireScope } from "./authz.js";
import {
  accountNotFound,
  failedPrecondition,
  insufficientFunds,
  invalidArgument,
  ledgerRejected,
  permissionDenied,
  statusError,
  type Violation,
} from "./errors.js";
import { decodePageToken, encodePageToken, timestampFromNs } from "./views.js";
import { startReaper, type Reaper } from "./reaper.js";
import { newAccount } from "../domain/records.js";

export const MAX_USAGE_EVENTS = 2_000;
/** Shared (never mutated) result messages: most events of a batch share one of these. */
const APPLIED_RESULT = create(UsageResultSchema, { outcome: UsageOutcome.APPLIED, reason: "" });
const DUPLICATE_RESULT = create(UsageResultSchema, { outcome: UsageOutcome.DUPLICATE, reason: "" });
const LIST_DEFAULT = 50;
const LIST_MAX = 500;
const LEDGER_LIMIT = 8189;

const CT = CreateTransferStatus;

/** A session this daemon knows to be open (index only; the ledger is the record). */
export interface OpenSession {
  session_id: bigint;
  wallet_id: bigint;
  masque_index: number;
  don_ns: bigint;
  deadline_ns: bigint;
  last_activity_ns: bigint;
  /** Last heartbeat written to the ledger (heartbeats are throttled). */
  last_beat_written_ns: bigint;
  /** Bit (1 << ledger) per usage ledger this session has transfers on (see sessionTransfers). */
  meters: number;
  /** The hold as the ledger stored it (when known), so a single-writer read needs no lookup. */
  hold?: Transfer;
}

const ALL_METERS = Object.values(USAGE_LEDGER).reduce((m, l) => m | (1 << l), 0);

/**
 * An agent's usage meter on one usage ledger, keyed by the agent's WALLET id, so a session's
 * meters are known from its hold alone (the hold carries the wallet, not the agent id).
 */
export function usageMeterOfWallet(wallet_id: bigint, ledger: number): bigint {
  let m = meterMemo.get(wallet_id);
  if (m === undefined) {
    const hex = idToHex(wallet_id);
    m = new Map(Object.values(USAGE_LEDGER).map((l) => [l, deterministicId("account", "usage_meter", hex, l)]));
    if (meterMemo.size >= 100_000) meterMemo.clear();
    meterMemo.set(wallet_id, m);
  }
  return m.get(ledger) ?? deterministicId("account", "usage_meter", idToHex(wallet_id), ledger);
}
const meterMemo = new Map<bigint, Map<number, bigint>>();

export function usageMeterId(agent_id: string, ledger: number): bigint {
  return usageMeterOfWallet(agentWalletId(agent_id), ledger);
}

/** Memoize an id derivation (each is a SHA-256; hot paths derive the same few ids over and over). */
function memo<K>(f: (k: K) => bigint, max = 100_000): (k: K) => bigint {
  const m = new Map<K, bigint>();
  return (k: K) => {
    let v = m.get(k);
    if (v === undefined) {
      v = f(k);
      if (m.size >= max) m.clear();
      m.set(k, v);
    }
    return v;
  };
}

const walletOf = memo(agentWalletId);
const meterOf = memo((key: string) => {
  const i = key.lastIndexOf("|");
  return usageMeterId(key.slice(0, i), Number(key.slice(i + 1)));
});
const SINKS = new Map<number, bigint>(Object.values(USAGE_LEDGER).map((l) => [l, usageSinkId(l)]));

export const sessionAccountIds: SessionAccountIds = {
  agentWallet: walletOf,
  agentDebt: agentDebtId,
  authorEarnings: memo(authorEarningsId),
  escrow: platformAccountId("session_escrow"),
  platformRevenue: platformAccountId("platform_revenue"),
  usageMeter: (agent_id, ledger) => meterOf(`${agent_id}|${ledger}`),
  usageSink: (ledger) => SINKS.get(ledger) ?? usageSinkId(ledger),
};

function blankAccount(id: bigint, ledger: number, code: number, flags: number, user_data_128 = 0n): Account {
  return newAccount({ id, ledger, code, flags, user_data_128 });
}

const MODE_TO_API: Record<BillingMode, ApiBillingMode> = {
  shadow: ApiBillingMode.SHADOW,
  soft: ApiBillingMode.SOFT,
  live: ApiBillingMode.LIVE,
};
const MODE_FROM_API: Partial<Record<ApiBillingMode, BillingMode>> = {
  [ApiBillingMode.SHADOW]: "shadow",
  [ApiBillingMode.SOFT]: "soft",
  [ApiBillingMode.LIVE]: "live",
};
const STATUS_TO_API = {
  open: ApiSessionStatus.OPEN,
  doffed: ApiSessionStatus.DOFFED,
  reaped: ApiSessionStatus.REAPED,
  cancelled: ApiSessionStatus.CANCELLED,
  expired: ApiSessionStatus.EXPIRED,
} as const;
const REASON_TO_API: Record<CloseReason, ApiCloseReason> = {
  doff: ApiCloseReason.DOFF,
  idle: ApiCloseReason.IDLE,
  max_length: ApiCloseReason.MAX_LENGTH,
};

/** google.protobuf.Timestamp as a literal message. */
function ts(ns: bigint): Timestamp {
  return { $typeName: "google.protobuf.Timestamp", seconds: ns / 1_000_000_000n, nanos: Number(ns % 1_000_000_000n) };
}

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

function sessionNotFound(sid: bigint) {
  return statusError(Code.NotFound, "SESSION_NOT_FOUND", `session ${idToHex(sid)} does not exist`, {
    session_id: idToHex(sid),
  });
}

function who(p: Principal): string {
  return `${p.kind} ${JSON.stringify(p.id)}`;
}

/** Options the tests and the bench may override. */
export interface SessionServiceOptions {
  /** Start the reaper timer (default true). */
  reaper?: boolean;
}

export class SessionEngine {
  readonly catalog: Catalog;
  readonly registry: PriceBookRegistry;
  readonly open = new Map<bigint, OpenSession>();
  private readonly ledger: Client;
  private readonly config: Config;
  private readonly log: Logger;
  private readonly clock: () => bigint;
  private readonly metersReady = new Set<string>();
  private readonly authorsReady = new Set<string>();
  private readonly debtReady = new Set<bigint>();
  readonly ready: Promise<void>;
  private reaper: Reaper | null = null;
  private readonly ids = sessionAccountIds;
  /** The embedded engine admits one process per data dir: this daemon sees every write. */
  private readonly singleWriter: boolean;

  constructor(ctx: DaemonContext, opts: SessionServiceOptions = {}) {
    this.ledger = ctx.ledger;
    this.config = ctx.config;
    this.log = ctx.log.child({ component: "sessions" });
    this.clock = ctx.clock;
    this.singleWriter = ctx.config.LEDGER === "embedded";
    // Catalog errors fail the daemon's start-up (thrown from createServices).
    this.catalog = loadCatalog(path.resolve(ctx.config.MASQUES_DIR));
    this.registry = new PriceBookRegistry(path.join(ctx.config.dataDir, "sessions"));
    this.registry.registerCatalog(this.catalog);
    this.ready = this.init().then(() => {
      if (opts.reaper !== false) this.reaper = startReaper(this, ctx.config.SESSION_REAPER_INTERVAL_MS, this.log);
    });
    // A failed init is reported on every call (and logged once here).
    this.ready.catch((err: unknown) => this.log.error({ err }, "session service start-up failed"));
  }

  get idle_ns(): bigint {
    return BigInt(this.config.SESSION_IDLE_S) * 1_000_000_000n;
  }
  get max_s(): number {
    return this.config.SESSION_MAX_S;
  }
  now(): bigint {
    return this.clock();
  }

  stop(): void {
    this.reaper?.stop();
  }

  // ---- start-up ---------------------------------------------------------------------------------

  private async init(): Promise<void> {
    const authors = new Set(this.registry.all().map((e) => e.author));
    if (authors.size > 0) await this.ensureAuthors([...authors]);
    await this.rebuildOpenSessions();
    this.log.info(
      { masques: this.catalog.list().length, price_books: this.registry.all().length, open_sessions: this.open.size },
      "session service ready",
    );
  }

  /** Every hold younger than the max session length without post/void is an open session. */
  private async rebuildOpenSessions(): Promise<void> {
    const now = this.now();
    let cursor = now - BigInt(this.max_s) * 1_000_000_000n - 60_000_000_000n;
    if (cursor < 1n) cursor = 1n;
    const holds: Transfer[] = [];
    for (;;) {
      const page = await this.ledger.queryTransfers({
        user_data_128: 0n,
        user_data_64: 0n,
        user_data_32: 0,
        ledger: Ledger.usd_micro,
        code: TransferCode.session_hold,
        timestamp_min: cursor,
        timestamp_max: 0n,
        limit: LEDGER_LIMIT,
        flags: QueryFilterFlags.none,
      });
      for (const t of page) if ((t.flags & TransferFlags.pending) !== 0) holds.push(t);
      if (page.length < LEDGER_LIMIT) break;
      cursor = page[page.length - 1]!.timestamp + 1n;
    }
    for (let i = 0; i < holds.length; i += 2000) {
      const chunk = holds.slice(i, i + 2000);
      const ends = await this.ledger.lookupTransfers(
        chunk.flatMap((h) => {
          const t = sessionTransferIds(h.user_data_128);
          return [t.post, t.void];
        }),
      );
      const closed = new Set(ends.map((t) => t.pending_id));
      const candidates = chunk.filter((h) => {
        if (closed.has(h.id)) return false;
        const deadline = h.timestamp + BigInt(h.timeout) * 1_000_000_000n;
        return !(h.timeout > 0 && deadline <= now); // expired while we were down
      });
      await Promise.all(
        candidates.map(async (h) => {
          const txs = await this.sessionTransfers(h.user_data_128);
          const v = reconstructSession(h.user_data_128, txs, now);
          if (!v || v.status !== "open") return;
          this.open.set(v.session_id, {
            session_id: v.session_id,
            wallet_id: v.agent_wallet_id,
            masque_index: v.masque_index,
            don_ns: v.don_ns,
            deadline_ns: v.deadline_ns,
            last_activity_ns: v.last_activity_ns,
            last_beat_written_ns: v.last_activity_ns,
            meters: txs.reduce((m, t) => (t.ledger !== Ledger.usd_micro ? m | (1 << t.ledger) : m), 0),
            hold: h,
          });
        }),
      );
    }
  }

  // ---- accounts the sessions create -------------------------------------------------------------

  private async createAccountsOk(accounts: Account[], what: string): Promise<void> {
    const res = await this.ledger.createAccounts(accounts);
    for (const [i, r] of res.entries()) {
      if (r.status !== CreateAccountStatus.created && r.status !== CreateAccountStatus.exists) {
        throw ledgerRejected(`create ${what} ${idToHex(accounts[i]!.id)}`, CreateAccountStatus[r.status] ?? String(r.status));
      }
    }
  }

  /** Usage meters of an agent (one per usage ledger); must exist before any usage transfer. */
  async ensureMeters(agent_id: string): Promise<void> {
    if (this.metersReady.has(agent_id)) return;
    const wallet = agentWalletId(agent_id);
    await this.createAccountsOk(
      Object.values(USAGE_LEDGER).map((l) =>
        blankAccount(usageMeterId(agent_id, l), l, AccountCode.usage_meter, AccountFlags.none, wallet),
      ),
      "usage meter",
    );
    this.metersReady.add(agent_id);
  }

  /** The soft-mode debt account of an agent (user_data_128 = wallet id, so it is found from the hold). */
  async ensureDebt(agent_id: string): Promise<void> {
    const wallet = agentWalletId(agent_id);
    if (this.debtReady.has(wallet)) return;
    await this.createAccountsOk(
      [blankAccount(agentDebtId(agent_id), Ledger.usd_micro, AccountCode.agent_debt, AccountFlags.history, wallet)],
      "agent debt account",
    );
    this.debtReady.add(wallet);
  }

  async ensureAuthors(authors: string[]): Promise<void> {
    const missing = authors.filter((a) => !this.authorsReady.has(a));
    if (missing.length === 0) return;
    await this.createAccountsOk(missing.map(authorEarningsAccount), "author earnings");
    for (const a of missing) this.authorsReady.add(a);
  }

  /** The debt account of the agent owning `wallet` (looked up by user_data_128 when the agent id is unknown). */
  private async debtAccountOf(wallet: bigint): Promise<bigint | null> {
    const found = await this.ledger.queryAccounts({
      user_data_128: wallet,
      user_data_64: 0n,
      user_data_32: 0,
      ledger: Ledger.usd_micro,
      code: AccountCode.agent_debt,
      timestamp_min: 0n,
      timestamp_max: 0n,
      limit: 1,
      flags: QueryFilterFlags.none,
    });
    return found[0]?.id ?? null;
  }

  // ---- reads ------------------------------------------------------------------------------------

  /**
   * Every transfer of a session: its money transfers by their deterministic ids (one lookup),
   * and its usage / heartbeats from the agent's three usage meters, between the hold and the
   * settlement (account-indexed reads bounded in time; no scan of the whole ledger).
   */
  async sessionTransfers(sid: bigint): Promise<Transfer[]> {
    // Single writer (embedded ledger) and a session this daemon indexes as open: its hold is
    // known and it has no post/void (this daemon would have removed it from the index), so only
    // the usage meters it touched are read. A settlement racing this read is caught by the
    // ledger (the chain's ids already exist) and answered from a fresh read.
    if (this.singleWriter) {
      const o = this.open.get(sid);
      if (o?.hold) {
        const hold = o.hold;
        if (o.meters === 0) return [hold]; // no usage recorded: nothing to read
        const usage = await Promise.all(
          Object.values(USAGE_LEDGER)
            .filter((l) => (o.meters & (1 << l)) !== 0)
            .map((l) => this.meterTransfers(usageMeterOfWallet(hold.debit_account_id, l), sid, hold.timestamp, 0n)),
        );
        return [hold, ...usage.flat()];
      }
    }
    const ids = sessionTransferIds(sid);
    const money = await this.ledger.lookupTransfers([ids.hold, ids.post, ids.void]);
    const hold = money.find((t) => t.id === ids.hold);
    if (!hold) return money;
    if (money.some((t) => t.id === ids.post)) money.push(...(await this.ledger.lookupTransfers([ids.author, ids.platform, ids.debt])));
    let end = 0n;
    for (const t of money) if ((t.id === ids.post || t.id === ids.void) && t.timestamp > end) end = t.timestamp;
    // With the embedded ledger this daemon is the only writer, so for a session it indexes as open
    // it knows which usage meters carry the session's transfers and skips reading the others
    // (a Doff without usage reads no meter at all). With a TigerBeetle cluster several daemons
    // may write, so every meter is read.
    const o = this.singleWriter && end === 0n ? this.open.get(sid) : undefined;
    const meters = o ? o.meters : ALL_METERS;
    const usage = await Promise.all(
      Object.values(USAGE_LEDGER)
        .filter((l) => (meters & (1 << l)) !== 0)
        .map((l) => this.meterTransfers(usageMeterOfWallet(hold.debit_account_id, l), sid, hold.timestamp, end)),
    );
    return [...money, ...usage.flat()];
  }

  private async meterTransfers(meter: bigint, sid: bigint, from_ns: bigint, to_ns: bigint): Promise<Transfer[]> {
    const out: Transfer[] = [];
    let cursor = from_ns;
    for (;;) {
      const page = await this.ledger.getAccountTransfers({
        account_id: meter,
        user_data_128: sid,
        user_data_64: 0n,
        user_data_32: 0,
        code: 0,
        timestamp_min: cursor,
        timestamp_max: to_ns,
        limit: LEDGER_LIMIT,
        flags: AccountFilterFlags.debits,
      });
      out.push(...page);
      if (page.length < LEDGER_LIMIT) return out;
      cursor = page[page.length - 1]!.timestamp + 1n;
    }
  }

  async view(sid: bigint): Promise<SessionView | null> {
    return reconstructSession(sid, await this.sessionTransfers(sid), this.now());
  }

  priceBook(v: SessionView): PriceBookEntry {
    const e = this.registry.get(v.price_version);
    if (!e) {
      throw statusError(Code.Internal, "PRICE_BOOK_MISSING", `price book ${v.price_version} of session ${idToHex(v.session_id)} is not in the registry`);
    }
    return e;
  }

  /** API view: amounts from the ledger, the price recomputed with the pinned price book. */
  toProto(v: SessionView): Session {
    const e = this.registry.get(v.price_version);
    let price = 0n;
    if (e && v.status !== "cancelled") {
      const duration =
        v.status === "open" ? billedDurationMs(v.don_ns, this.now(), this.max_s) : v.billed_duration_ms;
      price = accrue(e.pricing, v.usage, duration).price_micro;
    }
    const charged = v.posted_micro + v.debt_micro;
    const settled = v.status === "doffed" || v.status === "reaped";
    // A literal message (protobuf-es v2 messages are plain objects): create() fills defaults by
    // reflection, which was a visible share of Don's CPU; every field is set here.
    const session: Session = {
      $typeName: "masques.ledger.v1.Session",
      sessionId: idToHex(v.session_id),
      agentWalletId: idToHex(v.agent_wallet_id),
      masqueName: e?.masque_name ?? "",
      masqueIndex: BigInt(v.masque_index),
      author: e?.author ?? "",
      priceVersion: v.price_version,
      billingMode: MODE_TO_API[v.mode],
      status: STATUS_TO_API[v.status],
      closeReason: v.close_reason ? REASON_TO_API[v.close_reason] : ApiCloseReason.UNSPECIFIED,
      holdMicro: v.hold_micro,
      donTime: ts(v.don_ns),
      deadlineTime: ts(v.deadline_ns),
      endTime: v.end_ns === null ? undefined : ts(v.end_ns),
      lastActivityTime: ts(v.last_activity_ns),
      usage: {
        $typeName: "masques.ledger.v1.Usage",
        inputTokens: v.usage.input_tokens,
        outputTokens: v.usage.output_tokens,
        toolCalls: v.usage.tool_calls,
      },
      usageEvents: BigInt(v.usage_events),
      billedDurationMs: v.status === "open" ? billedDurationMs(v.don_ns, this.now(), this.max_s) : v.billed_duration_ms,
      priceMicro: price,
      chargedMicro: charged,
      postedMicro: v.posted_micro,
      debtMicro: v.debt_micro,
      refundMicro: settled || v.status === "cancelled" || v.status === "expired" ? v.hold_micro - v.posted_micro : 0n,
      unbilledMicro: settled || v.status === "expired" ? (price > charged ? price - charged : 0n) : 0n,
      authorShareMicro: v.author_micro,
      platformFeeMicro: v.platform_micro,
      platformFeeBps: v.fee_bps,
    };
    return session;
  }

  // ---- authorization ------------------------------------------------------------------------------

  /** Agents act only on their own sessions; admins on any. */
  authorizeAct(p: Principal, v: SessionView, action: string): void {
    if (isAdmin(p)) return;
    requireScope(p, ["ledger:write"], action);
    if (p.kind !== "agent" || walletOf(p.id) !== v.agent_wallet_id) {
      throw permissionDenied(`${who(p)} may not ${action} session ${idToHex(v.session_id)}: not its own`, {
        principal_kind: p.kind,
        session_id: idToHex(v.session_id),
      });
    }
  }

  /** Agents read their own sessions, authors the sessions of their masques, admins any. */
  authorizeRead(p: Principal, v: SessionView): void {
    if (isAdmin(p)) return;
    requireScope(p, ["ledger:read", "ledger:write"], "read sessions");
    const ok =
      (p.kind === "agent" && walletOf(p.id) === v.agent_wallet_id) ||
      (p.kind === "author" && this.registry.get(v.price_version)?.author === p.id);
    if (!ok) {
      throw permissionDenied(`${who(p)} may not read session ${idToHex(v.session_id)}`, {
        principal_kind: p.kind,
        session_id: idToHex(v.session_id),
      });
    }
  }

  // ---- Don ----------------------------------------------------------------------------------------

  async don(
    p: Principal,
    req: { session_id: string; masque: string; agent_id: string; max_spend_micro: bigint; billing_mode: ApiBillingMode },
  ): Promise<{ session: Session; created: boolean }> {
    const v: Violation[] = [];
    let agent_id = req.agent_id;
    if (isAdmin(p)) {
      if (!agent_id) v.push({ field: "agent_id", description: "required when an admin dons for an agent" });
    } else {
      requireScope(p, ["ledger:write"], "don a masque");
      if (p.kind !== "agent") throw permissionDenied(`${who(p)} may not don a masque: agents only`, { principal_kind: p.kind });
      if (agent_id && agent_id !== p.id) {
        throw permissionDenied(`agent ${JSON.stringify(p.id)} may not don a masque for agent ${JSON.stringify(agent_id)}`, {
          principal_kind: p.kind,
        });
      }
      agent_id = p.id;
      if (req.billing_mode !== ApiBillingMode.UNSPECIFIED) {
        throw permissionDenied(`${who(p)} may not override the billing mode: admin only`, { principal_kind: p.kind });
      }
    }
    if (agent_id && !OWNER_ID_RE.test(agent_id)) v.push({ field: "agent_id", description: OWNER_ID_RULE });
    const sid = req.session_id === "" ? BigInt(`0x${randomBytes(16).toString("hex")}`) | 1n : parseSid(req.session_id, "session_id", v);
    if (req.max_spend_micro > AMOUNT_MAX_MICRO) v.push({ field: "max_spend_micro", description: "must be <= 2^63-1" });
    if (!req.masque) v.push({ field: "masque", description: "required: the masque's name" });
    throwIfInvalid(v);
    const masque = this.catalog.byName.get(req.masque);
    if (!masque) {
      throw statusError(Code.NotFound, "MASQUE_NOT_FOUND", `masque ${JSON.stringify(req.masque)} is not in the catalog`, {
        masque: req.masque,
      });
    }
    const mode: BillingMode = MODE_FROM_API[req.billing_mode] ?? this.config.BILLING_MODE;
    const hold_micro = mode === "shadow" ? 0n : reservationMicro(masque.pricing, req.max_spend_micro);
    await this.ready;
    if (!this.metersReady.has(agent_id)) await this.ensureMeters(agent_id);
    if (mode === "soft") await this.ensureDebt(agent_id);
    const t = planDon(this.ids, {
      session_id: sid,
      agent_id,
      masque_index: masque.index,
      price_version: masque.price_version,
      mode,
      hold_micro,
      timeout_s: this.max_s,
    });
    const [r] = await this.ledger.createTransfers([t]);
    if (!r) throw ledgerRejected("don", "no result");
    if (r.status === CT.created) {
      const now = r.timestamp;
      t.timestamp = now; // the hold as the ledger stored it (t is ours: planDon built it for this call)
      this.open.set(sid, {
        session_id: sid,
        wallet_id: t.debit_account_id,
        masque_index: masque.index,
        don_ns: now,
        deadline_ns: now + BigInt(t.timeout) * 1_000_000_000n,
        last_activity_ns: now,
        last_beat_written_ns: now,
        meters: 0,
        hold: t,
      });
      const view = reconstructSession(sid, [t], now);
      return { session: this.toProto(view!), created: true };
    }
    const name = CT[r.status] ?? String(r.status);
    if (r.status === CT.exists || name.startsWith("exists_with_different")) {
      const existing = await this.view(sid);
      if (existing && existing.agent_wallet_id === t.debit_account_id && existing.masque_index === masque.index) {
        return { session: this.toProto(existing), created: false };
      }
      throw statusError(
        Code.AlreadyExists,
        "SESSION_ID_REUSED",
        `session id ${idToHex(sid)} already names another session (different agent or masque); choose a new session id`,
        { session_id: idToHex(sid) },
      );
    }
    if (r.status === CT.exceeds_credits) {
      const [acct] = await this.ledger.lookupAccounts([t.debit_account_id]);
      throw insufficientFunds(idToHex(t.debit_account_id), acct ? availableMicro(acct) : 0n, hold_micro);
    }
    if (r.status === CT.debit_account_not_found) throw accountNotFound(idToHex(t.debit_account_id));
    if (r.status === CT.id_already_failed) {
      throw failedPrecondition(
        "SESSION_ID_ALREADY_FAILED",
        `session id ${idToHex(sid)} was refused earlier (e.g. insufficient funds); the ledger never reuses a refused id: don again with a new session id`,
        { session_id: idToHex(sid) },
      );
    }
    if (r.status === CT.debit_account_already_closed) {
      throw failedPrecondition("ACCOUNT_CLOSED", `agent wallet ${idToHex(t.debit_account_id)} is closed`, {
        account_id: idToHex(t.debit_account_id),
      });
    }
    throw ledgerRejected("don", name);
  }

  // ---- Doff / reaper --------------------------------------------------------------------------------

  /**
   * Settle an open session: price it with its pinned price book and submit the Doff chain.
   * `end_ns` is the end of billed time (now for a Doff; the last activity for an idle reap).
   * Returns the settled view (the recorded one if someone settled it first).
   */
  async settle(v: SessionView, reason: CloseReason, end_ns: bigint, agent_id: string | null): Promise<SessionView> {
    const e = this.priceBook(v);
    const fee_bps = this.config.PLATFORM_FEE_BPS;
    const billed = billedDurationMs(v.don_ns, end_ns, this.max_s);
    const settlement = priceSession(e.pricing, v.mode, v.hold_micro, v.usage, billed, fee_bps);
    if (!this.authorsReady.has(e.author)) await this.ensureAuthors([e.author]);
    const ids: SessionAccountIds = { ...this.ids };
    if (settlement.debt_micro > 0n) {
      if (agent_id !== null) {
        await this.ensureDebt(agent_id);
      } else {
        const debt = await this.debtAccountOf(v.agent_wallet_id);
        if (debt === null) throw ledgerRejected("doff", "agent debt account missing for a soft-mode session");
        ids.agentDebt = () => debt;
      }
    }
    const chain = planDoff(ids, {
      session_id: v.session_id,
      agent_id: agent_id ?? "",
      author_id: e.author,
      masque_index: v.masque_index,
      settlement,
      billed_duration_ms: billed,
      fee_bps,
      reason,
    });
    const res = await this.ledger.createTransfers(chain);
    this.open.delete(v.session_id);
    if (res.length === chain.length && res.every((r) => r.status === CT.created)) {
      const stamped = chain.map((t, i) => ({ ...t, timestamp: res[i]!.timestamp }));
      const now = res[res.length - 1]!.timestamp;
      const txs = await this.sessionTransfersCached(v, stamped);
      return reconstructSession(v.session_id, txs, now)!;
    }
    const first = res.find((r) => r.status !== CT.linked_event_failed);
    const status = first?.status ?? CT.linked_event_failed;
    if (
      status === CT.exists ||
      status === CT.pending_transfer_already_posted ||
      status === CT.pending_transfer_already_voided ||
      status === CT.pending_transfer_expired ||
      (CT[status] ?? "").startsWith("exists_with_different")
    ) {
      // Settled (or cancelled / expired) concurrently: the ledger's record wins.
      const now = await this.view(v.session_id);
      if (now) return now;
    }
    throw ledgerRejected("doff", CT[status] ?? String(status));
  }

  /** The transfers already read plus the ones just created (saves a read after a Doff). */
  private async sessionTransfersCached(v: SessionView & { _txs?: Transfer[] }, extra: Transfer[]): Promise<Transfer[]> {
    return [...(v._txs ?? (await this.sessionTransfers(v.session_id))), ...extra];
  }

  private async readForAction(p: Principal, sid: bigint, action: string): Promise<SessionView & { _txs: Transfer[] }> {
    await this.ready;
    const txs = await this.sessionTransfers(sid);
    const v = reconstructSession(sid, txs, this.now());
    if (!v) throw sessionNotFound(sid);
    this.authorizeAct(p, v, action);
    return { ...v, _txs: txs };
  }

  async doff(p: Principal, session_id: string): Promise<Session> {
    const v: Violation[] = [];
    const sid = parseSid(session_id, "session_id", v);
    throwIfInvalid(v);
    const s = await this.readForAction(p, sid, "doff");
    if (s.status === "doffed" || s.status === "reaped") return this.toProto(s);
    this.notOpen(s, "doff");
    const settled = await this.settle(s, "doff", this.now(), p.kind === "agent" ? p.id : null);
    if (settled.status === "doffed" || settled.status === "reaped") return this.toProto(settled);
    this.notOpen(settled, "doff");
    throw ledgerRejected("doff", settled.status);
  }

  private notOpen(s: SessionView, action: string): void {
    if (s.status === "cancelled") {
      this.open.delete(s.session_id);
      throw failedPrecondition("SESSION_CANCELLED", `cannot ${action} session ${idToHex(s.session_id)}: it was cancelled`, {
        session_id: idToHex(s.session_id),
      });
    }
    if (s.status === "expired") {
      this.open.delete(s.session_id);
      throw failedPrecondition(
        "SESSION_EXPIRED",
        `cannot ${action} session ${idToHex(s.session_id)}: the ledger voided its hold at the maximum session length; nothing was charged`,
        { session_id: idToHex(s.session_id) },
      );
    }
    if (s.status === "doffed" || s.status === "reaped") {
      throw failedPrecondition("SESSION_SETTLED", `cannot ${action} session ${idToHex(s.session_id)}: it is already settled`, {
        session_id: idToHex(s.session_id),
      });
    }
  }

  async cancel(p: Principal, session_id: string): Promise<Session> {
    const v: Violation[] = [];
    const sid = parseSid(session_id, "session_id", v);
    throwIfInvalid(v);
    const s = await this.readForAction(p, sid, "cancel");
    if (s.status === "cancelled") return this.toProto(s);
    this.notOpen(s, "cancel");
    const t = planCancel(sid);
    const [r] = await this.ledger.createTransfers([t]);
    this.open.delete(sid);
    if (r && r.status === CT.created) {
      return this.toProto(reconstructSession(sid, [...s._txs, { ...t, timestamp: r.timestamp }], r.timestamp)!);
    }
    const after = await this.view(sid);
    if (after?.status === "cancelled") return this.toProto(after);
    if (after) this.notOpen(after, "cancel");
    throw ledgerRejected("cancel", r ? (CT[r.status] ?? String(r.status)) : "no result");
  }

  // ---- usage and heartbeat --------------------------------------------------------------------------

  /** Resolve sessions for usage/heartbeat: open index first, the ledger for the rest. */
  private async openSessions(sids: bigint[]): Promise<Map<bigint, OpenSession | SessionView | null>> {
    const out = new Map<bigint, OpenSession | SessionView | null>();
    const unknown: bigint[] = [];
    for (const sid of sids) {
      const o = this.open.get(sid);
      if (o) out.set(sid, o);
      else unknown.push(sid);
    }
    const views = await Promise.all(unknown.map((sid) => this.view(sid)));
    unknown.forEach((sid, i) => out.set(sid, views[i] ?? null));
    return out;
  }

  async recordUsage(p: Principal, events: readonly UsageEvent[]) {
    await this.ready;
    if (!isAdmin(p)) {
      requireScope(p, ["ledger:write"], "record usage");
      if (p.kind !== "agent") throw permissionDenied(`${who(p)} may not record usage: agents only`, { principal_kind: p.kind });
    }
    if (events.length === 0 || events.length > MAX_USAGE_EVENTS) {
      throw invalidArgument([{ field: "events", description: `must hold 1 to ${MAX_USAGE_EVENTS} events` }]);
    }
    const results: { outcome: UsageOutcome; reason: string }[] = events.map(() => ({ outcome: UsageOutcome.UNSPECIFIED, reason: "" }));
    const sidCache = new Map<string, bigint | null>();
    const parsed: (bigint | null)[] = events.map((e, i) => {
      let sid = sidCache.get(e.sessionId);
      if (sid === undefined) {
        try {
          sid = parseSessionId(e.sessionId);
        } catch {
          sid = null;
        }
        sidCache.set(e.sessionId, sid);
      }
      if (sid === null || e.seq < 1n || e.inputTokens > AMOUNT_MAX_MICRO || e.outputTokens > AMOUNT_MAX_MICRO || e.toolCalls > AMOUNT_MAX_MICRO) {
        results[i] = { outcome: UsageOutcome.REJECTED, reason: "INVALID_ARGUMENT" };
        return null;
      }
      return sid;
    });
    const sessions = await this.openSessions([...new Set(parsed.filter((s): s is bigint => s !== null))]);
    const now = this.now();
    const chains: { i: number; chain: Transfer[] }[] = [];
    const agents = new Set<string>();
    for (const [i, e] of events.entries()) {
      const sid = parsed[i];
      if (sid === null || sid === undefined) continue;
      const s = sessions.get(sid) ?? null;
      if (s === null) {
        results[i] = { outcome: UsageOutcome.REJECTED, reason: "SESSION_NOT_FOUND" };
        continue;
      }
      const wallet = "wallet_id" in s ? s.wallet_id : s.agent_wallet_id;
      const agent_id = p.kind === "agent" ? p.id : null;
      if (agent_id === null || walletOf(agent_id) !== wallet) {
        // Admins cannot know the agent id behind a wallet, and nobody records usage for another agent.
        results[i] = { outcome: UsageOutcome.REJECTED, reason: "PERMISSION_DENIED" };
        continue;
      }
      const open = "wallet_id" in s ? s.deadline_ns > now : s.status === "open";
      if (!open) {
        results[i] = { outcome: UsageOutcome.REJECTED, reason: "SESSION_NOT_OPEN" };
        continue;
      }
      agents.add(agent_id);
      chains.push({
        i,
        chain: planUsage(this.ids, {
          session_id: sid,
          agent_id,
          seq: e.seq,
          input_tokens: e.inputTokens,
          output_tokens: e.outputTokens,
          tool_calls: e.toolCalls,
        }),
      });
    }
    for (const a of agents) await this.ensureMeters(a);
    if (chains.length > 0) {
      const flat = chains.flatMap((c) => c.chain);
      const res: { timestamp: bigint; status: CreateTransferStatus }[] = [];
      for (let k = 0; k < flat.length; k += LEDGER_LIMIT) {
        // chains are at most 3 long and never straddle a request (MAX_USAGE_EVENTS * 3 < 8189)
        res.push(...(await this.ledger.createTransfers(flat.slice(k, k + LEDGER_LIMIT))));
      }
      let o = 0;
      for (const c of chains) {
        const rs = res.slice(o, o + c.chain.length);
        o += c.chain.length;
        const first = rs.find((r) => r.status !== CT.linked_event_failed);
        if (!first || first.status === CT.created) {
          results[c.i] = { outcome: UsageOutcome.APPLIED, reason: "" };
          const s = this.open.get(c.chain[0]!.user_data_128);
          const ts = rs[rs.length - 1]?.timestamp ?? now;
          if (s) {
            if (ts > s.last_activity_ns) s.last_activity_ns = ts;
            for (const t of c.chain) s.meters |= 1 << t.ledger;
          }
        } else if (first.status === CT.exists) {
          results[c.i] = { outcome: UsageOutcome.DUPLICATE, reason: "" };
        } else if ((CT[first.status] ?? "").startsWith("exists_with_different")) {
          results[c.i] = { outcome: UsageOutcome.REJECTED, reason: "SEQ_REUSED" };
        } else {
          results[c.i] = { outcome: UsageOutcome.REJECTED, reason: `LEDGER_REJECTED:${CT[first.status] ?? first.status}` };
        }
      }
    }
    const count = (o: UsageOutcome) => results.filter((r) => r.outcome === o).length;
    return {
      results: results.map((r) =>
        r.outcome === UsageOutcome.APPLIED ? APPLIED_RESULT : r.outcome === UsageOutcome.DUPLICATE ? DUPLICATE_RESULT : create(UsageResultSchema, r),
      ),
      applied: count(UsageOutcome.APPLIED),
      duplicates: count(UsageOutcome.DUPLICATE),
      rejected: count(UsageOutcome.REJECTED),
    };
  }

  async heartbeat(p: Principal, session_id: string) {
    const v: Violation[] = [];
    const sid = parseSid(session_id, "session_id", v);
    throwIfInvalid(v);
    await this.ready;
    const s = (await this.openSessions([sid])).get(sid) ?? null;
    if (s === null) throw sessionNotFound(sid);
    const wallet = "wallet_id" in s ? s.wallet_id : s.agent_wallet_id;
    if (!isAdmin(p)) {
      requireScope(p, ["ledger:write"], "heartbeat");
      if (p.kind !== "agent" || walletOf(p.id) !== wallet) {
        throw permissionDenied(`${who(p)} may not heartbeat session ${idToHex(sid)}: not its own`, { principal_kind: p.kind });
      }
    }
    const now = this.now();
    if (!("wallet_id" in s)) {
      // Not in the open index: settled, cancelled or expired (a heartbeat changes nothing).
      if (s.status !== "open") return { status: STATUS_TO_API[s.status], idleDeadlineTime: undefined };
      // Open in the ledger but unknown here (another daemon's Don): index it.
      this.open.set(sid, {
        session_id: sid,
        wallet_id: s.agent_wallet_id,
        masque_index: s.masque_index,
        don_ns: s.don_ns,
        deadline_ns: s.deadline_ns,
        last_activity_ns: s.last_activity_ns,
        last_beat_written_ns: s.last_activity_ns,
        meters: ALL_METERS,
      });
    }
    const o = this.open.get(sid)!;
    if (now >= o.deadline_ns) {
      this.open.delete(sid);
      return { status: ApiSessionStatus.EXPIRED, idleDeadlineTime: undefined };
    }
    o.last_activity_ns = now;
    // Throttled ledger write: liveness survives a restart to within SESSION_IDLE_S / 10.
    if (p.kind === "agent" && now - o.last_beat_written_ns >= this.idle_ns / 10n) {
      await this.ensureMeters(p.id);
      const [r] = await this.ledger.createTransfers([planHeartbeat(this.ids, sid, p.id, now)]);
      if (r && (r.status === CT.created || r.status === CT.exists)) {
        o.last_beat_written_ns = now;
        o.meters |= 1 << Ledger.usage_tool_calls;
      }
    }
    return { status: ApiSessionStatus.OPEN, idleDeadlineTime: timestampFromNs(now + this.idle_ns) };
  }

  // ---- reads ---------------------------------------------------------------------------------------

  async get(p: Principal, session_id: string): Promise<Session> {
    const v: Violation[] = [];
    const sid = parseSid(session_id, "session_id", v);
    throwIfInvalid(v);
    await this.ready;
    const s = await this.view(sid);
    if (!s) {
      if (!isAdmin(p)) requireScope(p, ["ledger:read", "ledger:write"], "read sessions");
      throw sessionNotFound(sid);
    }
    this.authorizeRead(p, s);
    return this.toProto(s);
  }

  async list(
    p: Principal,
    req: { owner: { case: "agentId" | "masque" | "author" | undefined; value?: string }; statuses: ApiSessionStatus[]; pageSize: number; pageToken: string },
  ): Promise<{ sessions: Session[]; nextPageToken: string }> {
    await this.ready;
    const v: Violation[] = [];
    if (req.pageSize > LIST_MAX) v.push({ field: "page_size", description: `must be <= ${LIST_MAX}` });
    const size = req.pageSize === 0 ? LIST_DEFAULT : Math.min(req.pageSize, LIST_MAX);
    let ownerCase = req.owner.case;
    let ownerValue = req.owner.value ?? "";
    if (!isAdmin(p)) {
      requireScope(p, ["ledger:read", "ledger:write"], "list sessions");
      if (p.kind === "agent") {
        if (ownerCase === undefined) [ownerCase, ownerValue] = ["agentId", p.id];
        if (ownerCase !== "agentId" || ownerValue !== p.id) {
          throw permissionDenied(`${who(p)} may list only its own sessions`, { principal_kind: p.kind });
        }
      } else if (p.kind === "author") {
        if (ownerCase === undefined) [ownerCase, ownerValue] = ["author", p.id];
        const ownMasque = ownerCase === "masque" && this.catalog.byName.get(ownerValue)?.author === p.id;
        if (!(ownerCase === "author" && ownerValue === p.id) && !ownMasque) {
          throw permissionDenied(`${who(p)} may list only sessions of its own masques`, { principal_kind: p.kind });
        }
      } else {
        throw permissionDenied(`${who(p)} may not list sessions`, { principal_kind: p.kind });
      }
    }
    const statuses = new Set(req.statuses.filter((s) => s !== ApiSessionStatus.UNSPECIFIED));
    const query = ["sessions", ownerCase ?? "all", ownerValue, [...statuses].sort()];
    let before = decodePageToken(req.pageToken, query, v);
    let masqueIndexes: number[] = [];
    if (ownerCase === "masque") {
      const m = this.catalog.byName.get(ownerValue) ?? this.registry.all().find((e) => e.masque_name === ownerValue);
      if (!m) throw statusError(Code.NotFound, "MASQUE_NOT_FOUND", `masque ${JSON.stringify(ownerValue)} is not known`, { masque: ownerValue });
      masqueIndexes = ["index" in m ? m.index : m.masque_index];
    } else if (ownerCase === "author") {
      masqueIndexes = [...new Set([...this.registry.indexesOfAuthor(ownerValue), ...this.catalog.indexesOfAuthor(ownerValue)])];
    } else if (ownerCase === "agentId" && !OWNER_ID_RE.test(ownerValue)) {
      v.push({ field: "agent_id", description: OWNER_ID_RULE });
    }
    throwIfInvalid(v);
    const payee = ownerCase === "author" ? ownerValue : !isAdmin(p) && p.kind === "author" ? p.id : null;

    const fetchHolds = async (beforeNs: bigint, limit: number): Promise<Transfer[]> => {
      const tmax = beforeNs === 0n ? 0n : beforeNs - 1n;
      if (ownerCase === "agentId") {
        return this.ledger.getAccountTransfers({
          account_id: agentWalletId(ownerValue),
          user_data_128: 0n,
          user_data_64: 0n,
          user_data_32: 0,
          code: TransferCode.session_hold,
          timestamp_min: 0n,
          timestamp_max: tmax,
          limit,
          flags: AccountFilterFlags.debits | AccountFilterFlags.reversed,
        });
      }
      const filters = ownerCase === undefined ? [0] : masqueIndexes;
      const all: Transfer[] = [];
      for (const idx of filters) {
        all.push(
          ...(await this.ledger.queryTransfers({
            user_data_128: 0n,
            user_data_64: BigInt(idx),
            user_data_32: 0,
            ledger: Ledger.usd_micro,
            code: TransferCode.session_hold,
            timestamp_min: 0n,
            timestamp_max: tmax,
            limit,
            flags: QueryFilterFlags.reversed,
          })),
        );
      }
      all.sort((a, b) => (a.timestamp < b.timestamp ? 1 : a.timestamp > b.timestamp ? -1 : 0));
      return all.slice(0, limit);
    };

    const out: Session[] = [];
    let next = "";
    const batch = Math.min(LEDGER_LIMIT, size * 4);
    const noHolds = ownerCase === "author" && masqueIndexes.length === 0;
    for (let scans = 0; !noHolds; scans++) {
      if (scans === 50) {
        next = encodePageToken(before, query); // scan budget spent: the caller continues from here
        break;
      }
      const raw = await fetchHolds(before, batch);
      let full = false;
      for (const t of raw) {
        before = t.timestamp;
        if ((t.flags & TransferFlags.pending) === 0) continue; // posts and voids of holds share the code
        const s = reconstructSession(t.user_data_128, await this.sessionTransfers(t.user_data_128), this.now());
        if (!s) continue;
        if (statuses.size > 0 && !statuses.has(STATUS_TO_API[s.status])) continue;
        // A masque index may change authors between price books: an author sees only the
        // sessions whose pinned price book pays them.
        if (payee !== null && this.registry.get(s.price_version)?.author !== payee) continue;
        out.push(this.toProto(s));
        if (out.length === size) {
          full = true;
          break;
        }
      }
      if (full) {
        next = encodePageToken(before, query);
        break;
      }
      if (raw.length < batch) break;
    }
    return { sessions: out, nextPageToken: next };
  }

  listMasques(p: Principal, pageSize: number, pageToken: string) {
    requireScope(p, ["ledger:read", "ledger:write"], "list masques");
    const size = pageSize === 0 ? 100 : Math.min(pageSize, 1000);
    const start = pageToken === "" ? 0 : Number.parseInt(Buffer.from(pageToken, "base64url").toString("utf8"), 10);
    if (!Number.isSafeInteger(start) || start < 0) {
      throw invalidArgument([{ field: "page_token", description: "must be a next_page_token returned by ListMasques" }]);
    }
    const all = this.catalog.list();
    const page = all.filter((m) => m.index > start).slice(0, size);
    const last = page[page.length - 1];
    return {
      masques: page.map((m) =>
        create(MasqueSchema, {
          name: m.name,
          index: BigInt(m.index),
          version: m.version,
          author: m.author,
          pricing: create(PricingSchema, {
            flatPerSessionMicro: m.pricing.flat_per_session_micro,
            perMinuteUsd: formatPicoAsUsd(m.pricing.per_minute_pico),
            per1kInputTokensUsd: formatPicoAsUsd(m.pricing.per_1k_input_tokens_pico),
            per1kOutputTokensUsd: formatPicoAsUsd(m.pricing.per_1k_output_tokens_pico),
            perToolCallUsd: formatPicoAsUsd(m.pricing.per_tool_call_pico),
            capPerSessionMicro: m.pricing.cap_per_session_micro ?? 0n,
            hasCap: m.pricing.cap_per_session_micro !== null,
            reserveMicro: m.pricing.reserve_micro,
            priceVersion: m.price_version,
          }),
        }),
      ),
      nextPageToken: last && all.some((m) => m.index > last.index) ? Buffer.from(String(last.index)).toString("base64url") : "",
    };
  }
}

/** The SessionService handlers (registered in src/services/index.ts). */
export function createSessionService(ctx: DaemonContext, opts: SessionServiceOptions = {}): ServiceImpl<typeof SessionService> & {
  engine: SessionEngine;
} {
  const engine = new SessionEngine(ctx, opts);
  const P = (c: HandlerContext) => principalOf(c);
  return {
    engine,
    async don(req, c) {
      return engine.don(P(c), {
        session_id: req.sessionId,
        masque: req.masque,
        agent_id: req.agentId,
        max_spend_micro: req.maxSpendMicro,
        billing_mode: req.billingMode,
      });
    },
    async recordUsage(req, c) {
      return engine.recordUsage(P(c), req.events);
    },
    async heartbeat(req, c) {
      return engine.heartbeat(P(c), req.sessionId);
    },
    async doff(req, c) {
      return { session: await engine.doff(P(c), req.sessionId) };
    },
    async cancel(req, c) {
      return { session: await engine.cancel(P(c), req.sessionId) };
    },
    async getSession(req, c) {
      return { session: await engine.get(P(c), req.sessionId) };
    },
    async listSessions(req, c) {
      return engine.list(P(c), {
        owner: req.owner.case === undefined ? { case: undefined } : { case: req.owner.case, value: req.owner.value },
        statuses: req.statuses,
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
    },
    async listMasques(req, c) {
      return engine.listMasques(P(c), req.pageSize, req.pageToken);
    },
  };
}

/** One registration for src/services/index.ts. */
export function sessionServiceRegistration(ctx: DaemonContext): ServiceRegistration {
  const impl = createSessionService(ctx);
  return defineService(SessionService, impl);
}
