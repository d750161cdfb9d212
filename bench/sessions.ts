/**
 * SessionService benchmark (issue 4): the real daemon driven over native gRPC by a SEPARATE
 * load-generator process, all figures from one run.
 *
 *   npm run bench                       # start a daemon (temp data dir), print a table
 *   npm run bench -- --json             # one JSON object with the same figures
 *   BENCH_DAEMON_NODE_ARGS="--single-threaded-gc" npm run bench   # extra node/V8 flags, daemon only
 *   npm run bench -- --grpc-addr 127.0.0.1:50051 --data-dir ./data   # use a running daemon
 *                                       # (tokens are minted from its dev key pair in --data-dir)
 * Options: --n N (requests per phase, default 20000), --concurrency C (in flight, default 256),
 * --with-streamer (keep the in-process CDC streamer on; off by default, it is not on the request path),
 * --in-process (instead: drive the SessionService engine directly on an embedded ledger, no
 * transport and no auth, to show what the service + ledger themselves cost per operation),
 * --usage-events N (default 200000), --usage-batch B (events per RecordUsage, default 500),
 * --session-usage-events K (events in each full session's one RecordUsage batch, default 10),
 * --view basic|full (the Don/Doff reply asked for; default basic: the slim reply, ADR 0128),
 * --split-n N (requests per phase of the profiled re-run, default min(n, 5000); usage events:
 * 10x that, at most --usage-events), --no-split (skip the profiled re-run),
 * --keep-profiles DIR (keep the per-phase .cpuprofile files there; default: deleted with the
 * daemon's data dir), --daemon-profile-dir DIR (with --grpc-addr and --daemon-pid: that daemon's
 * MASQUES_CPU_PROFILE_DIR, to split its CPU too; never signal a daemon started without it).
 *
 * Phases: grpc.health.v1 Check (the transport's ceiling on this machine), Don, Doff (of those
 * sessions), full sessions (Don, one RecordUsage batch, Doff; 2C at a time), usage events through batched
 * RecordUsage. Each prints rate and p50/p99 latency. Don and Doff are the same RPC stack as Check
 * plus the service's work, so their ratio to Check is the figure that matters here.
 *
 * Per-call CPU split (issue 20, ADR 0123): each phase also reports the daemon's CPU µs per call
 * (whole process, and its main thread). After the measured phases, every phase runs again (smaller
 * n) with the daemon's CPU profiler on (MASQUES_CPU_PROFILE_DIR + SIGUSR2, src/telemetry/profiler.ts),
 * so profiling never slows the reported rates; each phase's profile gives the shares of the main
 * thread's busy samples per category (bench/profile-categories.ts), and the split printed is
 *   category µs/call = measured main-thread µs/call × share;  off_thread = process − main thread
 * (V8's platform threads: concurrent/parallel GC, JIT compilation; libuv's pool), so the parts sum
 * to the measured daemon CPU µs/call.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape, create } from "@bufbuild/protobuf";
import { AccountService } from "../clients/gen/masques/ledger/v1/account_service_pb.js";
import {
  DoffRequestSchema,
  DoffResponseSchema,
  DonRequestSchema,
  DonResponseSchema,
  RecordUsageRequestSchema,
  RecordUsageResponseSchema,
  SessionView,
} from "../clients/gen/masques/ledger/v1/session_service_pb.js";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { WalletMode } from "../clients/gen/masques/ledger/v1/account_service_pb.js";
import { DEFAULT_SCOPES, loadOrCreateDevKeys, mintToken } from "../src/server/auth.js";
import { CPU_PROFILE_SIGNAL } from "../src/telemetry/profiler.js";
import { CATEGORIES, CATEGORY_DOC, microsPerCall, splitProfile, type Category, type CpuProfile } from "./profile-categories.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const json = process.argv.includes("--json");

interface WorkerConfig {
  grpcAddr: string;
  /** The daemon's pid when it runs on this machine (for its CPU time per op). */
  daemonPid: number | null;
  agentTokens: string[];
  n: number;
  concurrency: number;
  usageEvents: number;
  usageBatch: number;
  /** The Don/Doff reply view the load generator asks for ("basic": slim, ADR 0128; "full"). */
  view: "basic" | "full";
  /** Usage events in the one RecordUsage batch of each full session. */
  sessionUsageEvents: number;
  masque: string;
  /** The daemon's MASQUES_CPU_PROFILE_DIR, when the profiled re-run is on (needs daemonPid). */
  profileDir: string | null;
  /** Requests per phase of the profiled re-run, and usage events in it. */
  splitN: number;
  splitUsageEvents: number;
}

interface PhaseResult {
  /** Daemon CPU time (user + system, all threads) per operation, µs (Linux /proc; 0 when unknown). */
  daemon_cpu_us_per_op: number;
  /** The part of it on the daemon's main thread (JS, GC pauses, event loop), µs per operation. */
  daemon_main_thread_cpu_us_per_op: number;
  /** Load generator CPU time per operation, µs. */
  client_cpu_us_per_op: number;
  ops: number;
  seconds: number;
  rate: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
}

// ---------------------------------------------------------------------------------------------
// Load generator (child process)

