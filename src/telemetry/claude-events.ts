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
import crypto from "node:crypto";
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
  /**
   * Every attribute as text, as a JSON object of strings (api_requests.attributes_json): the
   * text `JSON.stringify(Object.fromEntries(attributes))` gives for the record's attributes read
   * into a Map (at most MAX_ATTRIBUTES keys, values cut at MAX_TEXT, the last value of a repeated
   * key kept at its first place).
   */
  attributes_json: string;
}

/** A log record that names a metered event but cannot be read: its index and why. */
export interface RefusedRecord {
  index: number;
  reason: string;
}

const UINT_RE = /^\d{1,19}$/;
/** A non-negative decimal, optionally with an exponent (ints and doubles as text included). */
const DECIMAL_RE = /^(\d+)(?:\.(\d+))?(?:[eE]([-+]?\d+))?$/;
/** The common cost: at most 8 digits before the point, no exponent (usdToMicro's fast path). */
const SHORT_DECIMAL_RE = /^\d{1,8}(?:\.\d+)?$/;
const MAX_ATTRIBUTES = 128;
const MAX_TEXT = 1024;
const INT64_MAX = (1n << 63n) - 1n;
/**
 * The largest cost an event may report, micro-USD: 2^63 - 1, the ledger's AMOUNT_MAX_MICRO (its
 * public amounts are int64) and within api_requests.cost_micro (UInt64). A larger cost used to be
 * stored wrapped modulo 2^64, or (an exponent past 1e21) to fail the whole export.
 */
export const COST_MAX_MICRO = INT64_MAX;
const COST_MAX_TEXT = "9223372036854.775807";
/** duration_ms: a non-negative decimal (api_requests.duration_ms is Float64; finite checked apart). */
const DURATION_RE = /^\d+(?:\.\d+)?(?:[eE][-+]?\d+)?$/;

/** Attributes into a Map (the reference reading: resources, and records the fast path leaves). */
function attrs(list: readonly KeyValue[] | null | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of list ?? []) {
    if (!kv.key || m.size >= MAX_ATTRIBUTES) continue;
    m.set(kv.key, anyValueText(kv.value).slice(0, MAX_TEXT));
  }
  return m;
}

/** The attributes a metering event reads, by slot (AttributeReader.known). */
const KNOWN_KEYS = [
  "event.name", "session.id", "event.timestamp", "event.sequence", "model", "input_tokens", "output_tokens",
  "cache_read_tokens", "cache_creation_tokens", "cost_usd", "duration_ms", "tool_name", "success",
] as const;
type KnownKey = (typeof KNOWN_KEYS)[number];
const SLOT = new Map<string, number>(KNOWN_KEYS.map((k, i) => [k, i]));
const slotOf = (k: KnownKey): number => SLOT.get(k)!;
/** `"key":` of each known key (none has a character JSON escapes). */
const KNOWN_MEMBER = KNOWN_KEYS.map((k) => `${JSON.stringify(k)}:`);
const S_EVENT_NAME = slotOf("event.name");
const S_SESSION = slotOf("session.id");
const S_TIMESTAMP = slotOf("event.timestamp");
const S_SEQUENCE = slotOf("event.sequence");
const S_MODEL = slotOf("model");
const S_INPUT = slotOf("input_tokens");
const S_OUTPUT = slotOf("output_tokens");
const S_CACHE_READ = slotOf("cache_read_tokens");
const S_CACHE_CREATION = slotOf("cache_creation_tokens");
const S_COST = slotOf("cost_usd");
const S_DURATION = slotOf("duration_ms");
const S_TOOL = slotOf("tool_name");
const S_SUCCESS = slotOf("success");

