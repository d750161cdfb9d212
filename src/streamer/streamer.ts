/**
 * The CDC streamer: ledger -> ClickHouse, in ledger timestamp order.
 *
 * - Accounts and transfers are read with `queryAccounts` / `queryTransfers` from a cursor
 *   (`timestamp_min = cursor + 1`, pages of at most 8189): TigerBeetle timestamps are unique and
 *   strictly increasing, so the cursor names exactly what has been copied.
 * - Each chunk is written, then its derived rows (balance snapshots, sessions, settlements), and
 *   only then the cursor (in ClickHouse's `stream_cursor`). A crash anywhere re-copies at most the
 *   chunks after the last cursor: delivery is at-least-once, and every table is a
 *   ReplacingMergeTree keyed by ledger id / timestamp, so the effect is exactly-once.
 * - Pending transfers whose deadline passed with no post/void (the ledger voided them silently)
 *   are recorded as `expired` resolutions and folded into their session / payout rows.
 * - `lag()` says how far behind the ledger the copy is.
 */
import type { Account, Client, QueryFilter, Transfer } from "tigerbeetle-node";
import {
  expiredCandidatesSql,
  PAYOUT_CODES,
  recomputeSessionsSql,
  recomputeSettlementsSql,
  type SettlementRailFacts,
  SESSION_CODES,
} from "./derive.js";
import {
  ACCOUNT_COLUMNS,
  accountRow,
  CURSOR_COLUMNS,
  STATS_COLUMNS,
  IDENTITY_COLUMNS,
  identityRow,
  HOLD_COLUMNS,
  TAGGED_COLUMNS,
  TRANSFER_COLUMNS,
  transferRow,
} from "./rows.js";
import { bindDatabase, type Row, type Sink } from "./sink.js";

export const LEDGER_BATCH_MAX = 8189;
const RECOMPUTE_GROUP = 1000;

/** The subset of a pino logger the streamer uses. */
export interface StreamerLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface StreamerOptions {
  /** The ledger port (embedded engine or TigerBeetle cluster). Only read from. */
  client: Client;
  sink: Sink;
  /** Events per ledger read (1..8189). Default 8189. */
  batch?: number;
  /** Transfers gathered into one ClickHouse insert (several ledger reads). Default 8 x batch. */
  chunk_max?: number;
  /** Idle poll interval. Default 200 ms. */
  poll_ms?: number;
  /** Clock (ns since epoch) used to decide that a hold's deadline has passed. Default: wall clock. */
  now_ns?: () => bigint;
  /** How often (at most) to look for expired pending transfers while caught up. Default 5000 ms. */
  expiry_check_ms?: number;
  /** Period of the "streamer: stats" log line (rate, lag p50/p99) while events flow. Default 10 s. */
  stats_log_ms?: number;
  logger?: StreamerLogger;
  /**
   * Start from this transfer timestamp instead of the stored cursor (e.g. 0n to re-copy
   * everything: harmless, every table is idempotent). The stored cursor never moves back.
   */
  resume_from?: bigint;
  /**
   * The rail's facts of these payouts (ADR 0084), copied into their `settlements` rows; the
   * daemon reads them from the control plane, where they are written before the ledger post.
   * Unset (a standalone `stream` without a control plane): the columns stay '' / 0.
   */
  rail_facts?: (payout_ids: readonly bigint[]) => Promise<SettlementRailFacts[]>;
}

export interface StreamerLag {
  /** Ledger timestamp (ns) of the last transfer copied, with everything derived from it. */
  cursor_ts: bigint;
  /** Newest ledger timestamp the streamer has seen (>= cursor_ts). */
  head_ts: bigint;
  /** Events read from the ledger but not yet committed, plus `more_behind` when the last page was full. */
  events_behind: number;
  /** True when the last ledger read returned a full page (there may be more than events_behind). */
  more_behind: boolean;
  /** Age of the oldest ledger event not yet in ClickHouse (0 when caught up). */
  time_behind_ms: number;
  caught_up: boolean;
}

