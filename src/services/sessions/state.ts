/**
 * The state the SessionService keeps between calls, and nothing else. The ledger is the only
 * record of a session; everything here is a cache rebuilt from it at start-up
 * (src/services/sessions/startup.ts):
 * - `open`: the sessions this daemon knows to be open (for the reaper, and to validate usage
 *   without a read). Several daemons may share one TigerBeetle cluster, so nothing that decides
 *   money rests on it: the ledger refuses what the index got wrong (ADR 0032, 0036).
 * - which accounts the sessions need (author earnings, agent debt, usage meters) are known to
 *   exist, so hot paths skip creating them again;
 * - the masque catalog (this daemon's MASQUES_DIR) and the price-book store: every version any
 *   daemon registered, in the control-plane database (ADR 0071), with a content-addressed cache
 *   that is never stale, so a Don or Doff pays no database round trip for a known version.
 */
import { createLimits, type Limits } from "../limits/limits.js";
import path from "node:path";
import type { Logger } from "pino";
import type { Client, Transfer } from "tigerbeetle-node";
import type { Config } from "../../config.js";
import type { GovernanceStore, SessionPin } from "../../controlplane/governance.js";
import type { PriceBookStore } from "../../controlplane/pricebooks.js";
import type { WebhookStore } from "../../controlplane/webhooks.js";
import type { Catalog } from "../../domain/catalog.js";
import { createLiveCatalog, type LiveCatalog } from "../catalog/live.js";
import { otlpStore, type OtlpStore } from "../../controlplane/otlp.js";
import { sessionAccountIds } from "../../domain/session-accounts.js";
import { USAGE_LEDGER, type SessionAccountIds, type SessionView } from "../../domain/sessions.js";
import type { DaemonContext } from "../../server/registry.js";
import { governanceOf } from "../governance.js";

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
  /** Bit (1 << ledger) per usage ledger this session has transfers on. */
  meters: number;
  /** The hold as the ledger stored it (when known), so a single-writer read needs no lookup. */
  hold?: Transfer;
  /** Its usage meters are closed: settlement started and must be finished (ADR 0036). */
  closing?: boolean;
  /** The platform fee (bps) of its pinned revenue rule, when this daemon knows it (ADR 0124). */
  fee_bps?: number;
  /**
   * What its Don counted on the day account (ADR 0110), when this daemon's Don created it: the
   * day account and amount, or null (nothing counted: no hold). Undefined: unknown, read it.
   * Immutable once in the ledger, so settlement need not read it back (ADR 0114).
   */
  counted?: { day_account_id: bigint; amount_micro: bigint } | null;
}

/** Every usage ledger's bit (see OpenSession.meters). */
export const ALL_METERS = Object.values(USAGE_LEDGER).reduce((m, l) => m | (1 << l), 0);

/**
 * The index entry of a session the ledger shows open (a `reconstructSession` view), with its
 * activity as the ledger last recorded it; `meters` (OpenSession.meters) and the optional
 * `hold` / `closing` come from the caller.
 */
export function openSessionFromView(
  v: SessionView,
  meters: number,
  extra: Pick<OpenSession, "hold" | "closing"> = {},
): OpenSession {
  return {
    session_id: v.session_id,
    wallet_id: v.agent_wallet_id,
    masque_index: v.masque_index,
    don_ns: v.don_ns,
    deadline_ns: v.deadline_ns,
    last_activity_ns: v.last_activity_ns,
    last_beat_written_ns: v.last_activity_ns,
    meters,
    ...extra,
  };
}

/** Dependencies and caches of one SessionService instance. */
export interface SessionState {
  readonly ledger: Client;
  readonly config: Config;
  readonly log: Logger;
  /** Wall clock, ns since the epoch. */
  readonly clock: () => bigint;
  /** The catalog in force now (folder + published versions, ADR 0107); a new object after a change. */
  readonly catalog: Catalog;
  /** The live catalog behind `catalog`: the folder (hot reloaded) and the published versions. */
  readonly live: LiveCatalog;
  /**
   * Price books of every daemon (control-plane database). `peek` is cache-only; `get` reads the
   * database on a miss (a session donned by another daemon with a price book this one never loaded).
   */
  readonly registry: PriceBookStore;
  /**
   * Revenue rules (issue 16, ADR 0100): a session pins the applicable rule at Don (before its
   * hold exists) and settles with the pinned split; `pins` caches pins (immutable once written;
   * bounded: cleared when full).
   */
  readonly rules: GovernanceStore;
  readonly pins: Map<bigint, SessionPin>;
  /** The webhook outbox: session.settled / session.expired are enqueued after the ledger decided. */
  readonly webhooks: WebhookStore;
  /** Reaper actions since start, by kind (read by the daemon's metrics, issue 18). */
  readonly reaped: { idle: number; max_length: number; recover: number; expired: number };
  /** Claude Code session bindings of OTLP-metered sessions (issue 18, src/controlplane/otlp.ts). */
  readonly otlp: OtlpStore;
  readonly ids: SessionAccountIds;
  /** Open-session index (see the file comment). */
  readonly open: Map<bigint, OpenSession>;
  /** Sessions whose usage meters are known to exist (bounded: cleared when full). */
  readonly metered: Set<bigint>;
  /** Authors whose earnings accounts exist. */
  readonly authorsReady: Set<string>;
  /** Wallets whose agent-debt account exists. */
  readonly debtReady: Set<bigint>;
  /**
   * The embedded engine admits one process per data directory: this daemon sees every write and
   * may trust its index for reads. False with a TigerBeetle cluster (several daemons may write).
   */
  readonly singleWriter: boolean;
  /** Spending limits (ADR 0110): accounts the Don and Doff chains name. */
  readonly limits: Limits;
}

/**
 * Build the state of one instance. Invalid masque files are logged and skipped (ADR 0107). The
 * catalog's price books are stored by rebuildState (startup.ts) before the instance serves.
 */
export function createSessionState(ctx: DaemonContext): SessionState {
  const registry = ctx.controlplane.priceBooks;
  const log = ctx.log.child({ component: "sessions" });
  const live = createLiveCatalog({
    dir: path.resolve(ctx.config.MASQUES_DIR),
    rescan_ms: ctx.config.CATALOG_RESCAN_MS,
    store: ctx.controlplane.catalog,
    priceBooks: registry,
    log: ctx.log.child({ component: "catalog" }),
  });
  const state: SessionState = {
    ledger: ctx.ledger,
    config: ctx.config,
    log,
    clock: ctx.clock,
    get catalog() {
      return live.at(ctx.clock());
    },
    live,
    registry,
    rules: governanceOf(ctx).rules,
    pins: new Map(),
    webhooks: ctx.controlplane.webhooks,
    otlp: otlpStore(ctx.controlplane.db),
    reaped: { idle: 0, max_length: 0, recover: 0, expired: 0 },
    ids: sessionAccountIds,
    open: new Map(),
    metered: new Set(),
    authorsReady: new Set(),
    debtReady: new Set(),
    singleWriter: ctx.config.LEDGER === "embedded",
    limits: createLimits(ctx.ledger, ctx.config),
  };
  return state;
}

/** SESSION_IDLE_S in ns. */
export function idleNs(s: SessionState): bigint {
  return BigInt(s.config.SESSION_IDLE_S) * 1_000_000_000n;
}
