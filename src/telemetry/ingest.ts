/**
 * OTLP logs in: Claude Code's events -> billing on the masque session they ran under (through
 * the same ledger plan as RecordUsage) and one api_requests row each in ClickHouse. ADR 0115.
 *
 * Exactly once (both steps idempotent, so an exporter's retry is harmless; 1 runs before 2):
 *  1. bill: usage events with seq derived from the event identity (claude-events.ts); the
 *     ledger answers `exists` (DUPLICATE) for a retried event, so nothing is billed twice;
 *  2. store: events whose id (request_id) api_requests does not hold yet are inserted, checked
 *     and inserted by one group at a time in ClickHouse itself (groupedStore, ADR 0118): no
 *     control-plane round trip; an insert is all or nothing, so a crash leaves each row stored
 *     or not, and the retry stores what is missing. An event this export's billing just
 *     APPLIED skips the check (ADR 0118 "Bill first"): an earlier attempt that stored it billed
 *     it first, so the ledger would have answered DUPLICATE. A retry racing its first attempt in
 *     this daemon waits for that attempt's store (claims), then checks.
 * Analytics down: billing still happens (ADR 0040) and the export is answered 503 so the
 * exporter retries the storage.
 *
 * Who is billed: only an agent token bills, and only its own sessions; a collector (or admin)
 * token's events are stored, never billed. An event is billed on the masque session bound to its
 * Claude session (Don's claude_session_id) that was donned at or before the event's time and whose
 * Doff was not asked for before it. An agent's events whose Claude session no masque session was
 * donned with are stored and answered with a warning naming the id (partial success, 0 rejected).
 */
import { UsageOutcome, type UsageEvent } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import type { OtlpStore, SessionBinding } from "../controlplane/otlp.js";
import type { Principal } from "../server/principal.js";
import { usageAgentFor } from "../services/authz.js";
import type { SessionServiceInstance } from "../services/sessions/service.js";
import { executeUsage, MAX_USAGE_EVENTS } from "../services/sessions/usage.js";
import { bigintText, escapeTsv, quoteIdent, TsvLine, type Sink, type SinkLane } from "../streamer/sink.js";
import { claudeEvents, type ClaudeEvent } from "./claude-events.js";
import { OtlpError, type ExportLogsServiceRequest, type PartialSuccess } from "./otlp.js";

/** Most bindings looked at per Claude session (a Claude session dons few masques). */
const BINDINGS_PER_CLAUDE_SESSION = 64;

export const API_REQUEST_COLUMNS = [
  "timestamp", "request_id", "session_id", "agent_id", "service_name", "model", "operation", "status_code", "duration_ms",
  "input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens", "cost_micro", "trace_id", "span_id", "attributes_json",
] as const;

export interface IngestDeps {
  otlp: OtlpStore;
  sessions: SessionServiceInstance | undefined;
  /** The ClickHouse sink (undefined: analytics is off or did not start). */
  sink: () => Sink | undefined;
  /** Stores api_requests rows exactly once (groupedStore over `sink`): claim, store, release. */
  store: ApiRequestStore;
  /** STREAMER_ENABLED: analytics is configured (a missing sink is then an outage: 503). */
  analyticsEnabled: boolean;
  clock: () => bigint;
}

/** What one export did (for the response, metrics and tests). */
export interface IngestReport extends PartialSuccess {
  events: number;
  billed: number;
  duplicates: number;
  stored: number;
}

/**
 * One api_requests row ready to insert: its request_id and day (what the stored-ids check reads)
 * and the row itself as a TabSeparated line (ApiRowBuilder).
 */
export interface ApiRow {
  request_id: string;
  /** The row's timestamp day, `YYYY-MM-DD` (UTC). */
  day: string;
  line: TsvLine;
}

/** Most rows one grouped ClickHouse check-and-insert carries (bounded; more wait for the next one). */
const GROUP_MAX_ROWS = 10_000;
const EVENT_ID_RE = /^[0-9a-f]{32}$/;

/**
 * Of `rows` (api_requests rows: timestamp text first, request_id second), the request ids already
 * in api_requests. Reads the parts as they are (no FINAL: any copy means stored) and prunes by the
 * table's key (day, request_id).
 */
