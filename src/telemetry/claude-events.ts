/**
 * Claude Code's OpenTelemetry events (logs signal) -> metering events. Pure.
 *
 * Claude Code exports each event as one log record whose body is the event name
 * (`claude_code.api_request`, `claude_code.tool_result`, …) and whose attributes carry
 * `event.name` (without the prefix), `session.id`, `event.timestamp`, `event.sequence`,
 * `prompt.id` and the event's own fields (model, input_tokens, output_tokens, cache_read_tokens,
 * cache_creation_tokens, cost_usd, duration_ms; tool_name, success for tool results). Numbers
 * may arrive as strings or as ints / doubles: both are read exactly.
 *
 * Event identity (ADR 0115, docs/telemetry.md): an exporter's retry resends the same records, so
 * the identity is a hash of what the event says about itself, never of the request:
 *   with `event.sequence`: sha256("claude_code", session.id, event name, event.sequence)
 *   without:               sha256("claude_code", session.id, event name, time_unix_nano,
 *                                 every attribute as sorted key=value pairs)
 * The first 128 bits are the event id (32 hex, the api_requests.request_id); its first 63 bits
 * with the top bit set are the usage `seq` on the masque session (RecordUsage seqs from clients
 * are small counters, so the two ranges never meet in practice; a collision would be answered
 * SEQ_REUSED, never billed twice).
 */
import { createHash } from "node:crypto";
import { anyValueText, nanos, type ExportLogsServiceRequest, type KeyValue, type LogRecord } from "./otlp.js";

export type ClaudeEventName = "claude_code.api_request" | "claude_code.tool_result";
const METERED: ReadonlySet<string> = new Set<ClaudeEventName>(["claude_code.api_request", "claude_code.tool_result"]);

/** One metering event read from a log record. */
export interface ClaudeEvent {
  event_id: string;
  seq: bigint;
  name: ClaudeEventName;
  claude_session_id: string;
  time_ns: bigint;
  model: string;
  input_tokens: bigint;
  output_tokens: bigint;
  cache_read_tokens: bigint;
  cache_creation_tokens: bigint;
  /** Cost Claude Code reports, micro-USD (rounded half up from its decimal dollars). */
  cost_micro: bigint;
  duration_ms: number;
  tool_name: string;
  success: boolean;
  service_name: string;
  trace_id: string;
  span_id: string;
  /** Every attribute as text (stored in api_requests.attributes_json, a JSON object). */
  attributes: Map<string, string>;
}

/** A log record that names a metered event but cannot be read: its index and why. */
export interface RefusedRecord {
  index: number;
  reason: string;
}

const UINT_RE = /^\d{1,19}$/;
const DECIMAL_RE = /^\d{1,12}(?:\.\d{1,18})?(?:[eE][-+]?\d{1,3})?$/;
const MAX_ATTRIBUTES = 128;
const MAX_TEXT = 1024;

function attrs(list: readonly KeyValue[] | null | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of list ?? []) {
    if (!kv.key || m.size >= MAX_ATTRIBUTES) continue;
    m.set(kv.key, anyValueText(kv.value).slice(0, MAX_TEXT));
  }
  return m;
}

function uint(a: Map<string, string>, key: string, reasons: string[]): bigint {
  const t = a.get(key);
  if (t === undefined || t === "") return 0n;
  if (!UINT_RE.test(t) || BigInt(t) > (1n << 63n) - 1n) {
    reasons.push(`attribute ${key} must be a non-negative integer below 2^63, got ${JSON.stringify(t.slice(0, 40))}`);
    return 0n;
  }
  return BigInt(t);
}

/** Decimal dollars -> micro-USD, exact up to 6 places, half up past them; no float arithmetic. */
export function usdToMicro(text: string): bigint | null {
  if (!DECIMAL_RE.test(text)) return null;
  let t = text;
  if (/[eE]/.test(t)) {
    const n = Number(t);
    if (!Number.isFinite(n) || n < 0) return null;
    t = n.toFixed(12);
  }
  const [whole, frac = ""] = t.split(".");
  const padded = (frac + "0000000").slice(0, 7);
  const micro7 = BigInt(whole!) * 10_000_000n + BigInt(padded);
  return (micro7 + 5n) / 10n;
}

