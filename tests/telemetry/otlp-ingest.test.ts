/**
 * Issue 18: Claude-Code-shaped events sent by the REAL OpenTelemetry JS OTLP log exporters
 * (protobuf and JSON) to a daemon started by the test bill donned sessions with no RecordUsage,
 * never twice, never for unknown / closed sessions, and land once in api_requests; bad payloads
 * are refused whole; /metrics shows the calls; readiness reports the ledger, the control plane
 * and ClickHouse apart.
 */
import { gzipSync } from "node:zlib";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { SeverityNumber } from "@opentelemetry/api-logs";
import { OTLPLogExporter as ProtoLogExporter } from "@opentelemetry/exporter-logs-otlp-proto";
import { OTLPLogExporter as JsonLogExporter } from "@opentelemetry/exporter-logs-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { OTLPMetricExporter as ProtoMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import { OTLPMetricExporter as JsonMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor, type ReadableLogRecord } from "@opentelemetry/sdk-logs";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { SessionStatus, UsageOutcome } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { ChdbSink } from "../../src/streamer/chdb-sink.js";
import { newSessionId, startHarness, type Harness } from "../sessions/harness.js";
import { startDaemon } from "../support/daemon.js";
import { createClient, type Interceptor } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AccountService, WalletMode } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { SessionService } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";

async function grpcHealth(addr: string, service: string): Promise<string> {
  const Client = grpc.makeClientConstructor(healthService, "grpc.health.v1.Health");
  const client = new Client(addr, grpc.credentials.createInsecure());
  try {
    return await new Promise<string>((resolve, reject) =>
      (client as unknown as { check(req: object, cb: (e: Error | null, r: { status: string }) => void): void }).check({ service }, (e, r) =>
        e ? reject(e) : resolve(r.status),
      ),
    );
  } finally {
    client.close();
  }
}

function bearer(token: string): Interceptor {
  return (next) => async (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

let h: Harness;
let agentToken: string;

beforeAll(async () => {
  // A Doff of an OTLP-metered session waits this grace for events stamped before it; generous so
  // the grace test's export lands inside it on a loaded machine.
  h = await startHarness({ env: { OTLP_DOFF_GRACE_MS: "8000", OTLP_MAX_BODY_BYTES: "65536" } });
  agentToken = await h.daemon.token("agent", "otel-alice");
}, 120_000);
afterAll(async () => {
  await h?.stop();
});

interface ApiRequest {
  session: string;
  seq: number;
  input: number;
  output: number;
  model?: string;
}

/** Claude Code's log records, captured from a real LoggerProvider (as Claude Code builds them). */
/** A tool name with the characters a ClickHouse literal escapes (quote, backslash) and a tab. */
const QUOTED_TOOL = "Bash 'it\\'s' C:\\tmp\t\"x\"";

function claudeRecords(events: ApiRequest[], tools: { session: string; seq: number; name: string }[] = []): ReadableLogRecord[] {
  const memory = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ "service.name": "claude-code", "service.version": "2.0.0" }),
    processors: [new SimpleLogRecordProcessor({ exporter: memory })],
  });
  const logger = provider.getLogger("com.anthropic.claude_code.events");
  const now = Date.now();
  for (const e of events) {
    logger.emit({
      body: "claude_code.api_request",
      severityNumber: SeverityNumber.INFO,
      timestamp: now,
      attributes: {
        "event.name": "api_request",
        "event.timestamp": new Date(now).toISOString(),
        "event.sequence": e.seq,
        "session.id": e.session,
        "prompt.id": `prompt-${e.seq}`,
        model: e.model ?? "claude-sonnet-4",
        input_tokens: String(e.input),
        output_tokens: String(e.output),
        cache_read_tokens: "7",
        cache_creation_tokens: "3",
        cost_usd: "0.0123",
        duration_ms: "812",
      },
    });
  }
  for (const t of tools) {
    logger.emit({
      body: "claude_code.tool_result",
      timestamp: now,
      attributes: { "event.name": "tool_result", "event.sequence": t.seq, "session.id": t.session, tool_name: t.name, success: "true", duration_ms: "12" },
    });
  }
  return memory.getFinishedLogRecords();
}

type Exporter = { export(records: ReadableLogRecord[], cb: (r: ExportResult) => void): void; shutdown(): Promise<void> };