/** The background copy's failures (see Streamer.health). */
export interface StreamerHealth {
  /** The last copy pass failed; cleared by the next pass that succeeds. */
  failing: boolean;
  consecutive_failures: number;
  /** Failed passes since this streamer was created (a counter). */
  failures_total: number;
  /** The last failure's message (at most 200 characters) while failing. */
  last_error?: string;
}

export interface SyncResult {
  accounts: number;
  transfers: number;
  expired: number;
  chunks: number;
}

/** Lag samples: for every committed event, commit wall time minus its ledger timestamp (ms). */
export class LagHistogram {
  /** counts[i] = events with lag in [i, i+1) ms; the last bucket holds everything >= its index. */
  private readonly counts = new Float64Array(120_001);
  total = 0;
  add(lag_ms: number, n = 1): void {
    const i = Math.min(this.counts.length - 1, Math.max(0, Math.floor(lag_ms)));
    this.counts[i]! += n;
    this.total += n;
  }
  /** The q-quantile (0..1) in ms (bucket upper edge), or 0 with no samples. */
  quantile(q: number): number {
    if (this.total === 0) return 0;
    const target = q * this.total;
    let acc = 0;
    for (let i = 0; i < this.counts.length; i++) {
      acc += this.counts[i]!;
      if (acc >= target) return i + 1;
    }
    return this.counts.length;
  }
  reset(): void {
    this.counts.fill(0);
    this.total = 0;
  }
}

const wallClockNs = (): bigint => BigInt(Date.now()) * 1_000_000n;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function filter(timestamp_min: bigint, limit: number): QueryFilter {
  return {
    user_data_128: 0n, user_data_64: 0n, user_data_32: 0, ledger: 0, code: 0,
    timestamp_min, timestamp_max: 0n, limit, flags: 0,
  };
}

interface Chunk {
  transfers: Transfer[];
  /** The last page read was full: more may follow. */
  more: boolean;
  /** Wall clock (streamer clock) just before the read that found the end, when `more` is false. */
  read_started_ns: bigint;
}

export class Streamer {
  private readonly client: Client;
  readonly sink: Sink;
  private readonly batch: number;
  private readonly chunkMax: number;
  private readonly pollMs: number;
  private readonly nowNs: () => bigint;
  private readonly expiryCheckMs: number;
  private readonly statsLogMs: number;
  private readonly log: StreamerLogger | undefined;

  private transferCursor = 0n;
  private accountCursor = 0n;
  private headTs = 0n;
  private uncommitted: { first_ts: bigint; count: number } | null = null;
  private moreBehind = false;
  private caughtUpAt: bigint | null = null;
  private lastExpiryCheck = 0;
  /** Holds with a deadline at or before this were all checked for expiry. */
  private expiryCheckedTo = 0n;
  private eventsTotal = 0n;
  private consecutiveFailures = 0;
  private failuresTotal = 0;
  private lastError: string | undefined;

  private loop: Promise<void> | null = null;
  private readonly startedAt = Date.now();
  private stopping = false;
  private wake: (() => void) | null = null;
  /** Serialises copy passes and `exclusive` sections (e.g. a reconciliation) on this sink. */
  private gate: Promise<unknown> = Promise.resolve();

  /** Per-event lag (commit time - ledger timestamp) of everything this instance committed. */
  readonly lagHistogram = new LagHistogram();
  /** The same, since the last periodic stats log line. */
  private readonly windowLag = new LagHistogram();
  private windowStart = Date.now();
  private windowEvents = 0;

  private readonly railFacts: StreamerOptions["rail_facts"];

  private constructor(opts: StreamerOptions) {
    this.client = opts.client;
    this.sink = opts.sink;
    this.batch = Math.min(LEDGER_BATCH_MAX, Math.max(1, opts.batch ?? LEDGER_BATCH_MAX));
    this.chunkMax = Math.max(this.batch, opts.chunk_max ?? this.batch * 8);
    this.pollMs = opts.poll_ms ?? 200;
    this.nowNs = opts.now_ns ?? wallClockNs;
    this.railFacts = opts.rail_facts;
    this.expiryCheckMs = opts.expiry_check_ms ?? 5000;
    this.statsLogMs = opts.stats_log_ms ?? 10_000;
    this.log = opts.logger;
  }