/** Characters JSON.stringify escapes in a string (quote, backslash, controls, surrogates). */
const JSON_ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;
/** A string as JSON text, exactly as JSON.stringify writes it. */
function jsonString(s: string): string {
  return JSON_ESCAPED.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/**
 * Reads one log record's attributes at a time, in one pass and without a Map per record (this runs
 * for every OTLP event on the daemon's event loop; ADR 0118, amendment otlp-rows). The result is
 * the Map reading's (attrs): a record with a repeated key, a key starting with a digit (JSON
 * objects put integer-like keys first) or more than MAX_ATTRIBUTES keys is read through attrs.
 * One reader per export; its state is the last record read.
 */
class AttributeReader {
  /** Values of KNOWN_KEYS by slot (undefined: absent). */
  readonly known: (string | undefined)[] = new Array<string | undefined>(KNOWN_KEYS.length).fill(undefined);
  /** The attributes in order (keys distinct, values cut at MAX_TEXT), and each key's slot (-1: not known). */
  readonly keys: string[] = [];
  readonly values: string[] = [];
  private readonly slots: number[] = [];
  /** Keys read so far that are not KNOWN_KEYS (a known key's repeat shows in `known`). */
  private readonly seen = new Set<string>();
  /** Set when the record went through attrs (the Map reading). */
  private map: Map<string, string> | null = null;

  read(list: readonly KeyValue[] | null | undefined): void {
    this.known.fill(undefined);
    this.keys.length = 0;
    this.values.length = 0;
    this.slots.length = 0;
    this.seen.clear();
    this.map = null;
    if (!list) return;
    if (list.length > MAX_ATTRIBUTES) return this.readMap(list);
    for (let i = 0; i < list.length; i++) {
      const kv = list[i]!;
      const key = kv.key;
      if (!key) continue;
      const slot = SLOT.get(key);
      if (slot === undefined) {
        const c0 = key.charCodeAt(0);
        if ((c0 >= 48 && c0 <= 57) || this.seen.has(key)) return this.readMap(list);
        this.seen.add(key);
      } else if (this.known[slot] !== undefined) return this.readMap(list);
      const text = anyValueText(kv.value);
      const value = text.length > MAX_TEXT ? text.slice(0, MAX_TEXT) : text;
      this.keys.push(key);
      this.values.push(value);
      this.slots.push(slot ?? -1);
      if (slot !== undefined) this.known[slot] = value;
    }
  }

  private readMap(list: readonly KeyValue[]): void {
    const m = attrs(list);
    this.map = m;
    this.known.fill(undefined);
    this.keys.length = 0;
    this.values.length = 0;
    for (const [k, v] of m) {
      this.keys.push(k);
      this.values.push(v);
      const slot = SLOT.get(k);
      if (slot !== undefined) this.known[slot] = v;
    }
  }

  /**
   * The attributes as a JSON object of strings (see ClaudeEvent.attributes_json). Joined, not
   * concatenated: the text lives until the export is stored, and a concatenated string is a tree
   * of pieces that the GC would promote and trace piece by piece.
   */
  json(): string {
    if (this.map) return JSON.stringify(Object.fromEntries(this.map));
    const n = this.keys.length;
    if (n === 0) return "{}";
    const members = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      const slot = this.slots[i]!;
      members[i] = (slot >= 0 ? KNOWN_MEMBER[slot]! : jsonString(this.keys[i]!) + ":") + jsonString(this.values[i]!);
    }
    members[0] = "{" + members[0]!;
    members[n - 1] = members[n - 1]! + "}";
    return members.join(",");
  }
}

function uint(text: string | undefined, key: KnownKey, reasons: string[]): bigint {
  if (text === undefined || text === "") return 0n;
  if (!UINT_RE.test(text)) return badUint(text, key, reasons);
  // Up to 15 digits are below 2^53: exact as a number, and cheaper than parsing a bigint from text.
  const v = text.length <= 15 ? BigInt(+text) : BigInt(text);
  return v > INT64_MAX ? badUint(text, key, reasons) : v;
}

