/**
 * Issue 18, bad input on OTLP ingest (ADR 0118 "bad input"):
 *  - a number an api_requests UInt64 column or the ledger cannot hold (a cost past 2^63 - 1
 *    micro-USD, "1e25" or "9e13" dollars; a token count, event.sequence past 2^63 - 1; a duration
 *    that is not a finite non-negative number) refuses that one record with a reason naming the
 *    attribute and the rule; the rest of the export is billed and stored. Before, "1e25" threw and
 *    failed the whole export (500, retried forever) and "9e13" was stored wrapped modulo 2^64;
 *  - an agent's events whose Claude session id no masque session was donned with are answered
 *    with a partial-success warning (0 rejected) naming the id; a collector's never are;
 *  - /v1/logs and /v1/metrics answer with an x-request-id and write the access line RPCs write.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { SessionStatus } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { ChdbSink } from "../../src/streamer/chdb-sink.js";
import { claudeEvents } from "../../src/telemetry/claude-events.js";
import { decodeLogs } from "../../src/telemetry/otlp.js";
import { newSessionId, startHarness, type Harness } from "../sessions/harness.js";

type Value = { stringValue: string } | { intValue: string } | { doubleValue: number };
const kv = (key: string, value: string | Value) => ({ key, value: typeof value === "string" ? { stringValue: value } : value });

/** One Claude Code api_request record (OTLP/JSON shape); `extra` adds or overrides attributes. */
function apiRequest(claude: string, seq: number, extra: Record<string, string | Value> = {}, time_ns = BigInt(Date.now()) * 1_000_000n) {
  const base: Record<string, string | Value> = {
    "event.name": "api_request", "session.id": claude, "event.sequence": { intValue: String(seq) }, model: "claude-sonnet-4",
    input_tokens: "1000", output_tokens: "10", cost_usd: "0.0123", duration_ms: "812",
  };
  const attributes = Object.entries({ ...base, ...extra }).map(([k, v]) => kv(k, v));
  return { timeUnixNano: time_ns.toString(), body: { stringValue: "claude_code.api_request" }, attributes };
}
const exportOf = (records: object[]) => ({ resourceLogs: [{ resource: { attributes: [kv("service.name", "claude-code")] }, scopeLogs: [{ logRecords: records }] }] });