function exporter(kind: "proto" | "json", token = agentToken, compression?: "gzip"): Exporter {
  const url = `http://${h.daemon.httpAddr}/v1/logs`;
  const headers = { Authorization: `Bearer ${token}` };
  const opts = { url, headers, ...(compression ? { compression: compression as never } : {}) };
  return kind === "proto" ? new ProtoLogExporter(opts) : new JsonLogExporter(opts);
}

function send(e: Exporter, records: ReadableLogRecord[]): Promise<ExportResult> {
  return new Promise((resolve) => e.export(records, resolve));
}

async function donWithClaude(agent: string, claude: string) {
  const c = await h.fundedAgent(agent, 5_000_000n);
  const sessionId = newSessionId();
  const r = await c.sessions.don({ sessionId, masque: "researcher", claudeSessionId: claude });
  expect(r.session!.status).toBe(SessionStatus.OPEN);
  return { c, sessionId };
}

describe("OTLP logs in: billing from Claude Code's events", () => {
  test("a donned session is billed from api_request and tool_result events alone (protobuf exporter); a retried export bills nothing twice", async () => {
    const { c, sessionId } = await donWithClaude("otel-alice", "claude-1");
    const records = claudeRecords(
      [
        { session: "claude-1", seq: 1, input: 1000, output: 500 },
        { session: "claude-1", seq: 2, input: 2000, output: 250 },
      ],
      [{ session: "claude-1", seq: 3, name: "Read" }],
    );
    const ex = exporter("proto");
    expect((await send(ex, records)).code).toBe(ExportResultCode.SUCCESS);
    // The exporter retries (same records, e.g. after a timeout): nothing more is billed.
    expect((await send(ex, records)).code).toBe(ExportResultCode.SUCCESS);
    await ex.shutdown();
    const got = await c.sessions.getSession({ sessionId });
    expect(got.session!.usage).toMatchObject({ inputTokens: 3000n, outputTokens: 750n, toolCalls: 1n });
    const doffed = await c.sessions.doff({ sessionId });
    // 3k input * 0.0002/1k + 0.75k output * 0.0008/1k + 1 tool * 0.0005 = 600 + 600 + 500 micro-USD.
    expect(doffed.session!.priceMicro).toBe(1700n);
  });

  test("the JSON exporter (hex ids, gzip) bills the same way; RecordUsage on an OTLP-metered session is refused so tokens never count twice", async () => {
    const { c, sessionId } = await donWithClaude("otel-bob", "claude-2");
    const bob = await h.daemon.token("agent", "otel-bob");
    const ex = exporter("json", bob, "gzip");
    expect((await send(ex, claudeRecords([{ session: "claude-2", seq: 1, input: 4000, output: 1000 }]))).code).toBe(ExportResultCode.SUCCESS);
    await ex.shutdown();
    const usage = await c.sessions.recordUsage({ events: [{ sessionId, seq: 1n, inputTokens: 4000n, outputTokens: 1000n }] });
    expect(usage.results[0]!.outcome).toBe(UsageOutcome.REJECTED);
    expect(usage.results[0]!.reason).toBe("METERED_FROM_OTLP");
    const got = await c.sessions.getSession({ sessionId });
    expect(got.session!.usage).toMatchObject({ inputTokens: 4000n, outputTokens: 1000n, toolCalls: 0n });
  });

  test("Doff settles after the grace: events stamped before the Doff that arrive during it are billed", async () => {
    const { c, sessionId } = await donWithClaude("otel-dave", "claude-4");
    const dave = await h.daemon.token("agent", "otel-dave");
    const records = claudeRecords([{ session: "claude-4", seq: 1, input: 1000, output: 0 }]); // stamped now, before the Doff
    const doff = c.sessions.doff({ sessionId });
    await h.daemon.waitForLog((l) => l.msg === "doff waits for OTLP events stamped before it" && l.session_id === sessionId);
    const ex = exporter("proto", dave);
    expect((await send(ex, records)).code).toBe(ExportResultCode.SUCCESS);
    await ex.shutdown();
    const settled = (await doff).session!;
    expect(settled.status).toBe(SessionStatus.DOFFED);
    expect(settled.usage).toMatchObject({ inputTokens: 1000n });
    expect(settled.priceMicro).toBe(200n);
  });

  test("events of an unknown Claude session, of a closed session, of another agent's session, or sent by a collector are stored and never billed", async () => {
    const { c, sessionId } = await donWithClaude("otel-carol", "claude-3");
    const carol = await h.daemon.token("agent", "otel-carol");
    const mallory = await h.daemon.token("agent", "otel-mallory");
    const collector = await h.daemon.token("collector", "masques-collector");
    // Another agent's token naming carol's Claude session, and a collector forwarding it: not billed.
    for (const t of [mallory, collector]) {
      const ex = exporter("proto", t);
      expect((await send(ex, claudeRecords([{ session: "claude-3", seq: 10, input: 9999, output: 9999 }]))).code).toBe(ExportResultCode.SUCCESS);
      await ex.shutdown();
    }
    // Unknown Claude session: stored, not billed.
    const ex = exporter("proto", carol);
    expect((await send(ex, claudeRecords([{ session: "claude-unknown", seq: 1, input: 5, output: 5 }]))).code).toBe(ExportResultCode.SUCCESS);
    // An attribute value with a quote and a backslash is stored as sent (it used to break the group's insert: 503).
    expect((await send(ex, claudeRecords([], [{ session: "claude-quote", seq: 1, name: QUOTED_TOOL }]))).code).toBe(ExportResultCode.SUCCESS);
    expect((await c.sessions.getSession({ sessionId })).session!.usage).toMatchObject({ inputTokens: 0n, outputTokens: 0n });
    await c.sessions.doff({ sessionId });
    // After the Doff: late events (stamped after it) are stored, the settled session is untouched.
    expect((await send(ex, claudeRecords([{ session: "claude-3", seq: 11, input: 100, output: 100 }]))).code).toBe(ExportResultCode.SUCCESS);
    await ex.shutdown();
    const after = (await c.sessions.getSession({ sessionId })).session!;
    expect(after.usage).toMatchObject({ inputTokens: 0n, outputTokens: 0n });
    expect(after.priceMicro).toBe(0n);
  });
});