function hex(b: Uint8Array | null | undefined): string {
  return b && b.length > 0 ? Buffer.from(b).toString("hex") : "";
}

function nameOf(r: LogRecord, a: Map<string, string>): string {
  const body = anyValueText(r.body);
  if (body.startsWith("claude_code.")) return body;
  if (r.eventName) return r.eventName.startsWith("claude_code.") ? r.eventName : `claude_code.${r.eventName}`;
  const n = a.get("event.name");
  return n ? (n.startsWith("claude_code.") ? n : `claude_code.${n}`) : "";
}

function identity(claude: string, name: string, a: Map<string, string>, time_ns: bigint): { event_id: string; seq: bigint } {
  const h = createHash("sha256").update("claude_code\0").update(claude).update("\0").update(name).update("\0");
  const sequence = a.get("event.sequence");
  if (sequence !== undefined && sequence !== "") h.update(`seq=${sequence}`);
  else {
    h.update(`t=${time_ns}`);
    for (const k of [...a.keys()].sort()) h.update(`\0${k}=${a.get(k)!}`);
  }
  const d = h.digest();
  const event_id = d.subarray(0, 16).toString("hex");
  const seq = (1n << 63n) | (d.readBigUInt64BE(0) >> 1n);
  return { event_id, seq };
}

/**
 * Read the metered Claude Code events of an export. Records of other events (user_prompt,
 * tool_decision, api_error, non-Claude logs) are skipped; metered records that cannot be read
 * (no session.id, a token count that is not an integer, …) are refused with the reason.
 */
export function claudeEvents(req: ExportLogsServiceRequest): { events: ClaudeEvent[]; refused: RefusedRecord[]; records: number } {
  const events: ClaudeEvent[] = [];
  const refused: RefusedRecord[] = [];
  let index = 0;
  for (const rl of req.resourceLogs ?? []) {
    const resource = attrs(rl.resource?.attributes);
    const service_name = resource.get("service.name") ?? "";
    for (const sl of rl.scopeLogs ?? []) {
      for (const r of sl.logRecords ?? []) {
        const i = index++;
        const a = attrs(r.attributes);
        const name = nameOf(r, a);
        if (!METERED.has(name)) continue;
        const reasons: string[] = [];
        const claude = a.get("session.id") ?? resource.get("session.id") ?? "";
        if (claude === "") reasons.push("attribute session.id is required");
        let time_ns = nanos(r.timeUnixNano);
        if (time_ns === 0n) {
          const ts = Date.parse(a.get("event.timestamp") ?? "");
          time_ns = Number.isFinite(ts) ? BigInt(ts) * 1_000_000n : nanos(r.observedTimeUnixNano);
        }
        if (time_ns === 0n) reasons.push("no time: set time_unix_nano or the event.timestamp attribute");
        const input_tokens = uint(a, "input_tokens", reasons);
        const output_tokens = uint(a, "output_tokens", reasons);
        const cache_read_tokens = uint(a, "cache_read_tokens", reasons);
        const cache_creation_tokens = uint(a, "cache_creation_tokens", reasons);
        const costText = a.get("cost_usd") ?? "";
        const cost_micro = costText === "" ? 0n : usdToMicro(costText);
        if (cost_micro === null) reasons.push(`attribute cost_usd must be a non-negative decimal, got ${JSON.stringify(costText.slice(0, 40))}`);
        const duration_ms = Number(a.get("duration_ms") ?? "0");
        if (reasons.length > 0) {
          refused.push({ index: i, reason: `${name} record ${i}: ${reasons.join("; ")}` });
          continue;
        }
        const { event_id, seq } = identity(claude, name, a, time_ns);
        events.push({
          event_id,
          seq,
          name: name as ClaudeEventName,
          claude_session_id: claude,
          time_ns,
          model: a.get("model") ?? "",
          input_tokens,
          output_tokens,
          cache_read_tokens,
          cache_creation_tokens,
          cost_micro: cost_micro ?? 0n,
          duration_ms: Number.isFinite(duration_ms) && duration_ms >= 0 ? duration_ms : 0,
          tool_name: a.get("tool_name") ?? "",
          success: (a.get("success") ?? "true") !== "false",
          service_name,
          trace_id: hex(r.traceId),
          span_id: hex(r.spanId),
          attributes: a,
        });
      }
    }
  }
  return { events, refused, records: index };
}