async function storedRequestIds(lane: SinkLane, database: string, rows: readonly ApiRow[]): Promise<Set<string>> {
  const days = new Set<string>();
  const ids: string[] = [];
  for (const r of rows) {
    const id = r.request_id;
    if (!EVENT_ID_RE.test(id)) throw new Error(`request_id ${JSON.stringify(id)} is not 32 hex digits`);
    days.add(r.day);
    ids.push(`'${id}'`);
  }
  const dayList = [...days].map((d) => `toDate('${d}')`).join(",");
  const found = await lane.query(
    `SELECT request_id FROM ${quoteIdent(database)}.api_requests WHERE toDate(timestamp) IN (${dayList}) AND request_id IN (${ids.join(",")})`,
  );
  return new Set(found.map((x) => String(x.request_id)));
}

/**
 * api_requests rows stored exactly once by this daemon (groupedStore). An export calls
 * `claim(ids)` before billing (ids: its event ids), then `store` once, then `release` once when
 * its store has settled (success or not).
 */
export interface ApiRequestStore {
  claim(ids: readonly string[]): ApiRequestClaim;
}

/** One export's hold on its event ids (see ApiRequestStore). */
export interface ApiRequestClaim {
  /** The ids this export owns (no other export of this daemon holds them). */
  owned: Set<string>;
  /** Settles when every other export holding the rest of the ids has finished storing. */
  others: Promise<void>;
  /**
   * Insert the rows api_requests does not hold yet; rows whose request_id is in `unchecked`
   * are inserted without the check (their billing was APPLIED by this export, which owns
   * them). Resolves with how many rows were new.
   */
  store(rows: ApiRow[], unchecked: ReadonlySet<string>): Promise<number>;
  release(): void;
}

/** Longest a group waits for exports still billing to join it (ms); see groupedStore. */
const GROUP_LINGER_MS = 20;

/**
 * Store api_requests rows exactly once, with group commit: the rows of concurrent exports are
 * checked against api_requests and the new ones inserted together, one group at a time, on the
 * sink's unordered lane (never queued behind the streamer). Because groups run one at a time, a
 * row is never inserted twice by this process (a retry that races its first attempt finds it, or
 * is dropped within the group); several daemons racing on one event can each insert it once, and
 * ReplacingMergeTree folds the copies (read with FINAL). Rows marked unchecked (just billed
 * APPLIED by their owner, see ApiRequestClaim) skip the check. Each caller's promise settles with
 * the group that carried its rows: how many of its rows were new; a failed group fails every
 * caller in it (nothing of the group is half-acknowledged: the exporter retries, the check finds
 * what landed).
 *
 * A chDB insert costs about 8 ms of CPU however small (500 rows: ~30 µs per row, 2,000: ~21;
 * ADR 0118), so a group waits up to GROUP_LINGER_MS for exports that have claimed but not yet
 * queued their rows (they are billing), then goes with what it has.
 */
export function groupedStore(sink: () => Sink | undefined): ApiRequestStore {
  const queue: { rows: ApiRow[]; unchecked: ReadonlySet<string>; resolve: (stored: number) => void; reject: (e: unknown) => void }[] = [];
  let queuedRows = 0;
  let running = false;
  /** Exports that claimed and have not queued their rows (nor released) yet. */
  let arriving = 0;
  let wake: (() => void) | null = null;
  const arrived = (): void => {
    arriving--;
    if (wake && (arriving === 0 || queuedRows >= GROUP_MAX_ROWS)) wake();
  };
  /** event id -> settles when the export that claimed it has finished storing. */
  const inFlight = new Map<string, Promise<void>>();
  const pump = async (): Promise<void> => {
    running = true;
    while (queue.length > 0) {
      if (arriving > 0 && queuedRows < GROUP_MAX_ROWS) {
        await new Promise<void>((res) => {
          const t = setTimeout(() => (wake = null, res()), GROUP_LINGER_MS);
          wake = () => {
            wake = null;
            clearTimeout(t);
            res();
          };
        });
      }
      const take: typeof queue = [];
      let n = 0;
      while (queue.length > 0 && (take.length === 0 || n + queue[0]!.rows.length <= GROUP_MAX_ROWS)) {
        const q = queue.shift()!;
        n += q.rows.length;
        take.push(q);
      }
      queuedRows -= n;
      try {
        const s = sink();
        if (!s) throw new Error("analytics store is not running");
        const lane = s.unordered();
        const toCheck: ApiRow[] = [];
        for (const q of take) for (const r of q.rows) if (!q.unchecked.has(r.request_id)) toCheck.push(r);
        const seen = toCheck.length > 0 ? await storedRequestIds(lane, s.database, toCheck) : new Set<string>();
        const lines: TsvLine[] = [];
        const fresh = take.map((q) => {
          let n = 0;
          for (const r of q.rows) {
            if (seen.has(r.request_id)) continue;
            seen.add(r.request_id);
            lines.push(r.line);
            n++;
          }
          return n;
        });
        if (lines.length > 0) await lane.insert("api_requests", API_REQUEST_COLUMNS, lines);
        take.forEach((q, i) => q.resolve(fresh[i]!));
      } catch (err) {
        for (const q of take) q.reject(err);
      }
    }
    running = false;
  };
  return {
    claim(ids) {
      const owned = new Set<string>();
      const waits = new Set<Promise<void>>();
      let done!: () => void;
      const mine = new Promise<void>((res) => (done = res));
      for (const id of ids) {
        const other = inFlight.get(id);
        if (other) waits.add(other);
        else if (!owned.has(id)) {
          owned.add(id);
          inFlight.set(id, mine);
        }
      }
      arriving++;
      let queued = false;
      let released = false;
      return {
        owned,
        others: waits.size === 0 ? Promise.resolve() : Promise.all(waits).then(() => undefined),
        store: (rows, unchecked) =>
          new Promise<number>((resolve, reject) => {
            if (queued) throw new Error("ApiRequestClaim.store called twice");
            queued = true;
            queue.push({ rows, unchecked, resolve, reject });
            queuedRows += rows.length;
            arrived();
            if (!running) void pump();
          }),
        release: () => {
          if (released) return;
          released = true;
          if (!queued) {
            queued = true;
            arrived();
          }
          for (const id of owned) inFlight.delete(id);
          done();
        },
      };
    },
  };
}