describe("OTLP/HTTP refusals", () => {
  const url = () => `http://${h.daemon.httpAddr}/v1/logs`;
  test("a malformed protobuf, bad JSON ids, an oversized or unauthenticated body is refused with a clear 4xx; a bad record is rejected per the partial-success rule", async () => {
    const auth = { authorization: `Bearer ${agentToken}` };
    const bad = await fetch(url(), { method: "POST", headers: { ...auth, "content-type": "application/x-protobuf" }, body: Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]) });
    expect(bad.status).toBe(400);
    expect(Buffer.from(await bad.arrayBuffer()).toString("latin1")).toContain("not a valid protobuf ExportLogsServiceRequest");
    const hex = await fetch(url(), {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ traceId: "zz-not-hex" }] }] }] }),
    });
    expect(hex.status).toBe(400);
    expect(((await hex.json()) as { message: string }).message).toMatch(/traceId: expected a hex string/);
    const big = await fetch(url(), { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: "x".repeat(70_000) });
    expect(big.status).toBe(413);
    const bomb = await fetch(url(), {
      method: "POST",
      headers: { ...auth, "content-type": "application/json", "content-encoding": "gzip" },
      body: gzipSync(Buffer.from(`{"resourceLogs":[],"pad":"${"a".repeat(200_000)}"}`)),
    });
    expect(bomb.status).toBe(413);
    expect(((await bomb.json()) as { message: string }).message).toMatch(/OTLP_MAX_BODY_BYTES/);
    const anon = await fetch(url(), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(anon.status).toBe(401);
    const media = await fetch(url(), { method: "POST", headers: { ...auth, "content-type": "text/plain" }, body: "{}" });
    expect(media.status).toBe(415);
    // One good and one unreadable api_request in one export: the good one is stored, the bad one
    // counted in partial_success with the reason.
    const mixed = await fetch(url(), {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({
        resourceLogs: [
          {
            scopeLogs: [
              {
                logRecords: [
                  { timeUnixNano: String(Date.now() * 1e6), body: { stringValue: "claude_code.api_request" }, attributes: [{ key: "session.id", value: { stringValue: "claude-mixed" } }, { key: "input_tokens", value: { stringValue: "12" } }] },
                  { timeUnixNano: String(Date.now() * 1e6), body: { stringValue: "claude_code.api_request" }, attributes: [{ key: "session.id", value: { stringValue: "claude-mixed" } }, { key: "input_tokens", value: { stringValue: "-4" } }] },
                ],
              },
            ],
          },
        ],
      }),
    });
    expect(mixed.status).toBe(200);
    const body = (await mixed.json()) as { partialSuccess?: { rejectedLogRecords?: string | number; errorMessage?: string } };
    expect(Number(body.partialSuccess?.rejectedLogRecords)).toBe(1);
    expect(body.partialSuccess?.errorMessage).toMatch(/input_tokens must be a non-negative integer/);
  });
});