  /** Create a streamer over a migrated sink, resuming from the cursors stored there. */
  static async create(opts: StreamerOptions): Promise<Streamer> {
    const s = new Streamer(opts);
    const cursors = await readCursors(opts.sink);
    s.transferCursor = opts.resume_from ?? cursors.transfers;
    s.accountCursor = opts.resume_from ?? cursors.accounts;
    s.headTs = s.transferCursor;
    return s;
  }

  get cursor(): { transfers: bigint; accounts: bigint } {
    return { transfers: this.transferCursor, accounts: this.accountCursor };
  }

  lag(): StreamerLag {
    const now = this.nowNs();
    const behind = this.uncommitted;
    const time_behind_ms =
      behind !== null
        ? Math.max(0, Number(now - behind.first_ts) / 1e6)
        : this.moreBehind && this.headTs > 0n
          ? Math.max(0, Number(now - this.headTs) / 1e6)
          : 0;
    return {
      cursor_ts: this.transferCursor,
      head_ts: this.headTs > this.transferCursor ? this.headTs : this.transferCursor,
      events_behind: behind?.count ?? 0,
      more_behind: this.moreBehind,
      time_behind_ms,
      caught_up: behind === null && !this.moreBehind,
    };
  }

  /** Copy everything the ledger has now (accounts, transfers, expiries); resolves when caught up. */
  async syncOnce(): Promise<SyncResult> {
    const result: SyncResult = { accounts: 0, transfers: 0, expired: 0, chunks: 0 };
    // New accounts are copied alongside the transfers (independent tables and cursors).
    const accounts = this.syncAccounts();
    accounts.catch(() => undefined); // observed below
    // Pipeline: while the sink writes chunk k (chDB thread pool / server), read chunk k+1.
    let next: Promise<Chunk> | null = this.readChunk(this.transferCursor);
    while (next) {
      let chunk: Chunk;
      try {
        chunk = await next;
      } catch (err) {
        await accounts.catch(() => undefined);
        throw err;
      }
      this.moreBehind = chunk.more;
      if (chunk.transfers.length === 0) {
        this.caughtUpAt = chunk.read_started_ns;
        break;
      }
      const last = chunk.transfers[chunk.transfers.length - 1]!.timestamp;
      if (last > this.headTs) this.headTs = last;
      this.uncommitted = { first_ts: chunk.transfers[0]!.timestamp, count: chunk.transfers.length };
      const writing = this.writeChunk(chunk.transfers);
      next = chunk.more ? this.readChunk(last) : null;
      try {
        await writing;
      } catch (err) {
        if (next) next.catch(() => undefined);
        await accounts.catch(() => undefined);
        throw err;
      }
      this.uncommitted = null;
      result.transfers += chunk.transfers.length;
      result.chunks++;
      if (!chunk.more) this.caughtUpAt = chunk.read_started_ns;
    }
    result.accounts = await accounts;
    if (this.caughtUpAt !== null && Date.now() - this.lastExpiryCheck >= this.expiryCheckMs) {
      this.lastExpiryCheck = Date.now();
      result.expired = await this.recordExpired(this.caughtUpAt);
    }
    return result;
  }

  /**
   * Run `fn` while no copy pass is in flight, and hold the next one back until it settles: what
   * the sink holds does not move under `fn` (a reconciliation compares a still copy). Sections
   * run one at a time, in call order.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.gate.then(fn, fn);
    this.gate = run.catch(() => undefined);
    return run;
  }

  /**
   * How the background copy is doing: `failing` while the last pass failed (ClickHouse or the
   * ledger unreachable mid-run); it clears on the next pass that succeeds. Readiness reports it as
   * `checks.analytics` (ADR 0119).
   */
  health(): StreamerHealth {
    return {
      failing: this.consecutiveFailures > 0,
      consecutive_failures: this.consecutiveFailures,
      failures_total: this.failuresTotal,
      ...(this.lastError === undefined ? {} : { last_error: this.lastError }),
    };
  }

