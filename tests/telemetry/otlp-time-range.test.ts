/**
 * Issue 18 (ADR 0118, amendment otlp-rows): a Claude Code record whose time api_requests cannot
 * hold (before 1970, e.g. an `event.timestamp` of 1969, or past 2^63 - 1 ns, DateTime64(9)'s end)
 * is refused with a reason naming the rule (OTLP partial success), and the export's other records
 * are read. Before, it became a row that ClickHouse refuses ("Cannot read DateTime" / "Decimal
 * math overflow"), which failed the insert of the whole group of exports it landed in (503 to
 * every one of them, its own exporter retrying it forever).
 */
import { describe, expect, test } from "vitest";
import { claudeEvents } from "../../src/telemetry/claude-events.js";
import { decodeLogs } from "../../src/telemetry/otlp.js";

const kv = (key: string, v: string) => ({ key, value: { stringValue: v } });
const record = (seq: string, time: { timeUnixNano?: string; timestamp?: string }) => ({
  ...(time.timeUnixNano !== undefined ? { timeUnixNano: time.timeUnixNano } : {}),
  body: { stringValue: "claude_code.api_request" },
  attributes: [
    kv("session.id", "claude-t"), kv("event.sequence", seq), kv("input_tokens", "10"), kv("output_tokens", "2"),
    ...(time.timestamp !== undefined ? [kv("event.timestamp", time.timestamp)] : []),
  ],
});

describe("OTLP record times outside what api_requests holds", () => {
  test("a time before 1970 or past 2^63 - 1 ns is refused with the rule; the other records are read", () => {
    const body = {
      resourceLogs: [{
        scopeLogs: [{
          logRecords: [
            record("1", { timeUnixNano: "1795939200000000000" }),
            record("2", { timestamp: "1969-12-31T23:59:59.500Z" }),
            record("3", { timeUnixNano: "9223372036854775808" }),
            record("4", { timeUnixNano: "9223372036854775807" }),
          ],
        }],
      }],
    };
    const req = decodeLogs(Buffer.from(JSON.stringify(body)), "json");
    const { events, refused } = claudeEvents(req);
    expect(events.map((e) => e.time_ns)).toEqual([1_795_939_200_000_000_000n, 9_223_372_036_854_775_807n]);
    expect(refused.map((r) => r.index)).toEqual([1, 2]);
    expect(refused[0]!.reason).toMatch(/record 1: time -500000000 ns is outside 1970-01-01 \.\. 2262-04-11/);
    expect(refused[1]!.reason).toMatch(/record 2: time -?\d+ ns is outside 1970-01-01 \.\. 2262-04-11/);
  });
});
