/**
 * Where the daemon's main thread spends its CPU, from a V8 CPU profile (issue 20, ADR 0123): a
 * pure function over the profile JSON (`.cpuprofile`, the shape `node --cpu-prof` and the
 * inspector's `Profiler.stop` produce). `npm run bench` applies it to one profile per phase;
 * bench/profile-split.ts applies it to any profile file.
 *
 * How a sample is attributed: idle samples ("(idle)") are left out; "(garbage collector)" is gc;
 * "(program)" (V8: native code with no JavaScript on the stack — the event loop, socket reads and
 * writes, nghttp2's HTTP/2 framing of bytes no JS callback is handling) is native. Otherwise walk
 * from the innermost frame outwards and take the category of the first frame that names one (by
 * its script URL, {@link frameCategory}). `node:` internals and nameless native frames (JSON.parse,
 * Buffer copies, hashing) say nothing by themselves: they belong to whoever called them (a
 * `node:fs` write under src/ledger is ledger). When no project or library frame is on the stack,
 * a `node:` socket/HTTP/2/stream frame is transport (the daemon's only sockets are its gRPC and
 * HTTP servers); anything else is other. PGlite's work runs asynchronously (promise jobs, wasm):
 * its frames carry PGlite's URL, so it is attributed to the control plane without its caller.
 */

/** One V8 profile frame (only the fields used here). */
export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber?: number;
}
/** One node of the profile's call tree. */
export interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
/** A V8 CPU profile: a call tree and, per sample, the id of the innermost node. */
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  /** µs between consecutive samples (the first from `startTime`). */
  timeDeltas?: number[];
  startTime?: number;
  endTime?: number;
}

/** Categories of busy main-thread samples, in the order tables print them. */
export const CATEGORIES = [
  "transport",
  "authentication",
  "rate_limit",
  "service",
  "ledger",
  "control_plane",
  "telemetry",
  "analytics",
  "gc",
  "native",
  "other",
] as const;
export type Category = (typeof CATEGORIES)[number];

/** What each category holds (printed under the bench's table and in the ADR). */
export const CATEGORY_DOC: Record<Category, string> = {
  transport: "grpc-js, connect, protobuf-es (decode/encode), src/server (pipeline, health), node: HTTP/2, net and stream internals",
  authentication: "jose and src/server/auth.ts (bearer token check, verified-token cache)",
  rate_limit: "src/server/rate-limit.ts",
  service: "src/services, src/domain, src/webhooks, clients/sdk (money)",
  ledger: "src/ledger (coalescer, embedded engine, durability log and its node:fs calls), tigerbeetle-node",
  control_plane: "PGlite (JS and wasm), kysely, pg, src/controlplane",
  telemetry: "per-call metrics and logs: @opentelemetry, pino, src/telemetry, src/log.ts",
  analytics: "the CDC streamer to ClickHouse (src/streamer, chdb, @clickhouse/client); off in `npm run bench` unless --with-streamer",
  gc: "V8 garbage collector pauses on the main thread",
  native: "V8 \"(program)\": native work with no JS on the stack (event loop, socket I/O, nghttp2 framing)",
  other: "frames of none of the above (timers, microtask queue bookkeeping, module loading); the top ones are listed",
};

const NODE_TRANSPORT = /^node:(internal\/)?(http2|net|stream|streams|tls|_http|http|dgram|dns)\b|^node:internal\/(stream_base_commons|js_stream_socket)\b/;

/**
 * The category a frame names by its script URL or its V8 pseudo-function name, or null when it
 * names none (a `node:` internal or a nameless native frame: keep walking outwards).
 */
export function frameCategory(f: CallFrame): Category | null {
  const u = f.url;
  if (u === "") {
    if (f.functionName === "(garbage collector)") return "gc";
    if (f.functionName === "(program)") return "native";
    return null;
  }
  if (u.startsWith("node:")) return null;
  const lib = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1];
  if (lib !== undefined) {
    if (lib === "jose") return "authentication";
    if (lib === "limiter") return "rate_limit";
    if (lib.startsWith("@electric-sql/pglite") || lib === "kysely" || lib === "pg" || lib.startsWith("pg-")) return "control_plane";
    if (lib === "tigerbeetle-node") return "ledger";
    if (lib.startsWith("@opentelemetry/") || lib.startsWith("pino")) return "telemetry";
    if (lib === "chdb" || lib.startsWith("@chdb/") || lib.startsWith("@clickhouse/")) return "analytics";
    if (lib.startsWith("@grpc/") || lib.startsWith("@connectrpc/") || lib.startsWith("@bufbuild/")) return "transport";
    return null;
  }
  if (u.endsWith("/src/server/auth.ts")) return "authentication";
  if (u.endsWith("/src/server/rate-limit.ts")) return "rate_limit";
  if (u.includes("/src/controlplane/")) return "control_plane";
  if (u.includes("/src/ledger/")) return "ledger";
  if (u.includes("/src/services/") || u.includes("/src/domain/") || u.includes("/src/webhooks/") || u.includes("/clients/sdk/")) return "service";
  if (u.includes("/src/telemetry/") || u.endsWith("/src/log.ts")) return "telemetry";
  if (u.includes("/src/streamer/")) return "analytics";
  if (u.includes("/src/server/") || u.includes("/clients/gen/")) return "transport";
  return null;
}