function badUint(text: string, key: KnownKey, reasons: string[]): bigint {
  reasons.push(`attribute ${key} must be a non-negative integer below 2^63, got ${JSON.stringify(text.slice(0, 40))}`);
  return 0n;
}

/**
 * Decimal dollars -> micro-USD, exact up to 6 places, half up past them (the 7th decimal decides);
 * no float arithmetic. Any length and exponent is read exactly, so the caller can tell a value too
 * large (compare with COST_MAX_MICRO) from text that is not a decimal (null); a value of 10^33
 * micro-USD or more is answered 2^200 (still too large) without computing a huge power.
 */
export function usdToMicro(text: string): bigint | null {
  if (SHORT_DECIMAL_RE.test(text)) {
    // Common case: no exponent and at most 8 digits before the point, so whole * 1e7 + the first 7
    // fraction digits stays below 2^53: the integer arithmetic is exact in doubles (no rounding).
    const dot = text.indexOf(".");
    const whole = dot < 0 ? text : text.slice(0, dot);
    const frac = dot < 0 ? "" : text.slice(dot + 1);
    const padded = frac.length >= 7 ? frac.slice(0, 7) : frac + "0000000".slice(frac.length);
    return (BigInt(+whole * 10_000_000 + +padded) + 5n) / 10n;
  }
  const m = DECIMAL_RE.exec(text);
  if (m === null) return null;
  const whole = m[1]!;
  const frac = m[2] ?? "";
  // value = digits * 10^-scale; micro7 = floor(value * 10^7).
  const digits = (whole + frac).replace(/^0+/, "");
  if (digits === "") return 0n;
  const exponent = m[3] === undefined ? 0 : Number(m[3]);
  const shift = 7 - frac.length + exponent; // micro7 = digits * 10^shift
  // Past these bounds the answer is known without a huge power: at least 10^40 micro7 (far above
  // COST_MAX_MICRO), or below one micro7 (rounds to 0).
  if (shift > 40) return 1n << 200n;
  if (shift < -(digits.length + 1)) return 0n;
  const micro7 = shift >= 0 ? BigInt(digits) * 10n ** BigInt(shift) : BigInt(digits) / 10n ** BigInt(-shift);
  return (micro7 + 5n) / 10n;
}

function hex(b: Uint8Array | null | undefined): string {
  return b && b.length > 0 ? Buffer.from(b.buffer, b.byteOffset, b.length).toString("hex") : "";
}

function nameOf(r: LogRecord): string {
  const body = anyValueText(r.body);
  if (body.startsWith("claude_code.")) return body;
  if (r.eventName) return r.eventName.startsWith("claude_code.") ? r.eventName : `claude_code.${r.eventName}`;
  return "";
}

function nameFromAttribute(n: string | undefined): string {
  return n ? (n.startsWith("claude_code.") ? n : `claude_code.${n}`) : "";
}

/**
 * SHA-256 of a string's UTF-8, as hex: Node's one-shot `crypto.hash` (20.12+, about half the cost
 * of a Hash object for short inputs), else a Hash object (package.json allows any Node 20).
 */
const sha256Hex: (text: string) => string =
  typeof crypto.hash === "function" ? (text) => crypto.hash("sha256", text, "hex") : (text) => crypto.createHash("sha256").update(text).digest("hex");