describe("OTLP metrics in", () => {
  test("Claude Code's metrics from the real OTLP metric exporters (protobuf and JSON) are accepted and counted", async () => {
    for (const Exporter of [ProtoMetricExporter, JsonMetricExporter]) {
      const reader = new PeriodicExportingMetricReader({
        exporter: new Exporter({ url: `http://${h.daemon.httpAddr}/v1/metrics`, headers: { Authorization: `Bearer ${agentToken}` } }),
        exportIntervalMillis: 3_600_000,
      });
      const provider = new MeterProvider({ resource: resourceFromAttributes({ "service.name": "claude-code" }), readers: [reader] });
      const meter = provider.getMeter("com.anthropic.claude_code");
      meter.createCounter("claude_code.token.usage", { unit: "tokens" }).add(1200, { "session.id": "claude-1", type: "input", model: "claude-sonnet-4" });
      meter.createCounter("claude_code.cost.usage", { unit: "USD" }).add(0.01, { "session.id": "claude-1", model: "claude-sonnet-4" });
      // forceFlush rejects when the export is not answered with success.
      await provider.forceFlush();
      await provider.shutdown();
    }
    const text = await (await fetch(`http://${h.daemon.httpAddr}/metrics`)).text();
    expect(text).toMatch(/masques_otlp_records(?:_total)?\{[^}]*signal="metrics"[^}]*outcome="accepted"[^}]*\} [1-9]/);
  });
});

describe("telemetry out", () => {
  test("GET /metrics (no token on loopback) shows the RPCs just made and the OTLP records", async () => {
    const c = await h.as("agent", "otel-alice");
    await c.sessions.listMasques({});
    const text = await (await fetch(`http://${h.daemon.httpAddr}/metrics`)).text();
    expect(text).toMatch(/rpc_server_duration_count\{[^}]*rpc_method="ListMasques"[^}]*rpc_connect_rpc_error_code="OK"[^}]*\} [1-9]/);
    expect(text).toMatch(/rpc_method="Don"/);
    expect(text).toMatch(/masques_otlp_records(?:_total)?\{[^}]*outcome="billed"[^}]*\} [1-9]/);
    expect(text).toMatch(/process_memory_usage\{[^}]*\} [1-9]/);
    expect(text).toMatch(/masques_ledger_batches(?:_total)?\{[^}]*\} [1-9]/);
    expect(text).toMatch(/masques_reaper_actions(?:_total)?\{[^}]*action="idle"[^}]*\} \d/);
    // Ledger request latency by operation (the Don above wrote transfers; the streamer queried them).
    expect(text).toMatch(/db_client_operation_duration_count\{[^}]*db_system_name="tigerbeetle"[^}]*db_operation_name="createTransfers"[^}]*\} [1-9]/);
    expect(text).toMatch(/db_client_operation_duration_bucket\{[^}]*db_operation_name="queryTransfers"[^}]*\} [1-9]/);
    expect(text).toMatch(/masques_streamer_failures(?:_total)?\{[^}]*phase="start"[^}]*\} 0/);
  });

  test("readiness: ledger and control plane ok, analytics (embedded chDB) reported on its own", async () => {
    const r = await fetch(`http://${h.daemon.httpAddr}/readyz`);
    expect(r.status).toBe(200);
    const body = (await r.json()) as { ready: boolean; checks: Record<string, string> };
    expect(body).toMatchObject({ ready: true, checks: { ledger: "ok", controlplane: "ok", analytics: "ok" } });
  });

  test("every api_request and tool_result landed in api_requests exactly once (read after the daemon stops)", async () => {
    await h.daemon.shutdown();
    const sink = await ChdbSink.open({ path: path.join(h.daemon.dataDir, "chdb"), database: "masques" });
    try {
      const rows = await sink.query(
        "SELECT operation, count() AS n, sum(input_tokens) AS input FROM masques.api_requests FINAL WHERE JSONExtractString(attributes_json, 'session.id') = 'claude-1' GROUP BY operation ORDER BY operation",
      );
      expect(rows).toEqual([
        { operation: "api_request", n: "2", input: "3000" },
        { operation: "tool_result", n: "1", input: "0" },
      ]);
      const raw = await sink.query("SELECT count() AS n FROM masques.api_requests WHERE JSONExtractString(attributes_json, 'session.id') = 'claude-1'");
      expect(raw[0]!.n).toBe("3"); // no physical duplicate either: the retry was recognised
      const others = await sink.query("SELECT JSONExtractString(attributes_json, 'session.id') AS claude, count() AS n, max(session_id) != 0 AS bound FROM masques.api_requests FINAL WHERE claude IN ('claude-3', 'claude-unknown') GROUP BY claude ORDER BY claude");
      expect(others).toEqual([
        // seq 10 (sent by two principals: one event identity, one row) and seq 11.
        { claude: "claude-3", n: "2", bound: 1 },
        { claude: "claude-unknown", n: "1", bound: 0 },
      ]);
      const mixed = await sink.query("SELECT count() AS n FROM masques.api_requests WHERE JSONExtractString(attributes_json, 'session.id') = 'claude-mixed'");
      expect(mixed[0]!.n).toBe("1");
      const quoted = await sink.query("SELECT JSONExtractString(attributes_json, 'tool_name') AS tool FROM masques.api_requests FINAL WHERE JSONExtractString(attributes_json, 'session.id') = 'claude-quote'");
      expect(quoted).toEqual([{ tool: QUOTED_TOOL }]);
    } finally {
      await sink.close();
    }
    await h.daemon.start();
  }, 120_000);
});