/** Result of {@link splitProfile}. */
export interface ProfileSplit {
  /** Samples that were not idle. */
  busy_samples: number;
  /** Mean sampling interval of the profile, µs (0 when the profile has no time deltas). */
  interval_us: number;
  samples: Record<Category, number>;
  /** Share of busy samples per category, percent with one decimal. */
  share_pct: Record<Category, number>;
  /** The frames "other" samples sit in (innermost frame), most samples first: at most `otherTop`. */
  other_top: { frame: string; pct: number }[];
}

function frameLabel(f: CallFrame): string {
  const url = f.url.replace(/^.*\/node_modules\//, "").replace(/^file:\/\/.*?\/(src|bench|clients)\//, "$1/");
  return `${f.functionName || "(anonymous)"} ${url}${f.lineNumber !== undefined && f.lineNumber >= 0 && url ? `:${f.lineNumber + 1}` : ""}`.trim();
}

/**
 * Split a profile's busy samples by category (rules in the module comment). Pure; throws on a
 * sample naming a node the profile does not contain (a truncated or foreign file).
 */
export function splitProfile(profile: CpuProfile, opts: { otherTop?: number } = {}): ProfileSplit {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const memo = new Map<number, Category | "idle">();
  const classify = (id: number): Category | "idle" => {
    const hit = memo.get(id);
    if (hit !== undefined) return hit;
    const leaf = byId.get(id);
    if (!leaf) throw new Error(`cpu profile: sample names node ${id}, which the profile does not contain`);
    let out: Category | "idle" | null = leaf.callFrame.functionName === "(idle)" ? "idle" : null;
    let nodeTransport = false;
    // Bounded by the tree's depth: every step moves to a parent, and the root has none.
    for (let x: number | undefined = id; out === null && x !== undefined; x = parent.get(x)) {
      const f = byId.get(x)!.callFrame;
      out = frameCategory(f);
      if (out === null && NODE_TRANSPORT.test(f.url)) nodeTransport = true;
    }
    out ??= nodeTransport ? "transport" : "other";
    memo.set(id, out);
    return out;
  };
  const samples = Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>;
  const other = new Map<string, number>();
  let busy = 0;
  for (const s of profile.samples) {
    const c = classify(s);
    if (c === "idle") continue;
    busy++;
    samples[c]++;
    if (c === "other") {
      const k = frameLabel(byId.get(s)!.callFrame);
      other.set(k, (other.get(k) ?? 0) + 1);
    }
  }
  const pct = (k: number) => Math.round((1000 * k) / Math.max(busy, 1)) / 10;
  const deltas = profile.timeDeltas ?? [];
  const interval_us = deltas.length > 1 ? Math.round(deltas.slice(1).reduce((a, b) => a + b, 0) / (deltas.length - 1)) : 0;
  return {
    busy_samples: busy,
    interval_us,
    samples,
    share_pct: Object.fromEntries(CATEGORIES.map((c) => [c, pct(samples[c])])) as Record<Category, number>,
    other_top: [...other.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, opts.otherTop ?? 5)
      .map(([frame, k]) => ({ frame, pct: pct(k) })),
  };
}

/**
 * µs per call of each category: `main_thread_us` (the daemon's main-thread CPU per call, which is
 * what the profile samples) times each category's share of the busy samples, rounded to 0.1 µs.
 */
export function microsPerCall(split: ProfileSplit, main_thread_us: number): Record<Category, number> {
  const busy = Math.max(split.busy_samples, 1);
  return Object.fromEntries(CATEGORIES.map((c) => [c, Math.round((10 * main_thread_us * split.samples[c]) / busy) / 10])) as Record<Category, number>;
}