function identity(claude: string, name: string, a: AttributeReader, time_ns: bigint): { event_id: string; seq: bigint } {
  // One string hashed at once: the same bytes the pieces hashed one by one gave (each boundary
  // has an ASCII character on one side, so no surrogate pair forms across pieces).
  const sequence = a.known[S_SEQUENCE];
  let text = "claude_code\0" + claude + "\0" + name + "\0";
  if (sequence !== undefined && sequence !== "") text += "seq=" + sequence;
  else {
    text += "t=" + time_ns;
    const order = a.keys.map((_, i) => i).sort((x, y) => (a.keys[x]! < a.keys[y]! ? -1 : a.keys[x]! > a.keys[y]! ? 1 : 0));
    for (const i of order) text += "\0" + a.keys[i]! + "=" + a.values[i]!;
  }
  const digest = sha256Hex(text);
  const event_id = digest.slice(0, 32);
  const seq = (1n << 63n) | (BigInt("0x" + digest.slice(0, 16)) >> 1n);
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
  const a = new AttributeReader();
  let index = 0;
  for (const rl of req.resourceLogs ?? []) {
    const resource = attrs(rl.resource?.attributes);
    const service_name = resource.get("service.name") ?? "";
    const resourceSession = resource.get("session.id");
    for (const sl of rl.scopeLogs ?? []) {
      for (const r of sl.logRecords ?? []) {
        const i = index++;
        // The body or event_name names the event without the attributes; only when both are
        // silent is the event.name attribute read.
        let name = nameOf(r);
        if (name !== "" && !METERED.has(name)) continue;
        a.read(r.attributes);
        if (name === "") name = nameFromAttribute(a.known[S_EVENT_NAME]);
        if (!METERED.has(name)) continue;
        const k = a.known;
        const reasons: string[] = [];
        const claude = k[S_SESSION] ?? resourceSession ?? "";
        if (claude === "") reasons.push("attribute session.id is required");
        let time_ns = nanos(r.timeUnixNano);
        if (time_ns === 0n) {
          const ts = Date.parse(k[S_TIMESTAMP] ?? "");
          time_ns = Number.isFinite(ts) ? BigInt(ts) * 1_000_000n : nanos(r.observedTimeUnixNano);
        }
        if (time_ns === 0n) reasons.push("no time: set time_unix_nano or the event.timestamp attribute");
        else if (time_ns < 0n || time_ns > INT64_MAX) reasons.push(`time ${time_ns} ns is outside 1970-01-01 .. 2262-04-11, what api_requests.timestamp (DateTime64(9)) holds`);
        const input_tokens = uint(k[S_INPUT], "input_tokens", reasons);
        const output_tokens = uint(k[S_OUTPUT], "output_tokens", reasons);
        const cache_read_tokens = uint(k[S_CACHE_READ], "cache_read_tokens", reasons);
        const cache_creation_tokens = uint(k[S_CACHE_CREATION], "cache_creation_tokens", reasons);
        const costText = k[S_COST] ?? "";
        const cost_micro = costText === "" ? 0n : usdToMicro(costText);
        if (cost_micro === null) reasons.push(`attribute cost_usd must be a non-negative decimal, got ${JSON.stringify(costText.slice(0, 40))}`);
        else if (cost_micro > COST_MAX_MICRO) {
          reasons.push(`attribute cost_usd must be at most ${COST_MAX_TEXT} USD (2^63 - 1 micro-USD, what the ledger and api_requests.cost_micro hold), got ${JSON.stringify(costText.slice(0, 40))}`);
        }
        const durationText = k[S_DURATION] ?? "";
        const duration_ms = durationText === "" ? 0 : Number(durationText);
        if (durationText !== "" && (!DURATION_RE.test(durationText) || !Number.isFinite(duration_ms))) {
          reasons.push(`attribute duration_ms must be a non-negative finite number of milliseconds, got ${JSON.stringify(durationText.slice(0, 40))}`);
        }
        // event.sequence names the event (its identity): Claude Code's counter, an OTLP int64.
        uint(k[S_SEQUENCE], "event.sequence", reasons);
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
          model: k[S_MODEL] ?? "",
          input_tokens,
          output_tokens,
          cache_read_tokens,
          cache_creation_tokens,
          cost_micro: cost_micro ?? 0n,
          duration_ms,
          tool_name: k[S_TOOL] ?? "",
          success: (k[S_SUCCESS] ?? "true") !== "false",
          service_name,
          trace_id: hex(r.traceId),
          span_id: hex(r.spanId),
          attributes_json: a.json(),
        });
      }
    }
  }
  return { events, refused, records: index };
}
