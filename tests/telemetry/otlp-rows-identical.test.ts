/**
 * Issue 18 / ADR 0118 (amendment otlp-rows): OTLP ingest reads Claude Code's records in one pass
 * and builds each api_requests row as one TSV line. What it stores must not change: for random
 * Claude-shaped exports with hostile attribute values (tabs, newlines, backslashes, quotes,
 * controls, lone surrogates, emoji, over-long values, repeated and integer-like keys,
 * `__proto__`, more than 128 attributes, ints as Long past 2^53, exponent costs), decoded from
 * protobuf and from OTLP/JSON, the events, refusals and rows equal those of the reading as of
 * 3471590, kept below as the reference (Map of attributes, createHash identity, cell rows through
 * the cell-array TSV encoder), plus the rules added since: a time before 1970 or past 2^63 - 1 ns
 * is refused (otlp-time-range.test.ts); so are a cost past 2^63 - 1 micro-USD, a duration_ms that
 * is not a finite non-negative number and an event.sequence that is not an int64 >= 0
 * (otlp-bad-input.test.ts).
 */
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { claudeEvents, type ClaudeEvent } from "../../src/telemetry/claude-events.js";
import { ApiRowBuilder } from "../../src/telemetry/ingest.js";
import { decodeLogs, type AnyValue, type ExportLogsServiceRequest, type KeyValue, type LogRecord } from "../../src/telemetry/otlp.js";

// ---------------------------------------------------------------------------------------------
// The reference: claude-events.ts, otlp.ts (anyValueText, nanos), ingest.ts (row, dateTime64,
// attributesJson) and sink.ts (encodeTsv) as of 3471590.
// ---------------------------------------------------------------------------------------------
type RefEvent = Omit<ClaudeEvent, "attributes_json"> & { attributes: Map<string, string> };

function refAnyValueText(v: AnyValue | null | undefined): string {
  if (!v) return "";
  if (v.stringValue !== undefined && v.stringValue !== null && v.stringValue !== "") return v.stringValue;
  if (v.intValue !== undefined && v.intValue !== null) return v.intValue.toString();
  if (v.doubleValue !== undefined && v.doubleValue !== null) return String(v.doubleValue);
  if (v.boolValue !== undefined && v.boolValue !== null) return v.boolValue ? "true" : "false";
  return v.stringValue ?? "";
}
function refNanos(v: number | { toString(): string } | null | undefined): bigint {
  if (v === undefined || v === null) return 0n;
  try {
    return BigInt(v.toString());
  } catch {
    return 0n;
  }
}
const REF_METERED: ReadonlySet<string> = new Set(["claude_code.api_request", "claude_code.tool_result"]);
const REF_UINT_RE = /^\d{1,19}$/;
const REF_DECIMAL_RE = /^\d{1,12}(?:\.\d{1,18})?(?:[eE][-+]?\d{1,3})?$/;
function refAttrs(list: readonly KeyValue[] | null | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of list ?? []) {
    if (!kv.key || m.size >= 128) continue;
    m.set(kv.key, refAnyValueText(kv.value).slice(0, 1024));
  }
  return m;
}
function refUint(a: Map<string, string>, key: string, reasons: string[]): bigint {
  const t = a.get(key);
  if (t === undefined || t === "") return 0n;
  if (!REF_UINT_RE.test(t) || BigInt(t) > (1n << 63n) - 1n) {
    reasons.push(`attribute ${key} must be a non-negative integer below 2^63, got ${JSON.stringify(t.slice(0, 40))}`);
    return 0n;
  }
  return BigInt(t);
}
/**
 * Decimal dollars -> micro-USD by moving the decimal point in the text (added with ADR 0118 "bad
 * input": any length and exponent read exactly; 3471590 read at most 12 digits before the point
 * and sent exponents through a double, which threw past 1e21). "too large": past 10^100.
 */
