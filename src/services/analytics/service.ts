/**
 * AnalyticsService (proto/masques/ledger/v1/analytics_service.proto, docs/adr/0120): time series
 * for the dashboard from the ClickHouse copy of the ledger, through the fixed queries of
 * ./queries.ts. Each handler: authorise (one visible step), parse the request into typed
 * parameters, run one or two fixed queries, map rows to the response.
 */
import { create } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  AnalyticsService,
  EarningsPointSchema,
  ExpiringHoldSchema,
  GetAgentSpendResponseSchema,
  GetAuthorEarningsResponseSchema,
  GetPlatformRevenueResponseSchema,
  GetStreamerStatusResponseSchema,
  RevenuePointSchema,
  SessionSpendSchema,
  TimeBucket,
  type TimeWindow,
} from "../../../clients/gen/masques/ledger/v1/analytics_service_pb.js";
import type { PriceBookStore } from "../../controlplane/pricebooks.js";
import { agentWalletId, authorEarningsId } from "../../domain/accounts.js";
import { idToHex } from "../../domain/ids.js";
import { defineService, type AnalyticsPort, type DaemonContext, type ServiceRegistration } from "../../server/registry.js";
import { principalOf } from "../authz.js";
import { failedPrecondition, invalidArgument, type Violation } from "../errors.js";
import { timestampFromNs } from "../views.js";
import { bindDatabase, type ResultRow } from "../../streamer/sink.js";
import { authorizeAgentSpend, authorizeAuthorEarnings, authorizeOperatorView } from "./authz.js";
import {
  DEFAULT_WINDOW_DAYS,
  MAX_ROWS,
  MAX_WINDOW_DAYS,
  NS_PER_DAY,
  agentSpendSql,
  authorEarningsSql,
  bucketStartNs,
  cellBig,
  cellText,
  expiringHoldsSql,
  openSessionsCountSql,
  platformRevenueSql,
  type Bucket,
  type Window,
} from "./queries.js";

/** What the analytics service depends on. */
export interface AnalyticsServiceDeps {
  /** Undefined when the daemon runs without its streamer. */
  analytics: AnalyticsPort | undefined;
  priceBooks: PriceBookStore;
  /** ns since the epoch. */
  clock: () => bigint;
}

function portOf(deps: AnalyticsServiceDeps): AnalyticsPort {
  if (!deps.analytics) {
    throw failedPrecondition(
      "STREAMER_NOT_RUNNING",
      "analytics read the ClickHouse copy kept by the daemon's streamer, which is not running here (STREAMER_ENABLED=false, or it failed to start: see the daemon log)",
    );
  }
  return deps.analytics;
}

/** Run one fixed query against the copy's database. */
function run(port: AnalyticsPort, sql: string): Promise<ResultRow[]> {
  return port.sink.query(bindDatabase(sql, port.sink.database));
}

function nsOfTimestamp(t: Timestamp): bigint {
  return t.seconds * 1_000_000_000n + BigInt(t.nanos);
}

/** Request window -> [start_ns, end_ns); violations name `window.*`. */
export function parseWindow(w: TimeWindow | undefined, now_ns: bigint, violations: Violation[]): Window {
  const end_ns = w?.endTime ? nsOfTimestamp(w.endTime) : now_ns;
  const start_ns = w?.startTime ? nsOfTimestamp(w.startTime) : end_ns - BigInt(DEFAULT_WINDOW_DAYS) * NS_PER_DAY;
  if (start_ns < 0n) violations.push({ field: "window.start_time", description: "must not be before 1970-01-01" });
  else if (end_ns <= start_ns) violations.push({ field: "window.end_time", description: "must be after window.start_time" });
  else if (end_ns - start_ns > BigInt(MAX_WINDOW_DAYS) * NS_PER_DAY) {
    violations.push({ field: "window", description: `must span at most ${MAX_WINDOW_DAYS} days` });
  }
  return { start_ns, end_ns };
}

function parseBucket(b: TimeBucket, violations: Violation[]): Bucket {
  if (b === TimeBucket.UNSPECIFIED || b === TimeBucket.DAY) return "day";
  if (b === TimeBucket.WEEK) return "week";
  violations.push({ field: "bucket", description: "must be TIME_BUCKET_DAY or TIME_BUCKET_WEEK" });
  return "day";
}

function parseLimit(limit: number, field: string, max: number, fallback: number, violations: Violation[]): number {
  if (limit === 0) return fallback;
  if (limit > max) violations.push({ field, description: `must be at most ${max}` });
  return Math.min(limit, max);
}

function check(violations: Violation[]): void {
  if (violations.length > 0) throw invalidArgument(violations);
}

/** Masque names by price-book version (the book pinned at Don names its masque). */
async function masqueName(priceBooks: PriceBookStore, version: number, index: bigint): Promise<string> {
  const e = version > 0 ? await priceBooks.get(version) : undefined;
  return e?.masque_name ?? `#${index}`;
}

function asOf(port: AnalyticsPort): Timestamp {
  return timestampFromNs(port.lag().cursor_ts);
}