/** utime + stime of a process (or, with `thread`, of that thread of it) in µs, from /proc (0 if unavailable). */
function daemonCpuUs(pid: number | null, thread?: number): number {
  if (pid === null) return 0;
  try {
    const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(f[11]) + Number(f[12]);
    return (ticks * 1_000_000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return 0;
  }
}

function pct(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}
const r2 = (x: number) => Math.round(x * 100) / 100;
const r1 = (x: number) => Math.round(x * 10) / 10;

async function worker(cfg: WorkerConfig): Promise<WorkerResult> {
  // Several HTTP/2 connections so the client side is not the bottleneck of one socket.
  const CHANNELS = 4;
  const clients = Array.from(
    { length: CHANNELS },
    (_, i) =>
      new grpc.Client(cfg.grpcAddr, grpc.credentials.createInsecure(), {
        "grpc.use_local_subchannel_pool": 1,
        "grpc.primary_user_agent": `bench-${i}`,
      }),
  );
  let rr = 0;
  const metas = cfg.agentTokens.map((t) => {
    const m = new grpc.Metadata();
    m.set("authorization", `Bearer ${t}`);
    return m;
  });

  function unary<I extends DescMessage, O extends DescMessage>(
    method: string,
    inSchema: I,
    outSchema: O,
    msg: MessageInitShape<I>,
    meta: grpc.Metadata,
  ): Promise<MessageShape<O>> {
    const c = clients[rr++ % CHANNELS]!;
    const req = create(inSchema, msg);
    return new Promise((resolve, reject) => {
      c.makeUnaryRequest(
        method,
        (m: MessageShape<I>) => Buffer.from(toBinary(inSchema, m)),
        (b: Buffer) => fromBinary(outSchema, b),
        req,
        meta,
        (err, res) => (err || !res ? reject(err ?? new Error("empty response")) : resolve(res)),
      );
    });
  }
  function check(): Promise<void> {
    const c = clients[rr++ % CHANNELS]!;
    return new Promise((resolve, reject) => {
      c.makeUnaryRequest(
        "/grpc.health.v1.Health/Check",
        () => Buffer.alloc(0),
        (b: Buffer) => b,
        {},
        new grpc.Metadata(),
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }

  async function phase(total: number, concurrency: number, op: (i: number) => Promise<number | void>): Promise<PhaseResult> {
    const lat: number[] = [];
    const cpu0 = daemonCpuUs(cfg.daemonPid);
    const main0 = daemonCpuUs(cfg.daemonPid, cfg.daemonPid ?? undefined);
    const own0 = process.cpuUsage();
    let next = 0;
    let errors = 0;
    let ops = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: Math.min(concurrency, total) }, async () => {
        for (;;) {
          const i = next++;
          if (i >= total) return;
          const s = performance.now();
          try {
            const k = await op(i);
            ops += typeof k === "number" ? k : 1;
          } catch {
            errors++;
          }
          lat.push(performance.now() - s);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const cpu = daemonCpuUs(cfg.daemonPid) - cpu0;
    const main = daemonCpuUs(cfg.daemonPid, cfg.daemonPid ?? undefined) - main0;
    const own = process.cpuUsage(own0);
    lat.sort((a, b) => a - b);
    return {
      daemon_cpu_us_per_op: r1(cpu / Math.max(ops, 1)),
      daemon_main_thread_cpu_us_per_op: r1(main / Math.max(ops, 1)),
      client_cpu_us_per_op: Math.round((own.user + own.system) / Math.max(ops, 1)),
      ops, seconds: r2(seconds), rate: Math.round(ops / seconds), p50_ms: r2(pct(lat, 0.5)), p99_ms: r2(pct(lat, 0.99)), errors };
  }

  const A = metas.length;
  const sid = () => randomBytes(16).toString("hex");
  // Don/Doff replies are checked by gRPC status only (not decoded): the load generator shares the
  // 2 cores with the daemon, and decoding a Session it never reads would only slow the client.
  function raw<I extends DescMessage>(method: string, inSchema: I, msg: MessageInitShape<I>, meta: grpc.Metadata): Promise<void> {
    const c = clients[rr++ % CHANNELS]!;
    const bytes = Buffer.from(toBinary(inSchema, create(inSchema, msg)));
    return new Promise((resolve, reject) => {
      c.makeUnaryRequest(method, (b: Buffer) => b, (b: Buffer) => b, bytes, meta, (err) => (err ? reject(err) : resolve()));
    });
  }
  // The load generator reads only the status of Don and Doff, so it asks for the slim reply
  // (SESSION_VIEW_BASIC, ADR 0128) unless --view full.
  const view = cfg.view === "full" ? SessionView.FULL : SessionView.BASIC;
  const don = (s: string, i: number) =>
    raw("/masques.ledger.v1.SessionService/Don", DonRequestSchema, { sessionId: s, masque: cfg.masque, view }, metas[i % A]!);
  const doff = (s: string, i: number) =>
    raw("/masques.ledger.v1.SessionService/Doff", DoffRequestSchema, { sessionId: s, view }, metas[i % A]!);

  /** A full session as issue 20 defines it: Don, one RecordUsage batch of its own events, Doff. */
  const fullSession = async (i: number): Promise<void> => {
    const s = sid();
    await don(s, i);
    const events = Array.from({ length: cfg.sessionUsageEvents }, (_, e) => ({
      sessionId: s, seq: BigInt(e + 1), inputTokens: 100n, outputTokens: 50n, toolCalls: e % 5 === 0 ? 1n : 0n,
    }));
    const r = await unary("/masques.ledger.v1.SessionService/RecordUsage", RecordUsageRequestSchema, RecordUsageResponseSchema, { events }, metas[i % A]!);
    if (r.applied !== events.length) throw new Error(`session usage: ${r.applied}/${events.length} applied`);
    await doff(s, i);
  };

  // warm-up: connections, caches (meters of every agent) and the JIT. V8 compiles hot JS and
  // PGlite's wasm on background threads; with a short warm-up that compilation landed in the
  // measured Don phase as off-main-thread CPU (ADR 0123), so Don and Doff warm up at full load.
  await phase(2000, cfg.concurrency, () => check());
  const warm = Array.from({ length: Math.max(A * 4, Math.min(cfg.n, 2000)) }, sid);
  await phase(warm.length, cfg.concurrency, (i) => don(warm[i]!, i).then(() => undefined));
  await phase(warm.length, cfg.concurrency, (i) => doff(warm[i]!, i).then(() => undefined));
  // Full sessions too: RecordUsage is compiled here, not inside the measured session phase (ADR 0130).
  await phase(Math.min(cfg.n, 2000), cfg.concurrency * 2, fullSession);

  /** One round of the five phases; `around` wraps each phase (the profiled round toggles the profiler). */
  type Around = (name: PhaseName, run: () => Promise<PhaseResult>) => Promise<PhaseResult>;
  async function round(n: number, usageEvents: number, around: Around): Promise<Record<PhaseName, PhaseResult>> {
    const checkRes = await around("check", () => phase(n, cfg.concurrency, () => check()));
    const ids = Array.from({ length: n }, sid);
    const donRes = await around("don", () => phase(n, cfg.concurrency, (i) => don(ids[i]!, i).then(() => undefined)));
    const doffRes = await around("doff", () => phase(n, cfg.concurrency, (i) => doff(ids[i]!, i).then(() => undefined)));
    // Each session has ONE call in flight at a time (Don, then Doff), so twice the sessions keep
    // the same number of calls in flight as the Don and Doff phases.
    // A full session as issue 20 defines it: Don, one RecordUsage batch of its own events, Doff.
    const sessionsRes = await around("sessions", () =>
      phase(n / 2, cfg.concurrency * 2, fullSession),
    );

    // usage: a pool of open sessions, events spread over them, sequence numbers per session
    const POOL = Math.max(A, 200);
    const pool = Array.from({ length: POOL }, sid);
    await Promise.all(pool.map((s, i) => don(s, i)));
    const seq = new Array<bigint>(POOL).fill(0n);
    const batches = Math.ceil(usageEvents / cfg.usageBatch);
    // each batch is sent by ONE agent for its own sessions (agent k owns sessions k, k+A, ...)
    const usageRes = await around("usage_events", () =>
      phase(batches, Math.min(32, cfg.concurrency), async (b) => {
        const agent = b % A;
        const mine: number[] = [];
        for (let j = agent; j < POOL; j += A) mine.push(j);
        const events = Array.from({ length: cfg.usageBatch }, (_, e) => {
          const j = mine[e % mine.length]!;
          seq[j]! += 1n;
          return { sessionId: pool[j]!, seq: seq[j]!, inputTokens: 100n, outputTokens: 50n, toolCalls: e % 5 === 0 ? 1n : 0n };
        });
        const r = await unary(
          "/masques.ledger.v1.SessionService/RecordUsage",
          RecordUsageRequestSchema,
          RecordUsageResponseSchema,
          { events },
          metas[agent]!,
        );
        if (r.applied !== events.length) throw new Error(`usage: ${r.applied}/${events.length} applied`);
        return events.length;
      }),
    );
    await Promise.all(pool.map((s, i) => doff(s, i)));
    return { check: checkRes, don: donRes, doff: doffRes, sessions: sessionsRes, usage_events: usageRes };
  }

  const measured = await round(cfg.n, cfg.usageEvents, (_, run) => run());

  // The profiled re-run: the same phases, each between two SIGUSR2 (start, stop + write).
  const profiles: Partial<Record<PhaseName, ProfiledPhase>> = {};
  if (cfg.profileDir !== null && cfg.daemonPid !== null) {
    const dir = cfg.profileDir;
    const pid = cfg.daemonPid;
    await round(cfg.splitN, cfg.splitUsageEvents, async (name, run) => {
      const before = new Set(listProfiles(dir));
      process.kill(pid, CPU_PROFILE_SIGNAL);
      const marker = path.join(dir, `daemon-${pid}.profiling`);
      await until(() => existsSync(marker), `the daemon (pid ${pid}) to start profiling`);
      const { start_ms } = JSON.parse(readFileSync(marker, "utf8")) as { start_ms: number };
      const res = await run();
      process.kill(pid, CPU_PROFILE_SIGNAL);
      profiles[name] = { file: await newProfile(dir, before), result: res, start_ms };
      return res;
    });
  }
  for (const c of clients) c.close();
  return {
    ...measured,
    don_vs_check: r2(measured.don.rate / measured.check.rate),
    doff_vs_check: r2(measured.doff.rate / measured.check.rate),
    profiles,
  };
}

const PHASES = ["check", "don", "doff", "sessions", "usage_events"] as const;
type PhaseName = (typeof PHASES)[number];
/** A phase of the profiled re-run: its profile file and its own figures (profiling on). */
interface ProfiledPhase {
  file: string;
  result: PhaseResult;
  /** How long the daemon took to start the profiler (before the phase began), ms. */
  start_ms: number;
}
interface WorkerResult extends Record<PhaseName, PhaseResult> {
  don_vs_check: number;
  doff_vs_check: number;
  profiles: Partial<Record<PhaseName, ProfiledPhase>>;
}

function listProfiles(dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
  } catch {
    return [];
  }
}

/** Poll `cond` every 20 ms, for at most 120 s (then throw naming `what`). */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after 120 s waiting for ${what} (was it started with MASQUES_CPU_PROFILE_DIR?)`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The profile file that appears in `dir` after a stop signal (the daemon renames it into place when complete). */
async function newProfile(dir: string, before: Set<string>): Promise<string> {
  let f: string | undefined;
  await until(() => (f = listProfiles(dir).find((x) => !before.has(x))) !== undefined, `a new CPU profile in ${dir}`);
  return path.join(dir, f!);
}

// ---------------------------------------------------------------------------------------------
// Orchestrator (parent process)

/** Free loopback port (bound then released). */
async function freePort(): Promise<number> {
  const net = await import("node:net");
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const a = srv.address();
      const port = typeof a === "object" && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The daemon as users run it (`masques-ledger serve`), with per-RPC logging off (warn level) so
 * the figures measure the service, not log I/O. Ready = grpc.health.v1 answers SERVING.
 */
async function startBenchDaemon(
  profileDir: (dataDir: string) => string | null,
): Promise<{ grpcAddr: string; dataDir: string; pid: number | null; profileDir: string | null; stop: () => Promise<void> }> {
  const fs = await import("node:fs");
  const os = await import("node:os");
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-sessions-"));
  const grpcAddr = `127.0.0.1:${await freePort()}`;
  const httpAddr = `127.0.0.1:${await freePort()}`;
  const root = path.resolve(HERE, "..");
  // BENCH_DAEMON_CPU_PROF=<dir>: write a V8 CPU profile of the daemon there (on graceful stop).
  const prof = process.env.BENCH_DAEMON_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_DAEMON_CPU_PROF}`] : [];
  // The per-phase split: the daemon profiles on SIGUSR2 into this directory (src/telemetry/profiler.ts).
  const cpuProfileDir = profileDir(dataDir);
  // BENCH_DAEMON_NODE_ARGS="--single-threaded-gc ...": extra node/V8 flags for the daemon only (experiments).
  // Unset: the young-generation size `npm start` ships with (ADR 0129), so the figures describe
  // the daemon as the quick start runs it.
  const nodeArgs = (process.env.BENCH_DAEMON_NODE_ARGS ?? "--max-semi-space-size=64").split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [...prof, ...nodeArgs, path.join(root, "bin/masques-ledger.js"), "serve"], {
    cwd: root,
    env: {
      ...process.env,
      MASQUES_GRPC_ADDR: grpcAddr,
      MASQUES_HTTP_ADDR: httpAddr,
      MASQUES_DATA_DIR: dataDir,
      MASQUES_LOG_LEVEL: "warn",
      SESSION_REAPER_INTERVAL_MS: "60000",
      // The CDC streamer (ledger -> ClickHouse) runs inside `serve` by default; it is not on the
      // request path and has its own bench, so it is off here unless --with-streamer.
      STREAMER_ENABLED: process.argv.includes("--with-streamer") ? "true" : "false",
      MASQUES_CPU_PROFILE_DIR: cpuProfileDir ?? "",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const client = new grpc.Client(grpcAddr, grpc.credentials.createInsecure());
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error("daemon exited during start-up");
    const ok = await new Promise<boolean>((resolve) =>
      client.makeUnaryRequest(
        "/grpc.health.v1.Health/Check",
        () => Buffer.alloc(0),
        (b: Buffer) => b,
        {},
        new grpc.Metadata(),
        { deadline: Date.now() + 1000 },
        (err, res) => resolve(!err && res !== undefined && res.length >= 2 && res[1] === 1),
      ),
    );
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error("daemon did not become SERVING within 60 s");
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  client.close();
  return {
    grpcAddr,
    dataDir,
    pid: child.pid ?? null,
    profileDir: cpuProfileDir,
    async stop() {
      child.kill("SIGTERM");
      await exited;
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The service without transport: SessionEngine on an embedded ledger in this process. */
async function inProcess(n: number, concurrency: number, usageEvents: number, usageBatch: number): Promise<Record<string, unknown>> {
  const fs = await import("node:fs");
  const os = await import("node:os");
  const { pino } = await import("pino");
  const { createEmbeddedClient } = await import("../src/ledger/embedded/index.js");
  const { createCoalescedClient } = await import("../src/ledger/coalescer.js");
  const { loadConfig } = await import("../src/config.js");
  const { createSessionInstance } = await import("../src/services/sessions/service.js");
  const { sessionAccountIds } = await import("../src/domain/session-accounts.js");
  const { onStart } = await import("../src/services/index.js");
  const { agentWalletAccounts, depositTransfer } = await import("../src/domain/accounts.js");
  const { BillingMode, RecordUsageRequestSchema } = await import("../clients/gen/masques/ledger/v1/session_service_pb.js");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-sessions-inproc-"));
  const inner = createEmbeddedClient({ dataDir: path.join(dir, "ledger") });
  let controlplane: import("../src/controlplane/index.js").ControlPlane | undefined;
  try {
    const ledger = createCoalescedClient(inner);
    const config = loadConfig({ MASQUES_DATA_DIR: dir, MASQUES_DIR: path.resolve(HERE, "../masques"), SESSION_REAPER_INTERVAL_MS: "600000" });
    const { controlPlaneOptions, openControlPlane } = await import("../src/controlplane/index.js");
    controlplane = await openControlPlane(controlPlaneOptions(config));
    const ctx = { ledger, controlplane, config, log: pino({ level: "silent" }), clock: () => BigInt(Date.now()) * 1_000_000n };
    await onStart(ctx);
    const inst = createSessionInstance(ctx, { reaper: false });
    await inst.ready;
    const eng = inst.handlers;
    const agents = Array.from({ length: 64 }, (_, i) => `inproc-${i}`);
    await ledger.createAccounts(agents.flatMap((a) => agentWalletAccounts(a, "prepaid")));
    await ledger.createTransfers(
      agents.map((a, i) => depositTransfer({ walletId: sessionAccountIds.agentWallet(a), amountMicro: 10n ** 12n, rail: null, idempotencyKey: `inproc-${i}` })),
    );
    const P = (a: string) => ({ kind: "agent" as const, id: a, scopes: ["ledger:read", "ledger:write"] as const });
    const run = async (total: number, c: number, op: (i: number) => Promise<number | void>) => {
      let next = 0;
      let ops = 0;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: c }, async () => {
          for (;;) {
            const i = next++;
            if (i >= total) return;
            const k = await op(i);
            ops += typeof k === "number" ? k : 1;
          }
        }),
      );
      const cpu = process.cpuUsage(c0);
      return { rate: Math.round(ops / ((performance.now() - t0) / 1000)), cpu_us_per_op: Math.round(((cpu.user + cpu.system) / ops) * 10) / 10 };
    };
    const sids = Array.from({ length: n }, () => randomBytes(16).toString("hex"));
    const don = await run(n, concurrency, async (i) => {
      toBinary(DonResponseSchema, create(DonResponseSchema, await eng.don(P(agents[i % 64]!), { sessionId: sids[i]!, masque: "researcher", agentId: "", maxSpendMicro: 0n, billingMode: BillingMode.UNSPECIFIED })));
    });
    const doff = await run(n, concurrency, async (i) => {
      toBinary(DoffResponseSchema, create(DoffResponseSchema, { session: await eng.doff(P(agents[i % 64]!), sids[i]!) }));
    });
    const pool = Array.from({ length: 256 }, () => randomBytes(16).toString("hex"));
    await Promise.all(pool.map((sid, i) => eng.don(P(agents[i % 64]!), { sessionId: sid, masque: "researcher", agentId: "", maxSpendMicro: 0n, billingMode: BillingMode.UNSPECIFIED })));
    const seq = new Array<bigint>(256).fill(0n);
    const batches = Math.ceil(usageEvents / usageBatch);
    const usage = await run(batches, 16, async (b) => {
      const agent = b % 64;
      const events = Array.from({ length: usageBatch }, (_, e) => {
        const j = agent + 64 * (e % 4);
        seq[j]! += 1n;
        return { sessionId: pool[j]!, seq: seq[j]!, inputTokens: 100n, outputTokens: 50n, toolCalls: e % 5 === 0 ? 1n : 0n };
      });
      const msg = fromBinary(RecordUsageRequestSchema, toBinary(RecordUsageRequestSchema, create(RecordUsageRequestSchema, { events })));
      const r = await eng.recordUsage(P(agents[agent]!), msg.events);
      if (r.applied !== usageBatch) throw new Error(`usage: ${r.applied}/${usageBatch} applied`);
      return usageBatch;
    });
    return { in_process: { don, doff, usage_events: usage } };
  } finally {
    await controlplane?.close();
    await inner.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Issue 20's targets (same run, ratios first). */
const TARGETS = { don_vs_check_min: 0.9, doff_vs_check_min: 0.9, sessions_per_s_min: 5_000, usage_events_per_s_min: 100_000 };

/**
 * What the run's own figures say the targets need (ADR 0132). When the load generator and the daemon
 * share the machine's `cores` and every phase keeps them busy (256 in flight), a phase's rate is
 * cores × 10^6 / (daemon + client CPU µs per call). So, with h + c the CPU a Check costs both sides:
 *  - Don at >= r × the Check rate needs (Don's daemon + client µs) <= (h + c) / r, i.e. Don may cost
 *    the daemon at most `don_daemon_us_max` at this run's client cost;
 *  - S sessions/s needs (daemon + client) per session <= cores × 10^6 / S (`session_cpu_us_budget`);
 *    three calls that each cost at least a Check cap sessions at cores × 10^6 / (3 (h + c))
 *    (`sessions_per_s_if_each_call_cost_a_check`);
 *  - both together, whatever the load generator costs: Don's and Doff's daemon CPU beyond a Check's
 *    (L) must satisfy L <= (1/r − 1)(h + c) and 3 (h + c) + L_don + L_doff <= budget, hence
 *    L <= budget / (3 / (1/r − 1) + 1) (`extra_daemon_us_per_call_max_for_both`; 14.3 µs on 2 cores).
 */
function boundsOf(m: Record<PhaseName, PhaseResult>, cores: number): Record<string, number> {
  const r = TARGETS.don_vs_check_min;
  const check = m.check.daemon_cpu_us_per_op + m.check.client_cpu_us_per_op;
  const budget = (cores * 1e6) / TARGETS.sessions_per_s_min;
  const k = 1 / r - 1;
  const r1 = (x: number): number => Math.round(x * 10) / 10;
  return {
    cores,
    check_cpu_us_per_call_both_sides: r1(check),
    don_daemon_us_max_for_ratio: r1(check / r - m.don.client_cpu_us_per_op),
    doff_daemon_us_max_for_ratio: r1(check / r - m.doff.client_cpu_us_per_op),
    session_cpu_us_budget: r1(budget),
    session_cpu_us_measured: r1(m.sessions.daemon_cpu_us_per_op + m.sessions.client_cpu_us_per_op),
    sessions_per_s_if_each_call_cost_a_check: Math.round((cores * 1e6) / (3 * check)),
    extra_daemon_us_per_call_max_for_both: r1(budget / (3 / k + 1)),
    don_extra_daemon_us_measured: r1(m.don.daemon_cpu_us_per_op - m.check.daemon_cpu_us_per_op),
    doff_extra_daemon_us_measured: r1(m.doff.daemon_cpu_us_per_op - m.check.daemon_cpu_us_per_op),
  };
}

/** Off the main thread (measured in ADR 0123: mostly GC in steady state, JIT early on; libuv's pool ~1 %). */
const OFF_THREAD_DOC = "daemon CPU outside its main thread (/proc): V8's platform threads, i.e. concurrent/parallel GC and JIT compilation; libuv's pool (file I/O) ~1 %";

type SplitColumn = Category | "off_thread";
interface PhaseSplit {
  /** Measured (profiler off) daemon CPU per call, µs: the total the parts add up to. */
  daemon_cpu_us_per_op: number;
  daemon_main_thread_cpu_us_per_op: number;
  /** µs per call of each category (main thread × share) and off the main thread. */
  us_per_op: Record<SplitColumn, number>;
  /** Shares of the main thread's busy samples in this phase's profile, %. */
  share_pct: Record<Category, number>;
  busy_samples: number;
  sampling_interval_us: number;
  other_top: { frame: string; pct: number }[];
  /** The profiled re-run's own figures (its daemon CPU vs the measured one is the profiler's overhead). */
  profiled: { ops: number; rate: number; daemon_cpu_us_per_op: number; daemon_main_thread_cpu_us_per_op: number; profiler_start_ms: number };
}
interface CpuSplit {
  method: string;
  categories: Record<SplitColumn, string>;
  phases: Partial<Record<PhaseName, PhaseSplit>>;
}

/** Each phase's measured daemon CPU per call split by its profile's shares (null when no profiles). */
function splitOf(measured: Record<PhaseName, PhaseResult>, profiles: Partial<Record<PhaseName, ProfiledPhase>>): CpuSplit | null {
  const phases: Partial<Record<PhaseName, PhaseSplit>> = {};
  for (const name of PHASES) {
    const pr = profiles[name];
    if (!pr) continue;
    const m = measured[name];
    const sp = splitProfile(JSON.parse(readFileSync(pr.file, "utf8")) as CpuProfile, { otherTop: 3 });
    const main = Math.min(m.daemon_main_thread_cpu_us_per_op, m.daemon_cpu_us_per_op);
    phases[name] = {
      daemon_cpu_us_per_op: m.daemon_cpu_us_per_op,
      daemon_main_thread_cpu_us_per_op: m.daemon_main_thread_cpu_us_per_op,
      us_per_op: { ...microsPerCall(sp, main), off_thread: r1(m.daemon_cpu_us_per_op - main) },
      share_pct: sp.share_pct,
      busy_samples: sp.busy_samples,
      sampling_interval_us: sp.interval_us,
      other_top: sp.other_top,
      profiled: {
        ops: pr.result.ops,
        rate: pr.result.rate,
        daemon_cpu_us_per_op: pr.result.daemon_cpu_us_per_op,
        daemon_main_thread_cpu_us_per_op: pr.result.daemon_main_thread_cpu_us_per_op,
        profiler_start_ms: pr.start_ms,
      },
    };
  }
  if (Object.keys(phases).length === 0) return null;
  return {
    method:
      "µs per call = measured daemon main-thread CPU µs per call × the category's share of that phase's busy main-thread samples " +
      "(profiled re-run, src/telemetry/profiler.ts, bench/profile-categories.ts); off_thread = measured process CPU − main thread",
    categories: { ...CATEGORY_DOC, off_thread: OFF_THREAD_DOC },
    phases,
  };
}

const PHASE_LABEL: Record<PhaseName, string> = {
  check: "grpc.health.v1 Check",
  don: "Don",
  doff: "Doff",
  sessions: "full session (Don+usage+Doff)",
  usage_events: "usage event",
};
const COLUMN_LABEL: Record<SplitColumn, string> = {
  transport: "transport",
  authentication: "auth",
  rate_limit: "rate lim",
  service: "service",
  ledger: "ledger",
  control_plane: "ctl plane",
  telemetry: "telemetry",
  analytics: "analytics",
  gc: "gc",
  native: "native",
  other: "other",
  off_thread: "off-thread",
};

function printTables(res: WorkerResult, concurrency: number, usageBatch: number, cpuSplit: CpuSplit | null): void {
  const rows: [string, PhaseResult][] = [
    ["grpc.health.v1 Check", res.check],
    ["Don", res.don],
    ["Doff", res.doff],
    [`full session (Don+usage+Doff, ${concurrency * 2} open)`, res.sessions],
    [`usage events (RecordUsage x${usageBatch})`, res.usage_events],
  ];
  console.log(`\nSessionService bench — ${concurrency} in flight, load generator in a separate process`);
  console.log(
    "phase".padEnd(34) + "rate/s".padStart(10) + "p50 ms".padStart(10) + "p99 ms".padStart(10) + "errors".padStart(8) +
      "daemon CPU µs/op".padStart(18) + "main thread".padStart(13) + "client CPU µs/op".padStart(18),
  );
  for (const [name, r] of rows) {
    console.log(
      name.padEnd(34) + String(r.rate).padStart(10) + String(r.p50_ms).padStart(10) + String(r.p99_ms).padStart(10) +
        String(r.errors).padStart(8) + String(r.daemon_cpu_us_per_op).padStart(18) + String(r.daemon_main_thread_cpu_us_per_op).padStart(13) +
        String(r.client_cpu_us_per_op).padStart(18),
    );
  }
  console.log(`\nDon / Check = ${res.don_vs_check}   Doff / Check = ${res.doff_vs_check}   (target >= ${TARGETS.don_vs_check_min})`);
  console.log(
    `sessions/s = ${res.sessions.rate} (target >= ${TARGETS.sessions_per_s_min})   usage events/s = ${res.usage_events.rate} (target >= ${TARGETS.usage_events_per_s_min})`,
  );
  const b = boundsOf(res, availableParallelism());
  console.log(
    `\nwhat the targets need here (ADR 0132; ${b.cores} cores shared with the load generator): ` +
      `Don <= ${b.don_daemon_us_max_for_ratio} µs and Doff <= ${b.doff_daemon_us_max_for_ratio} µs daemon CPU for ${TARGETS.don_vs_check_min}x Check at this client cost; ` +
      `a session <= ${b.session_cpu_us_budget} µs both sides for ${TARGETS.sessions_per_s_min}/s (measured ${b.session_cpu_us_measured}; ` +
      `${b.sessions_per_s_if_each_call_cost_a_check}/s if each of its 3 calls cost only a Check); ` +
      `both at once: Don and Doff each <= ${b.extra_daemon_us_per_call_max_for_both} µs beyond a Check whatever the client costs ` +
      `(measured Don +${b.don_extra_daemon_us_measured}, Doff +${b.doff_extra_daemon_us_measured})`,
  );
  if (!cpuSplit) return;
  const cols: SplitColumn[] = [...CATEGORIES.filter((c) => c !== "other"), "off_thread", "other"];
  const any = Object.values(cpuSplit.phases)[0]!;
  console.log(
    `\nDaemon CPU µs per call by category (measured µs/call × shares of a profiled re-run of ${any.profiled.ops} calls per phase, sampled every ~${any.sampling_interval_us} µs)`,
  );
  console.log("phase".padEnd(26) + "total".padStart(8) + cols.map((c) => COLUMN_LABEL[c].padStart(11)).join(""));
  for (const name of PHASES) {
    const p = cpuSplit.phases[name];
    if (!p) continue;
    console.log(PHASE_LABEL[name].padEnd(26) + p.daemon_cpu_us_per_op.toFixed(1).padStart(8) + cols.map((c) => p.us_per_op[c].toFixed(1).padStart(11)).join(""));
  }
  console.log(
    "\nprofiler overhead, daemon main-thread CPU µs/call with the profiler on vs off (the shares come from the main thread; the sampler's own thread is extra): " +
      PHASES.filter((n) => cpuSplit.phases[n])
        .map((n) => `${n} ${cpuSplit.phases[n]!.profiled.daemon_main_thread_cpu_us_per_op} vs ${cpuSplit.phases[n]!.daemon_main_thread_cpu_us_per_op}`)
        .join(", "),
  );
  console.log("other, by innermost frame (% of the phase's busy samples):");
  for (const name of PHASES) {
    const p = cpuSplit.phases[name];
    if (p && p.other_top.length > 0) console.log(`  ${name}: ${p.other_top.map((o) => `${o.frame} ${o.pct} %`).join("; ")}`);
  }
  console.log("categories:");
  for (const c of cols) console.log(`  ${COLUMN_LABEL[c].padEnd(11)}${cpuSplit.categories[c]}`);
}

async function main(): Promise<void> {
  if (process.argv.includes("--worker")) {
    const cfg = JSON.parse(process.env.BENCH_WORKER_CONFIG ?? "{}") as WorkerConfig;
    const out = await worker(cfg);
    process.stdout.write(JSON.stringify(out) + "\n");
    return;
  }
  const n = Number(arg("n") ?? 20_000);
  const concurrency = Number(arg("concurrency") ?? 256);
  const usageEvents = Number(arg("usage-events") ?? 200_000);
  const usageBatch = Number(arg("usage-batch") ?? 500);
  const sessionUsageEvents = Number(arg("session-usage-events") ?? 10);
  const view = arg("view") === "full" ? "full" : "basic";
  const say = (...a: unknown[]) => {
    if (!json) console.error(...a);
  };
  if (process.argv.includes("--in-process")) {
    const r = await inProcess(n, concurrency, usageEvents, usageBatch);
    console.log(json ? JSON.stringify(r) : r);
    return;
  }

  let grpcAddr = arg("grpc-addr");
  let dataDir = arg("data-dir");
  let stop: (() => Promise<void>) | null = null;
  let daemonPid: number | null = arg("daemon-pid") ? Number(arg("daemon-pid")) : null;
  const split = !process.argv.includes("--no-split");
  const splitN = Number(arg("split-n") ?? Math.min(n, 5_000));
  const splitUsageEvents = Math.min(usageEvents, splitN * 10);
  let profileDir: string | null = split ? (arg("daemon-profile-dir") ?? null) : null;
  if (!grpcAddr) {
    say("starting daemon (embedded ledger, temp data dir, MASQUES_LOG_LEVEL=warn)...");
    const keep = arg("keep-profiles");
    const d = await startBenchDaemon((data) => (split ? path.resolve(keep ?? path.join(data, "cpu-profiles")) : null));
    grpcAddr = d.grpcAddr;
    dataDir = d.dataDir;
    daemonPid = d.pid;
    profileDir = d.profileDir;
    stop = d.stop;
  }
  if (profileDir !== null && daemonPid === null) throw new Error("--daemon-profile-dir needs --daemon-pid (the daemon to signal)");
  if (!dataDir) throw new Error("--data-dir is required with --grpc-addr (to mint tokens from the dev key pair)");
  try {
    const keys = await loadOrCreateDevKeys(dataDir);
    const tok = (kind: "agent" | "admin", id: string) =>
      mintToken(keys.privateJwk, { kind, id, scopes: DEFAULT_SCOPES[kind], issuer: "masques-ledger", audience: "masques-ledger", ttlS: 3600 });
    const AGENTS = 64;
    const run = randomBytes(4).toString("hex");
    const agents = Array.from({ length: AGENTS }, (_, i) => `bench-${run}-${i}`);
    const adminTransport = createGrpcTransport({
      baseUrl: `http://${grpcAddr}`,
      interceptors: [
        (next) => async (req) => {
          req.header.set("authorization", `Bearer ${await adminToken}`);
          return next(req);
        },
      ],
    });
    const adminToken = tok("admin", "bench-admin");
    const admin = createClient(AccountService, adminTransport);
    const agentTokens: string[] = [];
    say(`funding ${AGENTS} agent wallets...`);
    for (const a of agents) {
      const t = await tok("agent", a);
      agentTokens.push(t);
      const at = createGrpcTransport({
        baseUrl: `http://${grpcAddr}`,
        interceptors: [
          (next) => async (req) => {
            req.header.set("authorization", `Bearer ${t}`);
            return next(req);
          },
        ],
      });
      await createClient(AccountService, at).openAgentWallet({ mode: WalletMode.PREPAID });
      await admin.deposit({ account: { ref: { case: "agentWallet", value: a } }, amountMicro: 1_000_000_000_000n, idempotencyKey: `bench-${a}` });
    }
    const cfg: WorkerConfig = { grpcAddr, daemonPid, agentTokens, n, concurrency, usageEvents, usageBatch, sessionUsageEvents, view, masque: "researcher", profileDir, splitN, splitUsageEvents };
    say(
      `load generator (separate process): ${n} requests per phase, ${concurrency} in flight` +
        (profileDir ? `; then each phase again with the daemon's CPU profiler on (${splitN} requests, ${splitUsageEvents} usage events)...` : "..."),
    );
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", path.join(HERE, "sessions.ts"), "--worker"], {
        env: { ...process.env, BENCH_WORKER_CONFIG: JSON.stringify(cfg) },
        stdio: ["ignore", "pipe", "inherit"],
      });
      let buf = "";
      child.stdout.on("data", (d: Buffer) => (buf += d.toString()));
      child.on("exit", (code) => (code === 0 ? resolve(buf) : reject(new Error(`load generator exited with ${code}`))));
    });
    const res = JSON.parse(out.trim().split("\n").pop()!) as WorkerResult;
    const { profiles, ...measured } = res;
    const cpuSplit = splitOf(measured, profiles);
    // The daemon's peak resident set (ADR 0129: what a larger young generation costs in memory).
    const hwm = daemonPid === null ? null : /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${daemonPid}/status`, "utf8"))?.[1];
    const result = {
      machine: { cpus: (await import("node:os")).cpus().length, node: process.version },
      concurrency,
      n,
      usage_batch: usageBatch,
      session_usage_events: sessionUsageEvents,
      view,
      ...measured,
      ...(hwm ? { daemon_vm_hwm_kb: Number(hwm) } : {}),
      targets: TARGETS,
      bounds: boundsOf(measured, availableParallelism()),
      ...(cpuSplit ? { cpu_split: cpuSplit } : {}),
    };
    if (json) {
      console.log(JSON.stringify(result));
    } else {
      printTables(res, concurrency, usageBatch, cpuSplit);
    }
  } finally {
    if (stop) await stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