/** ns since the epoch -> ClickHouse DateTime64(9) text, UTC. */
export function dateTime64(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString(); // 2026-11-30T04:30:13.123Z
  const frac = (ns % 1_000_000_000n).toString().padStart(9, "0");
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${frac}`;
}

const NS_PER_S = 1_000_000_000n;
const FRACTION_ZEROS = "000000000";

/**
 * Builds api_requests rows (API_REQUEST_COLUMNS order) as TabSeparated lines in one pass (each
 * cell's text made directly, no type dispatch per cell): the line is the text encodeTsv gives for
 * the cells
 *   [dateTime64(time_ns), event_id, session_id (UInt128, 0 when none), agent_id, service_name,
 *    model, operation, status_code, duration_ms, input_tokens, output_tokens, cache_read_tokens,
 *    cache_creation_tokens, cost_micro, trace_id, span_id, attributes_json].
 * Keeps the timestamp text of the last second seen and the decimal text of each session id, so
 * use one builder per export (its caches are as small as the export). ADR 0118, amendment
 * otlp-rows.
 */
export class ApiRowBuilder {
  private secondStart_ns = -1n;
  private secondEnd_ns = -1n;
  /** `YYYY-MM-DD hh:mm:ss.` of [secondStart_ns, secondEnd_ns), and its day. */
  private secondText = "";
  private dayText = "";
  private readonly sessionText = new Map<string, string>();
  private agent: string | null = null;
  private agentText = "";

  /** The row of `e`, billed on session `session_hex` (32 hex digits; null: none) of `agent_id`. */
  row(e: ClaudeEvent, session_hex: string | null, agent_id: string): ApiRow {
    const ts = this.timestamp(e.time_ns);
    const day = e.time_ns < 0n ? ts.slice(0, 10) : this.dayText;
    // Hex ids need no TSV escaping; JSON text has no raw tab, newline or carriage return
    // (JSON.stringify escapes every control character), so only its backslashes are doubled.
    const json = e.attributes_json.includes("\\") ? e.attributes_json.replace(/\\/g, "\\\\") : e.attributes_json;
    // Joined, not concatenated: the line lives until its group is inserted (tens of ms), and a
    // concatenated string is a tree of pieces that the GC would promote and trace piece by piece.
    const text = [
      ts, e.event_id, this.session(session_hex), this.agentTsv(agent_id), escapeTsv(e.service_name), escapeTsv(e.model),
      e.name === "claude_code.api_request" ? "api_request" : "tool_result", e.success ? "200" : "500", "" + e.duration_ms,
      bigintText(e.input_tokens), bigintText(e.output_tokens), bigintText(e.cache_read_tokens), bigintText(e.cache_creation_tokens),
      bigintText(e.cost_micro), e.trace_id, e.span_id, json,
    ].join("\t");
    return { request_id: e.event_id, day, line: new TsvLine(text) };
  }

  /** dateTime64(ns), with the text up to the second reused within a second. */
  private timestamp(ns: bigint): string {
    if (ns < 0n) return dateTime64(ns);
    if (ns < this.secondStart_ns || ns >= this.secondEnd_ns) {
      this.secondStart_ns = ns - (ns % NS_PER_S);
      this.secondEnd_ns = this.secondStart_ns + NS_PER_S;
      this.secondText = dateTime64(this.secondStart_ns).slice(0, 20);
      this.dayText = this.secondText.slice(0, 10);
    }
    const frac = "" + Number(ns - this.secondStart_ns);
    return this.secondText + FRACTION_ZEROS.slice(frac.length) + frac;
  }

  private session(hex: string | null): string {
    if (hex === null) return "0";
    let text = this.sessionText.get(hex);
    if (text === undefined) {
      text = BigInt(`0x${hex}`).toString();
      this.sessionText.set(hex, text);
    }
    return text;
  }

  private agentTsv(agent_id: string): string {
    if (agent_id !== this.agent) {
      this.agent = agent_id;
      this.agentText = escapeTsv(agent_id);
    }
    return this.agentText;
  }
}

/** The binding an event falls in (see the file comment), or null. */
function bindingFor(e: ClaudeEvent, bindings: readonly SessionBinding[]): SessionBinding | null {
  for (const b of bindings) {
    if (b.bind_time_ns <= e.time_ns && (b.doff_time_ns === null || e.time_ns <= b.doff_time_ns)) return b;
  }
  return null;
}

/** Ingest one decoded ExportLogsServiceRequest from `p`. Throws OtlpError 503 when analytics is down. */
export async function ingestLogs(d: IngestDeps, p: Principal, req: ExportLogsServiceRequest): Promise<IngestReport> {
  const { events, refused } = claudeEvents(req);
  const warnings: string[] = refused.slice(0, 5).map((r) => r.reason);
  // Bindings of every Claude session named (newest first).
  const claudes = [...new Set(events.map((e) => e.claude_session_id))];
  const bindings = new Map<string, SessionBinding[]>();
  await Promise.all(claudes.map(async (c) => bindings.set(c, await d.otlp.sessionsOfClaude(c, BINDINGS_PER_CLAUDE_SESSION))));
  const sessionOf = new Map<string, SessionBinding>();
  for (const e of events) {
    const b = bindingFor(e, bindings.get(e.claude_session_id) ?? []);
    if (b) sessionOf.set(e.event_id, b);
  }
  const undonned = new Set(claudes.filter((c) => (bindings.get(c) ?? []).length === 0));

  // Bill first, then store (ADR 0118 "Bill first"): events this export's billing APPLIED skip
  // the stored-ids check. Storage runs even when billing failed (its events are then checked),
  // and a 503 for storage is only sent once billing is done.
  const claim = d.store.claim(events.map((e) => e.event_id));
  const applied = new Set<string>();
  let billR: PromiseSettledResult<{ billed: number; duplicates: number }>;
  let storeR: PromiseSettledResult<number>;
  try {
    [billR] = await Promise.allSettled([billEvents(d, p, events, sessionOf, undonned, warnings, applied)]);
    // A racing attempt of this daemon holding some of these events stores them first; ours are
    // then checked (not in `unchecked`), so its insert is found.
    await claim.others;
    for (const id of applied) if (!claim.owned.has(id)) applied.delete(id);
    [storeR] = await Promise.allSettled([storeEvents(claim, d, p, events, sessionOf, warnings, applied)]);
  } finally {
    claim.release();
  }
  if (billR.status === "rejected") throw billR.reason;
  if (storeR.status === "rejected") throw storeR.reason;
  const bill = billR.value;
  const stored = storeR.value;
  return { events: events.length, billed: bill.billed, duplicates: bill.duplicates, stored, rejected: refused.length, errorMessage: warnings.join("; ") };
}

/** Most Claude session ids one "no masque session was donned" warning names (the rest are counted). */
const UNDONNED_NAMED = 3;

/**
 * The warning for an agent's events whose Claude session id no masque session was donned with
 * (`undonned`: event count per Claude session id, in export order): stored, not billed, and the
 * user learns their --claude-session-id did not match (OTLP partial success with 0 rejected: a
 * warning, ADR 0118 "bad input"). "" when there are none.
 */
export function undonnedWarning(undonned: ReadonlyMap<string, number>): string {
  if (undonned.size === 0) return "";
  const entries = [...undonned];
  const n = entries.reduce((a, [, k]) => a + k, 0);
  const named = entries.slice(0, UNDONNED_NAMED).map(([c]) => JSON.stringify(c.slice(0, 128)));
  const more = entries.length > UNDONNED_NAMED ? ` and ${entries.length - UNDONNED_NAMED} more` : "";
  const ids = named.length === 1 && more === "" ? `Claude session id ${named[0]}` : `Claude session ids ${named.join(", ")}${more}`;
  return `${n} event(s) stored, not billed: no masque session was donned with ${ids} (Don with that --claude-session-id to bill them)`;
}

/**
 * 1. bill (agents only, own sessions only); adds the event ids the ledger APPLIED to `applied`.
 * `undonned`: the Claude session ids of the export no masque session was donned with (warned about).
 */
async function billEvents(
  d: IngestDeps,
  p: Principal,
  events: readonly ClaudeEvent[],
  sessionOf: Map<string, SessionBinding>,
  undonned: ReadonlySet<string>,
  warnings: string[],
  applied: Set<string>,
): Promise<{ billed: number; duplicates: number }> {
  let billed = 0;
  let duplicates = 0;
  const billable = p.kind === "agent" && p.scopes.includes("ledger:write") && d.sessions !== undefined;
  if (billable) {
    const usage: UsageEvent[] = [];
    const usageIds: string[] = [];
    let foreign = 0;
    const unbilled = new Map<string, number>();
    for (const e of events) {
      const b = sessionOf.get(e.event_id);
      if (!b) {
        const c = e.claude_session_id;
        if (undonned.has(c)) unbilled.set(c, (unbilled.get(c) ?? 0) + 1);
        continue;
      }
      if (b.agent_id !== p.id) {
        foreign++;
        continue;
      }
      // The message as a plain object (protobuf-es v2 messages are plain objects; every field set,
      // as create() would): no per-event walk over the schema's fields.
      usage.push({
        $typeName: "masques.ledger.v1.UsageEvent",
        sessionId: b.session_id,
        seq: e.seq,
        inputTokens: e.name === "claude_code.api_request" ? e.input_tokens : 0n,
        outputTokens: e.name === "claude_code.api_request" ? e.output_tokens : 0n,
        toolCalls: e.name === "claude_code.tool_result" ? 1n : 0n,
      });
      usageIds.push(e.event_id);
    }
    if (foreign > 0) warnings.push(`${foreign} event(s) name a masque session of another agent: stored, not billed`);
    const undonnedText = undonnedWarning(unbilled);
    if (undonnedText !== "") warnings.push(undonnedText);
    const inst = d.sessions!;
    await inst.ready;
    for (let k = 0; k < usage.length; k += MAX_USAGE_EVENTS) {
      const r = await executeUsage(inst.state, usage.slice(k, k + MAX_USAGE_EVENTS), (wallet) => usageAgentFor(p, wallet));
      billed += r.applied;
      duplicates += r.duplicates;
      r.results.forEach((x, i) => {
        if (x.outcome === UsageOutcome.APPLIED) applied.add(usageIds[k + i]!);
      });
      const notOpen = r.results.filter((x) => x.outcome === UsageOutcome.REJECTED).length;
      if (notOpen > 0) warnings.push(`${notOpen} event(s) not billed: ${[...new Set(r.results.filter((x) => x.outcome === UsageOutcome.REJECTED).map((x) => x.reason))].join(", ")}`);
    }
  }

  return { billed, duplicates };
}

/** 2. store once: rows whose request_id api_requests does not hold yet (groupedStore); `unchecked`: ids billed APPLIED by this export. */
async function storeEvents(
  claim: ApiRequestClaim,
  d: IngestDeps,
  p: Principal,
  events: readonly ClaudeEvent[],
  sessionOf: Map<string, SessionBinding>,
  warnings: string[],
  unchecked: ReadonlySet<string>,
): Promise<number> {
  let stored = 0;
  if (events.length > 0) {
    const sink = d.sink();
    if (!sink && d.analyticsEnabled) {
      throw new OtlpError(503, "analytics store (ClickHouse) unavailable, retry later (billing is unaffected)");
    } else if (!sink) {
      warnings.push("analytics (ClickHouse) is off (STREAMER_ENABLED=false): events billed, not stored");
    } else {
      const seen = new Set<string>();
      const once = events.filter((e) => !seen.has(e.event_id) && seen.add(e.event_id));
      try {
        const rows = new ApiRowBuilder();
        stored = await claim.store(
          once.map((e) => {
            const b = sessionOf.get(e.event_id);
            return rows.row(e, b ? b.session_id : null, b?.agent_id ?? (p.kind === "agent" ? p.id : ""));
          }),
          unchecked,
        );
      } catch (err) {
        throw new OtlpError(503, `analytics store unavailable, retry later (billing is unaffected): ${(err as Error).message.slice(0, 200)}`);
      }
    }
  }
  return stored;
}