/** The handler object (Connect v2 ServiceImpl). */
export function createAnalyticsService(deps: AnalyticsServiceDeps): ServiceImpl<typeof AnalyticsService> {
  return {
    async getAuthorEarnings(req, ctx: HandlerContext) {
      const author = authorizeAuthorEarnings(principalOf(ctx), req.authorId);
      const violations: Violation[] = [];
      if (author === "") violations.push({ field: "author_id", description: "required for an admin (whose earnings?)" });
      const bucket = parseBucket(req.bucket, violations);
      const window = parseWindow(req.window, deps.clock(), violations);
      check(violations);
      const port = portOf(deps);
      const cursor = asOf(port);
      const rows = await run(port, authorEarningsSql(authorEarningsId(author), bucket, window));
      let total = 0n;
      const points = [];
      for (const r of rows) {
        const index = cellBig(r, "masque_index");
        const earned = cellBig(r, "earned_micro");
        total += earned;
        points.push(
          create(EarningsPointSchema, {
            bucketStart: timestampFromNs(bucketStartNs(cellBig(r, "bucket_day"))),
            masqueName: await masqueName(deps.priceBooks, Number(cellBig(r, "price_book_version")), index),
            masqueIndex: index,
            sessions: cellBig(r, "sessions"),
            earnedMicro: earned,
          }),
        );
      }
      return create(GetAuthorEarningsResponseSchema, { authorId: author, points, totalEarnedMicro: total, asOfTime: cursor });
    },

    async getAgentSpend(req, ctx: HandlerContext) {
      const agent = authorizeAgentSpend(principalOf(ctx), req.agentId);
      const violations: Violation[] = [];
      if (agent === "") violations.push({ field: "agent_id", description: "required for an admin (whose spend?)" });
      const window = parseWindow(req.window, deps.clock(), violations);
      const limit = parseLimit(req.limit, "limit", MAX_ROWS, 100, violations);
      check(violations);
      const port = portOf(deps);
      const cursor = asOf(port);
      const rows = await run(port, agentSpendSql(agentWalletId(agent), window, limit));
      let total = 0n;
      const sessions = [];
      for (const r of rows) {
        const price = cellBig(r, "price_micro");
        total += price;
        sessions.push(
          create(SessionSpendSchema, {
            sessionId: idToHex(BigInt(cellText(r, "session_id"))),
            masqueName: await masqueName(deps.priceBooks, Number(cellBig(r, "price_book_version")), cellBig(r, "masque_index")),
            status: cellText(r, "status"),
            donTime: timestampFromNs(cellBig(r, "opened_ns")),
            endTime: timestampFromNs(cellBig(r, "closed_ns")),
            holdMicro: cellBig(r, "hold_micro"),
            priceMicro: price,
            authorMicro: cellBig(r, "author_micro"),
            platformMicro: cellBig(r, "platform_micro"),
            refundMicro: cellBig(r, "refund_micro"),
            debtMicro: cellBig(r, "debt_micro"),
            inputTokens: cellBig(r, "usage_input_tokens"),
            outputTokens: cellBig(r, "usage_output_tokens"),
            toolCalls: cellBig(r, "usage_tool_calls"),
            billedDurationMs: cellBig(r, "billed_duration_ms"),
          }),
        );
      }
      return create(GetAgentSpendResponseSchema, { agentId: agent, sessions, totalPriceMicro: total, asOfTime: cursor });
    },

    async getPlatformRevenue(req, ctx: HandlerContext) {
      authorizeOperatorView(principalOf(ctx), "read platform revenue");
      const violations: Violation[] = [];
      const bucket = parseBucket(req.bucket, violations);
      const window = parseWindow(req.window, deps.clock(), violations);
      check(violations);
      const port = portOf(deps);
      const cursor = asOf(port);
      const rows = await run(port, platformRevenueSql(bucket, window));
      let total = 0n;
      const points = rows.map((r) => {
        const fee = cellBig(r, "platform_micro");
        total += fee;
        return create(RevenuePointSchema, {
          bucketStart: timestampFromNs(bucketStartNs(cellBig(r, "bucket_day"))),
          sessions: cellBig(r, "sessions"),
          platformMicro: fee,
          authorMicro: cellBig(r, "author_micro"),
        });
      });
      return create(GetPlatformRevenueResponseSchema, { points, totalPlatformMicro: total, asOfTime: cursor });
    },

    async getStreamerStatus(req, ctx: HandlerContext) {
      authorizeOperatorView(principalOf(ctx), "read the streamer status");
      const violations: Violation[] = [];
      const limit = parseLimit(req.expiringHoldsLimit, "expiring_holds_limit", 100, 20, violations);
      check(violations);
      const port = portOf(deps);
      const lag = port.lag();
      const [open] = await run(port, openSessionsCountSql());
      const holds = await run(port, expiringHoldsSql(limit));
      return create(GetStreamerStatusResponseSchema, {
        sink: port.describe,
        cursorTime: timestampFromNs(lag.cursor_ts),
        eventsBehind: BigInt(lag.events_behind),
        timeBehindMs: BigInt(Math.max(0, Math.round(lag.time_behind_ms))),
        caughtUp: lag.caught_up,
        openSessions: open ? cellBig(open, "open_sessions") : 0n,
        expiringHolds: holds.map((h) =>
          create(ExpiringHoldSchema, {
            holdId: idToHex(BigInt(cellText(h, "id"))),
            tagId: idToHex(BigInt(cellText(h, "tag_id"))),
            amountMicro: cellBig(h, "amount"),
            deadlineTime: timestampFromNs(cellBig(h, "deadline_ns")),
          }),
        ),
      });
    },
  };
}

/** The registration line for src/services/index.ts. */
export function analyticsServiceRegistration(ctx: DaemonContext): ServiceRegistration {
  return defineService(
    AnalyticsService,
    // `analytics` is read per call: the daemon's streamer may start after the services (ADR 0119).
    createAnalyticsService({
      get analytics() {
        return ctx.analytics;
      },
      priceBooks: ctx.controlplane.priceBooks,
      clock: ctx.clock,
    }),
  );
}