describe("readiness without ClickHouse", () => {
  test("analytics unreachable: payments stay ready, analytics is reported not serving; OTLP events are still billed", async () => {
    const d = await startDaemon({ env: { CLICKHOUSE_URL: "http://127.0.0.1:9", OTLP_DOFF_GRACE_MS: "0" } });
    try {
      const r = await fetch(`http://${d.httpAddr}/readyz`);
      expect(r.status).toBe(200);
      const body = (await r.json()) as { ready: boolean; checks: Record<string, string> };
      expect(body.ready).toBe(true);
      expect(body.checks.analytics).toMatch(/^unreachable/);
      // Payments are unaffected: an OTLP-metered session is still billed from its events.
      const admin = await d.token("admin", "ops");
      const agent = await d.token("agent", "otel-erin");
      const transport = createGrpcTransport({ baseUrl: `http://${d.grpcAddr}`, interceptors: [bearer(agent)] });
      const adminT = createGrpcTransport({ baseUrl: `http://${d.grpcAddr}`, interceptors: [bearer(admin)] });
      const sessions = createClient(SessionService, transport);
      await createClient(AccountService, transport).openAgentWallet({ mode: WalletMode.PREPAID });
      await createClient(AccountService, adminT).deposit({ account: { ref: { case: "agentWallet", value: "otel-erin" } }, amountMicro: 1_000_000n, idempotencyKey: "fund-erin" });
      const sessionId = newSessionId();
      await sessions.don({ sessionId, masque: "researcher", claudeSessionId: "claude-5" });
      const ex = new ProtoLogExporter({ url: `http://${d.httpAddr}/v1/logs`, headers: { Authorization: `Bearer ${agent}` } });
      // Billed, then answered 503 (not stored): the exporter's retry is told to come back.
      expect((await send(ex, claudeRecords([{ session: "claude-5", seq: 1, input: 1000, output: 1000 }]))).code).toBe(ExportResultCode.FAILED);
      await ex.shutdown();
      expect((await sessions.getSession({ sessionId })).session!.usage).toMatchObject({ inputTokens: 1000n, outputTokens: 1000n });
      // gRPC health: the payments API serving, masques.analytics not.
      expect(await grpcHealth(d.grpcAddr, "")).toBe("SERVING");
      expect(await grpcHealth(d.grpcAddr, "masques.analytics")).toBe("NOT_SERVING");
    } finally {
      await d.stop();
    }
  }, 120_000);
});