function refUsdToMicro(text: string): bigint | "too large" | null {
  const m = /^(\d+)(?:\.(\d+))?(?:[eE]([-+]?\d+))?$/.exec(text);
  if (!m) return null;
  const digits = m[1]! + (m[2] ?? "");
  const point = m[1]!.length + Number(m[3] ?? "0"); // the point sits before digits[point]
  if (/^0*$/.test(digits)) return 0n;
  if (point - digits.length > 100) return "too large";
  if (point < -100) return 0n;
  const shifted = point >= digits.length ? digits + "0".repeat(point - digits.length) + "." : point <= 0 ? "0." + "0".repeat(-point) + digits : digits.slice(0, point) + "." + digits.slice(point);
  const [whole, frac] = shifted.split(".");
  const micro7 = BigInt(whole!) * 10_000_000n + BigInt((frac! + "0000000").slice(0, 7));
  return (micro7 + 5n) / 10n;
}
function refHex(b: Uint8Array | null | undefined): string {
  return b && b.length > 0 ? Buffer.from(b).toString("hex") : "";
}
function refNameOf(r: LogRecord, a: Map<string, string>): string {
  const body = refAnyValueText(r.body);
  if (body.startsWith("claude_code.")) return body;
  if (r.eventName) return r.eventName.startsWith("claude_code.") ? r.eventName : `claude_code.${r.eventName}`;
  const n = a.get("event.name");
  return n ? (n.startsWith("claude_code.") ? n : `claude_code.${n}`) : "";
}
function refIdentity(claude: string, name: string, a: Map<string, string>, time_ns: bigint): { event_id: string; seq: bigint } {
  const h = createHash("sha256").update("claude_code\0").update(claude).update("\0").update(name).update("\0");
  const sequence = a.get("event.sequence");
  if (sequence !== undefined && sequence !== "") h.update(`seq=${sequence}`);
  else {
    h.update(`t=${time_ns}`);
    for (const k of [...a.keys()].sort()) h.update(`\0${k}=${a.get(k)!}`);
  }
  const d = h.digest();
  return { event_id: d.subarray(0, 16).toString("hex"), seq: (1n << 63n) | (d.readBigUInt64BE(0) >> 1n) };
}
function refClaudeEvents(req: ExportLogsServiceRequest): { events: RefEvent[]; refused: { index: number; reason: string }[]; records: number } {
  const events: RefEvent[] = [];
  const refused: { index: number; reason: string }[] = [];
  let index = 0;
  for (const rl of req.resourceLogs ?? []) {
    const resource = refAttrs(rl.resource?.attributes);
    const service_name = resource.get("service.name") ?? "";
    for (const sl of rl.scopeLogs ?? []) {
      for (const r of sl.logRecords ?? []) {
        const i = index++;
        const a = refAttrs(r.attributes);
        const name = refNameOf(r, a);
        if (!REF_METERED.has(name)) continue;
        const reasons: string[] = [];
        const claude = a.get("session.id") ?? resource.get("session.id") ?? "";
        if (claude === "") reasons.push("attribute session.id is required");
        let time_ns = refNanos(r.timeUnixNano);
        if (time_ns === 0n) {
          const ts = Date.parse(a.get("event.timestamp") ?? "");
          time_ns = Number.isFinite(ts) ? BigInt(ts) * 1_000_000n : refNanos(r.observedTimeUnixNano);
        }
        if (time_ns === 0n) reasons.push("no time: set time_unix_nano or the event.timestamp attribute");
        // Added with this change (not in 3471590): such a row failed its whole group's insert.
        else if (time_ns < 0n || time_ns > (1n << 63n) - 1n) reasons.push(`time ${time_ns} ns is outside 1970-01-01 .. 2262-04-11, what api_requests.timestamp (DateTime64(9)) holds`);
        const input_tokens = refUint(a, "input_tokens", reasons);
        const output_tokens = refUint(a, "output_tokens", reasons);
        const cache_read_tokens = refUint(a, "cache_read_tokens", reasons);
        const cache_creation_tokens = refUint(a, "cache_creation_tokens", reasons);
        const costText = a.get("cost_usd") ?? "";
        const cost_micro = costText === "" ? 0n : refUsdToMicro(costText);
        if (cost_micro === null) reasons.push(`attribute cost_usd must be a non-negative decimal, got ${JSON.stringify(costText.slice(0, 40))}`);
        // Added with ADR 0118 "bad input" (not in 3471590): a cost past 2^63 - 1 micro-USD (stored
        // wrapped before), a duration that is not a finite non-negative number (stored as 0
        // before), an event.sequence that is not an int64 >= 0 (hashed as sent before).
        else if (cost_micro === "too large" || cost_micro > (1n << 63n) - 1n) {
          reasons.push(`attribute cost_usd must be at most 9223372036854.775807 USD (2^63 - 1 micro-USD, what the ledger and api_requests.cost_micro hold), got ${JSON.stringify(costText.slice(0, 40))}`);
        }
        const durationText = a.get("duration_ms") ?? "";
        const duration_ms = durationText === "" ? 0 : Number(durationText);
        if (durationText !== "" && !(/^\d+(\.\d+)?([eE][-+]?\d+)?$/.test(durationText) && Number.isFinite(duration_ms))) {
          reasons.push(`attribute duration_ms must be a non-negative finite number of milliseconds, got ${JSON.stringify(durationText.slice(0, 40))}`);
        }
        refUint(a, "event.sequence", reasons);
        if (reasons.length > 0) {
          refused.push({ index: i, reason: `${name} record ${i}: ${reasons.join("; ")}` });
          continue;
        }
        const { event_id, seq } = refIdentity(claude, name, a, time_ns);
        events.push({
          event_id, seq, name: name as RefEvent["name"], claude_session_id: claude, time_ns, model: a.get("model") ?? "",
          input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, cost_micro: typeof cost_micro === "bigint" ? cost_micro : 0n,
          duration_ms,
          tool_name: a.get("tool_name") ?? "", success: (a.get("success") ?? "true") !== "false", service_name,
          trace_id: refHex(r.traceId), span_id: refHex(r.spanId), attributes: a,
        });
      }
    }
  }
  return { events, refused, records: index };
}
function refDateTime64(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString();
  const frac = (ns % 1_000_000_000n).toString().padStart(9, "0");
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${frac}`;
}
function refRow(e: RefEvent, session_id: bigint, agent_id: string): (string | number | bigint)[] {
  return [
    refDateTime64(e.time_ns), e.event_id, session_id, agent_id, e.service_name, e.model,
    e.name === "claude_code.api_request" ? "api_request" : "tool_result", e.success ? 200 : 500, e.duration_ms,
    e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_creation_tokens, e.cost_micro, e.trace_id, e.span_id,
    JSON.stringify(Object.fromEntries(e.attributes)),
  ];
}
function refEscapeTsv(s: string): string {
  if (!/[\\\t\n\r]/.test(s)) return s;
  return s.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r");
}
function refEncodeTsv(rows: readonly (readonly (string | number | bigint | boolean)[])[]): string {
  const lines = rows.map((row) =>
    row.map((v) => (typeof v === "bigint" ? v.toString() : typeof v === "number" ? "" + v : typeof v === "string" ? refEscapeTsv(v) : v ? "1" : "0")).join("\t"),
  );
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}

// ---------------------------------------------------------------------------------------------
// Random Claude-shaped exports with hostile values.
// ---------------------------------------------------------------------------------------------
const HOSTILE_CHARS = ["\t", "\n", "\r", "\\", '"', "'", "\u0000", "\u001f", "\u007f", "\u2028", "é", "日本", "😀", "\ud800", "\udc00", "{", "}", ":", ",", " "];
const hostileText = fc
  .array(fc.oneof(fc.constantFrom(...HOSTILE_CHARS), fc.string({ maxLength: 6 }), fc.string({ unit: "grapheme", maxLength: 3 })), { maxLength: 8 })
  .map((parts) => parts.join(""));
const numericText = fc.oneof(
  fc.bigInt({ min: 0n, max: (1n << 64n) + 5n }).map(String),
  fc.constantFrom("", "0", "007", "1200", "9223372036854775807", "9223372036854775808", "12345678901234567890", "-1", "1.5", " 1", "1e3"),
);
const costText = fc.oneof(
  fc.constantFrom("", "0", "0.0081", "0.00000049", "0.0000005", "12.3456785", "99999999.9999999", "123456789.5", "999999999999.999999999999999999", "1e-7", "5e-7", "1.5E2", "1e25", "1e999", "-1", ".5", "abc"),
  fc.tuple(fc.nat({ max: 999_999_999 }), fc.nat({ max: 99_999_999 })).map(([w, f]) => `${w}.${f}`),
  // Around the largest cost (2^63 - 1 micro-USD) and past it, with and without exponents.
  fc.constantFrom("9e13", "90000000000000", "9223372036854.775807", "9223372036854.7758074", "9223372036854.7758075", "0.5e-3", "00012.5e2", "1e-999", "1234567890123456789012345", "1e21", "9.2e12"),
  fc.tuple(fc.bigInt({ min: 0n, max: 1n << 70n }), fc.integer({ min: -12, max: 12 })).map(([d, e]) => `${d}e${e}`),
);
const KEYS = [
  "event.name", "session.id", "event.timestamp", "event.sequence", "prompt.id", "model", "input_tokens", "output_tokens",
  "cache_read_tokens", "cache_creation_tokens", "cost_usd", "duration_ms", "tool_name", "success", "organization.id",
  "user.email", "terminal.type", "app.version", "0", "12", "1a", "4294967295", "__proto__", "toString", "", 'q"uote', "tab\tkey", "é",
];
/** An AnyValue as protobufjs's fromObject takes it (OTLP/JSON shape, ids excepted). */
const anyValue = (text: fc.Arbitrary<string>) =>
  fc.oneof(
    { weight: 6, arbitrary: text.map((s) => ({ stringValue: s })) },
    { weight: 2, arbitrary: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map((n) => ({ intValue: n.toString() })) },
    { weight: 1, arbitrary: fc.integer({ min: -100_000, max: 100_000 }).map((n) => ({ intValue: n })) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 32n, 2n ** 32n - 1n, -(2n ** 32n), -(2n ** 53n) + 1n, -(2n ** 53n), -(2n ** 53n) - 1n)
        .map((n) => ({ intValue: n.toString() })),
    },
    { weight: 1, arbitrary: fc.double({ noNaN: false }).map((d) => ({ doubleValue: d })) },
    { weight: 1, arbitrary: fc.boolean().map((b) => ({ boolValue: b })) },
    { weight: 1, arbitrary: fc.constant({}) },
  );
const valueFor = (key: string) =>
  key === "event.name"
    ? fc.oneof(fc.constantFrom("api_request", "tool_result", "claude_code.api_request", "user_prompt", ""), hostileText).map((s) => ({ stringValue: s }))
    : key === "cost_usd"
      ? fc.oneof({ weight: 4, arbitrary: costText.map((s) => ({ stringValue: s })) }, { weight: 1, arbitrary: fc.double({ noNaN: false }).map((d) => ({ doubleValue: d })) })
      : key.endsWith("_tokens") || key === "duration_ms" || key === "event.sequence"
        ? // Mostly numbers: a hostile value refuses the record (duration_ms and event.sequence too,
          // ADR 0118 "bad input"), and the metered path must still be reached often.
          fc.oneof({ weight: 3, arbitrary: numericText.map((s) => ({ stringValue: s })) }, { weight: 1, arbitrary: anyValue(hostileText) })
        : key === "event.timestamp"
          ? fc.constantFrom("2026-11-30T08:00:00.123Z", "1969-12-31T23:59:59.500Z", "not a date", "").map((s) => ({ stringValue: s }))
          : anyValue(fc.oneof(hostileText, fc.string({ minLength: 1020, maxLength: 1100 })));
const keyValue = fc.oneof(fc.constantFrom(...KEYS), hostileText).chain((key) => valueFor(key).map((value) => ({ key, value })));
const attributes = fc.oneof(
  { weight: 8, arbitrary: fc.array(keyValue, { maxLength: 24 }) },
  { weight: 1, arbitrary: fc.array(keyValue, { minLength: 120, maxLength: 140 }) },
  // Distinct keys past the 128 kept: the first 128 are read, the rest dropped.
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 126, max: 134 }), fc.array(keyValue, { maxLength: 12 }))
      .map(([n, known]) => [...Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: { stringValue: `v${i}` } })), ...known]),
  },
);
const time = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom("0", "1", "999999999", "1795939200000000000", "1795939200999999999", "18446744073709551615", "9223372036854775808"),
  fc.bigInt({ min: 1_700_000_000_000_000_000n, max: 1_900_000_000_000_000_000n }).map(String),
);
const record = fc.record(
  {
    body: fc.oneof(fc.constantFrom("claude_code.api_request", "claude_code.tool_result", "claude_code.user_prompt", "hello"), hostileText).map((s) => ({ stringValue: s })),
    eventName: fc.constantFrom("", "api_request", "claude_code.tool_result", "tool_decision"),
    timeUnixNano: time,
    observedTimeUnixNano: time,
    attributes,
    traceId: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString("hex")),
    spanId: fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) => Buffer.from(b).toString("hex")),
  },
  { requiredKeys: ["attributes"] },
);
const exportRequest = fc.array(
  fc.record({
    resource: fc.record({ attributes: fc.array(fc.oneof(keyValue, fc.constantFrom("service.name", "session.id").chain((key) => anyValue(hostileText).map((value) => ({ key, value })))), { maxLength: 6 }) }),
    scopeLogs: fc.array(fc.record({ logRecords: fc.array(record, { maxLength: 6 }) }), { minLength: 1, maxLength: 2 }),
  }),
  { minLength: 1, maxLength: 2 },
).map((resourceLogs) => ({ resourceLogs }));

interface ProtobufEncoder {
  encode(m: object): { finish(): Uint8Array };
  fromObject(o: Record<string, unknown>): object;
}
const ExportLogs = (
  createRequire(import.meta.url)("@opentelemetry/otlp-transformer/build/src/generated/root.js") as {
    opentelemetry: { proto: { collector: { logs: { v1: { ExportLogsServiceRequest: ProtobufEncoder } } } } };
  }
).opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest;

/** The decoded request both readings take, as the daemon decodes it (protobuf or OTLP/JSON). */
function decoded(body: object, encoding: "protobuf" | "json"): ExportLogsServiceRequest {
  const json = Buffer.from(JSON.stringify(body));
  if (encoding === "json") return decodeLogs(json, "json");
  return decodeLogs(Buffer.from(ExportLogs.encode(decodeLogs(json, "json")).finish()), "protobuf");
}

type Outcome<T> = { ok: T } | { threw: string };
function attempt<T>(f: () => T): Outcome<T> {
  try {
    return { ok: f() };
  } catch (err) {
    return { threw: `${(err as Error).name}: ${(err as Error).message}` };
  }
}

const sessionHex = fc.oneof(fc.constant(null), fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString("hex")));
const agentId = fc.oneof(fc.constantFrom("otel-alice", ""), hostileText);

describe("OTLP rows are byte-identical to the reference reading", () => {
  for (const encoding of ["protobuf", "json"] as const) {
    test(`random hostile Claude-shaped exports (${encoding}): same events, refusals and api_requests lines`, () => {
      let metered = 0;
      fc.assert(
        fc.property(exportRequest, fc.array(sessionHex, { minLength: 1, maxLength: 3 }), fc.array(agentId, { minLength: 1, maxLength: 3 }), (body, sessions, agents) => {
          const req = decoded(body, encoding);
          const ref = attempt(() => refClaudeEvents(req));
          const got = attempt(() => claudeEvents(req));
          if ("threw" in ref) {
            expect(got).toEqual(ref);
            return;
          }
          if (!("ok" in got)) throw new Error(`the reference read the export, the new reading threw: ${got.threw}`);
          expect(got.ok.refused).toEqual(ref.ok.refused);
          expect(got.ok.records).toBe(ref.ok.records);
          expect(got.ok.events.length).toBe(ref.ok.events.length);
          const rows = new ApiRowBuilder();
          ref.ok.events.forEach((r, i) => {
            const g = got.ok.events[i]!;
            // One builder per export, rows of several sessions and agents (its caches must follow).
            const session = sessions[i % sessions.length]!;
            const agent = agents[i % agents.length]!;
            const { attributes, ...rest } = r;
            const { attributes_json, ...gotRest } = g;
            expect(gotRest).toEqual(rest);
            expect(attributes_json).toBe(JSON.stringify(Object.fromEntries(attributes)));
            const want = attempt(() => refEncodeTsv([refRow(r, session === null ? 0n : BigInt(`0x${session}`), agent)]));
            const line = attempt(() => rows.row(g, session, agent));
            if ("threw" in want) expect(line).toEqual(want);
            else {
              if (!("ok" in line)) throw new Error(`the reference encoded the row, the builder threw: ${line.threw}`);
              expect(line.ok.line.text + "\n").toBe(want.ok);
              expect(line.ok.request_id).toBe(r.event_id);
              expect(line.ok.day).toBe(want.ok.slice(0, 10));
            }
            metered++;
          });
        }),
        { numRuns: 600 },
      );
      // The generator must reach the metered path (else the comparison proves little).
      expect(metered).toBeGreaterThan(100);
    });
  }

  test("Claude Code's own shape: ints sent as protobuf ints (Long), many events of one second, one session", () => {
    const kv = (key: string, v: string | number) => ({ key, value: typeof v === "number" ? { intValue: v } : { stringValue: v } });
    const logRecords = Array.from({ length: 300 }, (_, i) => ({
      timeUnixNano: (1_795_939_200_000_000_000n + BigInt(i) * 7_000_003n).toString(),
      body: { stringValue: i % 3 === 0 ? "claude_code.tool_result" : "claude_code.api_request" },
      attributes: [
        kv("event.name", i % 3 === 0 ? "tool_result" : "api_request"), kv("session.id", "claude-1"), kv("event.sequence", i),
        kv("prompt.id", `p-${i}`), kv("model", "claude-sonnet-4"), kv("input_tokens", 1200 + i), kv("output_tokens", "300"),
        kv("cache_read_tokens", 100), kv("cache_creation_tokens", "0"), kv("cost_usd", `0.00${81 + i}`), kv("duration_ms", 900 + i),
        kv("tool_name", 'Bash "ls"\t\\'), kv("success", i % 5 === 0 ? "false" : "true"),
      ],
    }));
    const body = { resourceLogs: [{ resource: { attributes: [kv("service.name", "claude-code")] }, scopeLogs: [{ logRecords }] }] };
    for (const encoding of ["protobuf", "json"] as const) {
      const req = decoded(body, encoding);
      const ref = refClaudeEvents(req);
      const got = claudeEvents(req);
      expect(got.events.length).toBe(300);
      const rows = new ApiRowBuilder();
      const session = "0123456789abcdef0123456789abcdef";
      const want = refEncodeTsv(ref.events.map((e) => refRow(e, BigInt(`0x${session}`), "otel-alice")));
      expect(got.events.map((e) => rows.row(e, session, "otel-alice").line.text + "\n").join("")).toBe(want);
    }
  });
});