  /** Run syncOnce in the background until stop(). Errors are logged and retried with backoff (capped at 5 s). */
  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = (async () => {
      let failures = 0;
      while (!this.stopping) {
        let idle = true;
        try {
          const r = await this.exclusive(() => this.syncOnce());
          if (failures > 0) this.log?.info({ failures }, "streamer: sync recovered; copying from the stored cursor");
          failures = 0;
          this.consecutiveFailures = 0;
          this.lastError = undefined;
          idle = r.transfers === 0 && r.accounts === 0;
          if (r.expired > 0) this.log?.info({ expired: r.expired }, "streamer: expired holds recorded");
          this.logStats(this.statsLogMs);
        } catch (err) {
          failures++;
          this.consecutiveFailures = failures;
          this.failuresTotal++;
          this.lastError = (err as Error).message.slice(0, 200);
          this.log?.error({ err, failures }, "streamer: sync failed; retrying from the stored cursor");
        }
        if (this.stopping) break;
        if (failures > 0) await this.pause(Math.min(5000, this.pollMs * 2 ** Math.min(failures, 5)));
        else if (idle) await this.pause(this.pollMs);
      }
    })();
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = null;
        resolve();
      };
    });
  }

  /**
   * Stop the background loop after the chunk in flight is committed, then (with `flush`, the
   * default) copy what the ledger has now once more, so a graceful shutdown leaves the copy caught
   * up. Call it before closing the ledger. Does not close the sink.
   */
  async stop(opts: { flush?: boolean } = {}): Promise<void> {
    this.stopping = true;
    this.wake?.();
    const l = this.loop;
    this.loop = null;
    if (l) {
      await l;
      if (opts.flush ?? true) {
        try {
          await this.exclusive(() => this.syncOnce());
        } catch (err) {
          this.log?.error({ err }, "streamer: final copy at stop failed (the next start resumes from the cursor)");
        }
      }
    }
    this.logStats(0, true);
    if (this.lagHistogram.total > 0) {
      try {
        await this.recordStats("total", (Date.now() - this.startedAt) / 1000, this.lagHistogram.total, this.lagHistogram);
      } catch (err) {
        this.log?.warn({ err }, "streamer: could not record stats");
      }
    }
  }

  // ---------------------------------------------------------------------------------------------

  private async syncAccounts(): Promise<number> {
    let n = 0;
    for (;;) {
      const page = await this.client.queryAccounts(filter(this.accountCursor + 1n, this.batch));
      if (page.length === 0) break;
      const snapshot_ns = this.nowNs();
      await Promise.all([
        this.sink.insert("accounts", ACCOUNT_COLUMNS, page.map((a) => accountRow(a, snapshot_ns, this.transferCursor))),
        this.sink.insert("identities", IDENTITY_COLUMNS, page.map(identityRow)),
      ]);
      const last = page[page.length - 1]!.timestamp;
      await this.writeCursor("accounts", last, BigInt(page.length));
      this.accountCursor = last;
      n += page.length;
      if (page.length < this.batch) break;
    }
    return n;
  }

  private async readChunk(after: bigint): Promise<Chunk> {
    const transfers: Transfer[] = [];
    let cursor = after;
    for (;;) {
      const read_started_ns = this.nowNs();
      const page = await this.client.queryTransfers(filter(cursor + 1n, this.batch));
      for (const t of page) transfers.push(t);
      if (page.length < this.batch) return { transfers, more: false, read_started_ns };
      cursor = page[page.length - 1]!.timestamp;
      if (transfers.length + this.batch > this.chunkMax) return { transfers, more: true, read_started_ns };
    }
  }

  private async writeChunk(transfers: Transfer[]): Promise<void> {
    // 1. The transfers (materialized views fill pending_*, tagged_transfers, usage in-engine).
    const rows: Row[] = new Array<Row>(transfers.length);
    const accounts = new Set<bigint>();
    const sessions = new Set<bigint>();
    const payouts = new Set<bigint>();
    for (let i = 0; i < transfers.length; i++) {
      const t = transfers[i]!;
      rows[i] = transferRow(t);
      accounts.add(t.debit_account_id);
      accounts.add(t.credit_account_id);
      if (t.user_data_128 !== 0n) {
        if (SESSION_CODES.has(t.code)) sessions.add(t.user_data_128);
        else if (PAYOUT_CODES.has(t.code)) payouts.add(t.user_data_128);
      }
    }
    const last = transfers[transfers.length - 1]!.timestamp;
    const inserted = this.sink.insert("transfers", TRANSFER_COLUMNS, rows);
    // 2. Balance snapshots of every account the chunk moved (read while the insert runs).
    let snapshots: Promise<void>[] = [];
    try {
      snapshots = await this.snapshotAccounts(accounts, last);
    } finally {
      await inserted; // never leave a rejected insert unobserved
    }
    // 3. Derived rows, recomputed from everything ClickHouse now has for them (so only after the
    //    transfers are in: a server sink may run concurrent requests in any order).
    await Promise.all([...snapshots, ...this.recomputeDerived(sessions, payouts)]);
    // 4. Only now the cursor.
    await this.writeCursor("transfers", last, BigInt(transfers.length));
    this.transferCursor = last;
    this.log?.debug({ cursor_ts: last.toString(), transfers: transfers.length }, "streamer: chunk committed");
    const commit_ns = wallClockNs();
    for (const t of transfers) {
      const lag_ms = Number(commit_ns - t.timestamp) / 1e6;
      this.lagHistogram.add(lag_ms);
      this.windowLag.add(lag_ms);
    }
    this.windowEvents += transfers.length;
  }

  /**
   * Every `every_ms` while events flow: log the copy rate and lag quantiles and record them in
   * ClickHouse (`streamer_stats`, scope 'window').
   */
  private logStats(every_ms: number, force = false): void {
    const elapsed = Date.now() - this.windowStart;
    if (!force && elapsed < every_ms) return;
    if (this.windowEvents > 0) {
      this.recordStats("window", elapsed / 1000, this.windowEvents, this.windowLag).catch((err: unknown) =>
        this.log?.warn({ err }, "streamer: could not record stats"),
      );
      this.log?.info(
        {
          streamer_stats: {
            events: this.windowEvents,
            events_per_s: Math.round((this.windowEvents * 1000) / Math.max(1, elapsed)),
            lag_p50_ms: this.windowLag.quantile(0.5),
            lag_p99_ms: this.windowLag.quantile(0.99),
            lag_max_ms: this.windowLag.quantile(1),
            total_lag_p50_ms: this.lagHistogram.quantile(0.5),
            total_lag_p99_ms: this.lagHistogram.quantile(0.99),
            total_events: this.lagHistogram.total,
            ...lagForLog(this.lag()),
          },
        },
        "streamer: stats",
      );
    }
    this.windowLag.reset();
    this.windowEvents = 0;
    this.windowStart = Date.now();
  }

  private recordStats(scope: "window" | "total", window_s: number, events: number, h: LagHistogram): Promise<void> {
    const l = this.lag();
    return this.sink.insert("streamer_stats", STATS_COLUMNS, [
      [
        new Date().toISOString().replace("T", " ").replace("Z", ""), scope, window_s, BigInt(events),
        BigInt(Math.round(events / Math.max(window_s, 0.001))), h.quantile(0.5), h.quantile(0.99), h.quantile(1),
        l.cursor_ts, l.head_ts, l.events_behind,
      ],
    ]);
  }

  private async snapshotAccounts(ids: Set<bigint>, as_of_ts: bigint): Promise<Promise<void>[]> {
    const list = [...ids].filter((id) => id !== 0n);
    const found: Account[] = [];
    for (let i = 0; i < list.length; i += LEDGER_BATCH_MAX) {
      const page = await this.client.lookupAccounts(list.slice(i, i + LEDGER_BATCH_MAX));
      for (const a of page) found.push(a);
    }
    if (found.length === 0) return [];
    const snapshot_ns = this.nowNs();
    return [this.sink.insert("accounts", ACCOUNT_COLUMNS, found.map((a) => accountRow(a, snapshot_ns, as_of_ts)))];
  }

  private recomputeDerived(sessions: Set<bigint>, payouts: Set<bigint>): Promise<void>[] {
    const out: Promise<void>[] = [];
    const ids = (set: Set<bigint>) => {
      const all = [...set];
      const groups: bigint[][] = [];
      // 1000 ids (~40 digits, twice per statement) keep each statement well under max_query_size (256 KiB)
      for (let i = 0; i < all.length; i += RECOMPUTE_GROUP) groups.push(all.slice(i, i + RECOMPUTE_GROUP));
      return groups;
    };
    for (const g of ids(sessions)) out.push(this.sink.exec(recomputeSessionsSql(this.sink.database, g)));
    const facts = this.railFacts;
    for (const g of ids(payouts)) {
      out.push((async () => this.sink.exec(recomputeSettlementsSql(this.sink.database, g, facts === undefined ? [] : await facts(g))))());
    }
    return out;
  }

  /**
   * Holds whose deadline is at or before `caught_up_ns` (a moment at which the streamer had read
   * the whole ledger) and that were never posted or voided: the ledger expired them. Any later
   * post would carry a timestamp past the deadline and be refused, so this is final.
   */
  private async recordExpired(caught_up_ns: bigint): Promise<number> {
    let total = 0;
    // Every hold with a deadline <= the previous check was settled then (see above), so only the
    // window since it needs looking at; a restart looks at everything once.
    const from = this.expiryCheckedTo;
    for (;;) {
      const rows = await this.sink.query(expiredCandidatesSql(this.sink.database, from, caught_up_ns));
      if (rows.length === 0) break;
      const expired: Row[] = [];
      const tagged: Row[] = [];
      const accounts = new Set<bigint>();
      const sessions = new Set<bigint>();
      const payouts = new Set<bigint>();
      for (const r of rows) {
        const tag = BigInt(String(r.user_data_128));
        const code = Number(r.code);
        const debit = BigInt(String(r.debit_account_id));
        const credit = BigInt(String(r.credit_account_id));
        const deadline = BigInt(String(r.deadline_ns));
        const id = BigInt(String(r.id));
        expired.push([id, "expired", debit, credit, 0n, tag, Number(r.ledger), code, Number(r.timeout_s), deadline, 0n, deadline]);
        if (tag !== 0n) tagged.push([tag, deadline, id, debit, credit, 0n, 0n, 0n, 0, Number(r.timeout_s), Number(r.ledger), code, "expired"]);
        accounts.add(debit);
        accounts.add(credit);
        if (tag !== 0n && SESSION_CODES.has(code)) sessions.add(tag);
        if (tag !== 0n && PAYOUT_CODES.has(code)) payouts.add(tag);
      }
      await Promise.all([
        this.sink.insert("holds", HOLD_COLUMNS, expired),
        this.sink.insert("tagged_transfers", TAGGED_COLUMNS, tagged),
      ]);
      await Promise.all([
        ...(await this.snapshotAccounts(accounts, this.transferCursor)),
        ...this.recomputeDerived(sessions, payouts),
      ]);
      total += rows.length;
      this.log?.info({ expired: rows.length }, "streamer: recorded expired pending transfers");
      if (rows.length < LEDGER_BATCH_MAX) break;
    }
    this.expiryCheckedTo = caught_up_ns;
    return total;
  }

  private async writeCursor(stream: "transfers" | "accounts", cursor_ts: bigint, events: bigint): Promise<void> {
    this.eventsTotal += events;
    await this.sink.insert("stream_cursor", CURSOR_COLUMNS, [[stream, cursor_ts, this.eventsTotal, wallClockNs()]]);
  }
}

/** The durable cursors (0n when nothing was copied yet). max() is correct even before merges. */
export async function readCursors(sink: Sink): Promise<{ transfers: bigint; accounts: bigint }> {
  const rows = await sink.query(
    bindDatabase(`SELECT stream, max(cursor_ts) AS cursor_ts FROM {{db}}.stream_cursor GROUP BY stream`, sink.database),
  );
  const out = { transfers: 0n, accounts: 0n };
  for (const r of rows) {
    if (r.stream === "transfers") out.transfers = BigInt(String(r.cursor_ts));
    if (r.stream === "accounts") out.accounts = BigInt(String(r.cursor_ts));
  }
  return out;
}

export function lagForLog(l: StreamerLag): Record<string, string | number | boolean> {
  return {
    cursor_ts: String(l.cursor_ts),
    head_ts: String(l.head_ts),
    events_behind: l.events_behind,
    more_behind: l.more_behind,
    time_behind_ms: Math.round(l.time_behind_ms),
  };
}