describe("numbers api_requests or the ledger cannot hold refuse their record only", () => {
  test("cost, token counts, duration_ms and event.sequence out of range: one reason each, naming the attribute and the rule", () => {
    const records = [
      apiRequest("c", 1), // 0: fine
      apiRequest("c", 2, { cost_usd: "1e25" }), // 1: used to throw (whole export lost)
      apiRequest("c", 3, { cost_usd: "9e13" }), // 2: 9e19 micro-USD, stored wrapped before
      apiRequest("c", 4, { cost_usd: "90000000000000" }), // 3
      apiRequest("c", 5, { cost_usd: { doubleValue: 1e300 } }), // 4
      apiRequest("c", 6, { cost_usd: "9223372036854.775807" }), // 5: the largest cost: fine
      apiRequest("c", 7, { cost_usd: "9223372036854.7758075" }), // 6: rounds to 2^63 micro-USD
      apiRequest("c", 8, { input_tokens: "9223372036854775808" }), // 7
      apiRequest("c", 9, { cache_read_tokens: { intValue: "-5" } }), // 8
      apiRequest("c", 10, { cache_creation_tokens: "18446744073709551616" }), // 9
      apiRequest("c", 11, { duration_ms: "-1" }), // 10
      apiRequest("c", 12, { duration_ms: "1e400" }), // 11: a decimal past what a double holds
      apiRequest("c", 13, { duration_ms: "12 ms" }), // 12
      apiRequest("c", 0, { "event.sequence": "9223372036854775808" }), // 13
      apiRequest("c", 0, { "event.sequence": { doubleValue: 1.5 } }), // 14
      apiRequest("c", 16, { cost_usd: "1.5e-3", duration_ms: { doubleValue: 812.5 } }), // 15: fine
    ];
    const { events, refused } = claudeEvents(decodeLogs(Buffer.from(JSON.stringify(exportOf(records))), "json"));
    expect(events.map((e) => [e.cost_micro, e.duration_ms])).toEqual([
      [12_300n, 812],
      [(1n << 63n) - 1n, 812],
      [1_500n, 812.5],
    ]);
    const reasons = new Map(refused.map((r) => [r.index, r.reason]));
    expect([...reasons.keys()]).toEqual([1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    const costRule = /attribute cost_usd must be at most 9223372036854\.775807 USD \(2\^63 - 1 micro-USD, what the ledger and api_requests\.cost_micro hold\)/;
    for (const i of [1, 2, 3, 4, 6]) expect(reasons.get(i)).toMatch(costRule);
    expect(reasons.get(1)).toMatch(/^claude_code\.api_request record 1: .*got "1e25"$/);
    expect(reasons.get(7)).toMatch(/attribute input_tokens must be a non-negative integer below 2\^63, got "9223372036854775808"/);
    expect(reasons.get(8)).toMatch(/attribute cache_read_tokens must be a non-negative integer below 2\^63, got "-5"/);
    expect(reasons.get(9)).toMatch(/attribute cache_creation_tokens must be a non-negative integer below 2\^63/);
    expect(reasons.get(10)).toMatch(/attribute duration_ms must be a non-negative finite number of milliseconds, got "-1"/);
    expect(reasons.get(11)).toMatch(/attribute duration_ms must be .*got "1e400"/);
    expect(reasons.get(12)).toMatch(/attribute duration_ms must be .*got "12 ms"/);
    expect(reasons.get(13)).toMatch(/attribute event\.sequence must be a non-negative integer below 2\^63, got "9223372036854775808"/);
    expect(reasons.get(14)).toMatch(/attribute event\.sequence must be a non-negative integer below 2\^63, got "1\.5"/);
  });
});

let h: Harness;
let agentToken: string;
const url = (signal: "logs" | "metrics") => `http://${h.daemon.httpAddr}/v1/${signal}`;

beforeAll(async () => {
  h = await startHarness({ env: { OTLP_DOFF_GRACE_MS: "0" } });
  agentToken = await h.daemon.token("agent", "edge-alice");
}, 120_000);
afterAll(async () => {
  await h?.stop();
});

interface ExportAnswer {
  status: number;
  requestId: string | null;
  body: { partialSuccess?: { rejectedLogRecords?: number | string; errorMessage?: string }; message?: string };
}
async function post(signal: "logs" | "metrics", token: string | null, body: object, headers: Record<string, string> = {}): Promise<ExportAnswer> {
  const res = await fetch(url(signal), {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, requestId: res.headers.get("x-request-id"), body: (await res.json()) as ExportAnswer["body"] };
}

describe("OTLP ingest answers bad input per record", () => {
  test("an export with costs too large: those records are refused with the rule, the others billed and stored", async () => {
    const c = await h.fundedAgent("edge-alice", 5_000_000n);
    const sessionId = newSessionId();
    const don = await c.sessions.don({ sessionId, masque: "researcher", claudeSessionId: "claude-edge" });
    expect(don.session!.status).toBe(SessionStatus.OPEN);
    const r = await post("logs", agentToken, exportOf([
      apiRequest("claude-edge", 1),
      apiRequest("claude-edge", 2, { cost_usd: "1e25" }),
      apiRequest("claude-edge", 3, { cost_usd: "9e13" }),
      apiRequest("claude-edge", 4, { input_tokens: "3000" }),
    ]));
    expect(r.status).toBe(200);
    expect(Number(r.body.partialSuccess?.rejectedLogRecords)).toBe(2);
    expect(r.body.partialSuccess?.errorMessage).toMatch(/record 1: attribute cost_usd must be at most 9223372036854\.775807 USD .*got "1e25"/);
    expect(r.body.partialSuccess?.errorMessage).toMatch(/record 2: attribute cost_usd must be at most .*got "9e13"/);
    const got = await c.sessions.getSession({ sessionId });
    expect(got.session!.usage).toMatchObject({ inputTokens: 4000n, outputTokens: 20n });
  });

  test("an agent's events naming a Claude session no masque session was donned with: stored, not billed, and a warning says so; a collector gets none", async () => {
    const records = [apiRequest("claude-typo", 1), apiRequest("claude-typo", 2), apiRequest("claude-typo", 3)];
    const r = await post("logs", agentToken, exportOf(records));
    expect(r.status).toBe(200);
    // OTLP: a warning on a full success is partial_success with rejected_log_records = 0.
    expect(Number(r.body.partialSuccess?.rejectedLogRecords ?? 0)).toBe(0);
    expect(r.body.partialSuccess?.errorMessage).toBe(
      '3 event(s) stored, not billed: no masque session was donned with Claude session id "claude-typo" (Don with that --claude-session-id to bill them)',
    );
    // Two unknown ids and a known one in one export: the unknown ones are named, the billed one is not.
    const mixed = await post("logs", agentToken, exportOf([apiRequest("claude-typo", 4), apiRequest("claude-typo-2", 1), apiRequest("claude-edge", 5)]));
    expect(mixed.body.partialSuccess?.errorMessage).toMatch(/^2 event\(s\) stored, not billed: no masque session was donned with Claude session ids "claude-typo", "claude-typo-2" /);
    // A collector's events are never billed by design: nothing to warn about.
    const collector = await h.daemon.token("collector", "edge-collector");
    const fromCollector = await post("logs", collector, exportOf([apiRequest("claude-typo", 6)]));
    expect(fromCollector.status).toBe(200);
    expect(fromCollector.body).toEqual({});
  });

  test("/v1/logs and /v1/metrics answer with x-request-id and write the RPC access line", async () => {
    const ok = await post("logs", agentToken, exportOf([apiRequest("claude-edge", 20)]), { "x-request-id": "otlp-edge-req-1" });
    expect(ok.status).toBe(200);
    expect(ok.requestId).toBe("otlp-edge-req-1");
    const line = await h.daemon.waitForLog((l) => l.request_id === "otlp-edge-req-1" && l.msg === "rpc");
    expect(line).toMatchObject({
      level: "info", rpc: "opentelemetry.proto.collector.logs.v1.LogsService/Export", protocol: "otlp-http", principal: "agent:edge-alice", code: "OK",
    });
    expect(typeof line.duration_ms).toBe("number");

    // No (or an unusable) x-request-id: one is made, as for RPCs.
    const metrics = await post("metrics", agentToken, { resourceMetrics: [] }, { "x-request-id": "bad id with spaces" });
    expect(metrics.status).toBe(200);
    expect(metrics.requestId).toMatch(/^[0-9a-f-]{36}$/);
    await h.daemon.waitForLog((l) => l.request_id === metrics.requestId && l.msg === "rpc" && l.rpc === "opentelemetry.proto.collector.metrics.v1.MetricsService/Export");

    // Refusals carry the id too, at the level RPCs use for them.
    const anon = await post("logs", null, {});
    expect(anon.status).toBe(401);
    expect(anon.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await h.daemon.waitForLog((l) => l.request_id === anon.requestId)).toMatchObject({ level: "info", msg: "rpc rejected", code: "Unauthenticated" });
    const media = await fetch(url("metrics"), { method: "POST", headers: { authorization: `Bearer ${agentToken}`, "content-type": "text/plain", "x-request-id": "otlp-edge-req-2" }, body: "{}" });
    expect(media.status).toBe(415);
    expect(media.headers.get("x-request-id")).toBe("otlp-edge-req-2");
    const failed = await h.daemon.waitForLog((l) => l.request_id === "otlp-edge-req-2");
    expect(failed).toMatchObject({ level: "info", msg: "rpc failed", code: "InvalidArgument" });
    expect(String(failed.reason)).toMatch(/content-type "text\/plain" not supported/);
  });

  test("api_requests holds the good records once and nothing wrapped (read after the daemon stops)", async () => {
    await h.daemon.shutdown();
    const sink = await ChdbSink.open({ path: path.join(h.daemon.dataDir, "chdb"), database: "masques" });
    try {
      const rows = await sink.query(
        "SELECT JSONExtractString(attributes_json, 'event.sequence') AS seq, cost_micro, session_id != 0 AS bound FROM masques.api_requests FINAL WHERE JSONExtractString(attributes_json, 'session.id') = 'claude-edge' ORDER BY toUInt64(seq)",
      );
      expect(rows).toEqual([
        { seq: "1", cost_micro: "12300", bound: 1 },
        { seq: "4", cost_micro: "12300", bound: 1 },
        { seq: "5", cost_micro: "12300", bound: 1 },
        { seq: "20", cost_micro: "12300", bound: 1 },
      ]);
      const typo = await sink.query("SELECT count() AS n, max(session_id) AS s FROM masques.api_requests FINAL WHERE JSONExtractString(attributes_json, 'session.id') = 'claude-typo'");
      expect(typo).toEqual([{ n: "5", s: "0" }]);
    } finally {
      await sink.close();
    }
    await h.daemon.start();
  }, 120_000);
});
