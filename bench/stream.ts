/**
 * CDC streamer benchmark (issue 5). All figures from one run on this machine.
 *
 *   npm run bench:stream                 # table
 *   npm run bench:stream -- --json       # one JSON object with the same figures
 * Options: --transfers N (ingest phase, default 200000), --rate S (sessions/s offered in the lag
 * phase, default 1000), --seconds T (lag phase length, default 15), --concurrency C (default 64).
 *
 * 1. Ingest: N transfers written to a fresh embedded ledger in full batches, then the streamer
 *    catches up from zero into embedded chDB: transfers/s end to end (ledger reads + inserts +
 *    balance snapshots + derived tables + cursor), and the raw chDB insert rate for the same rows.
 * 2. Lag under daemon load: the real daemon (`serve`, streamer on) driven by SESSIONS' benchmark
 *    load generator (bench/sessions.ts: Don, Doff, full sessions, batched RecordUsage over native
 *    gRPC from a separate process). Lag figures come from the daemon's own metric
 *    (`streamer_stats`, read after a graceful stop). Skip with --no-daemon; size with
 *    --daemon-n (requests per phase, default 4000) and --daemon-usage (events, default 40000).
 * 3. Lag under in-process load: the daemon's ledger stack (embedded engine behind the request
 *    coalescer) driven with full sessions (Don, usage, Doff: SESSIONS' domain plans, 7 transfers)
 *    at the offered rate, first without and then with the streamer in the same process.
 *    Event-loop delay p99 in both runs shows chDB staying off the event loop. Skip with
 *    --no-in-process.
 * Lag = commit time in ClickHouse - ledger timestamp, for every event: p50/p99.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { Client, Transfer } from "tigerbeetle-node";
import { agentDebtId, agentWalletAccounts, agentWalletId, authorEarningsAccount, depositTransfer, startupPlatformAccounts, USAGE_LEDGERS } from "../src/domain/accounts.js";
import { AccountCode } from "../src/domain/codes.js";
import { deterministicId } from "../src/domain/ids.js";
import { priceBookFromText } from "../src/domain/pricing.js";
import { planDoff, planDon, planUsage, priceSession, sessionMeterAccounts } from "../src/domain/sessions.js";
import { createCoalescedClient } from "../src/ledger/coalescer.js";
import { createEmbeddedClient } from "../src/ledger/embedded/index.js";
import { sessionAccountIds, usageMeterId } from "../src/domain/session-accounts.js";
import { ChdbSink, migrate, Streamer } from "../src/streamer/index.js";
import { TRANSFER_COLUMNS, transferRow } from "../src/streamer/rows.js";
import { account, createFixtureAccounts, writeTransfers } from "../tests/streamer/support.js";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const json = process.argv.includes("--json");
const N = arg("transfers", 200_000);
const RATE = arg("rate", 1000);
const SECONDS = arg("seconds", 15);
const CONCURRENCY = arg("concurrency", 64);
const log = (msg: string) => {
  if (!json) process.stderr.write(msg + "\n");
};

const dir = mkdtempSync(path.join(tmpdir(), "masques-bench-stream-"));
const sinkDir = path.join(dir, "chdb");

// ---- 1. ingest ---------------------------------------------------------------------------------
async function ingest(): Promise<{ transfers: number; seconds: number; transfers_per_s: number; chdb_insert_rows_per_s: number }> {
  const client = createEmbeddedClient({ dataDir: path.join(dir, "ledger-ingest") });
  await createFixtureAccounts(client, 64);
  log(`ingest: writing ${N} transfers to the ledger...`);
  await writeTransfers(client, N, 64, 1n);
  const sink = await ChdbSink.open({ path: sinkDir, database: "bench_ingest" });
  await migrate(sink);
  const streamer = await Streamer.create({ client, sink });
  log("ingest: streamer catching up...");
  const t0 = performance.now();
  const r = await streamer.syncOnce();
  const seconds = (performance.now() - t0) / 1000;
  // raw insert rate of the same rows (no ledger reads, no derived tables) into a scratch table
  await sink.exec("CREATE TABLE bench_ingest.raw AS bench_ingest.transfers");
  const rows: ReturnType<typeof transferRow>[] = [];
  for (let min = 1n; ; ) {
    const page = await client.queryTransfers({ user_data_128: 0n, user_data_64: 0n, user_data_32: 0, ledger: 0, code: 0, timestamp_min: min, timestamp_max: 0n, limit: 8189, flags: 0 });
    for (const t of page) rows.push(transferRow(t));
    if (page.length < 8189) break;
    min = page[page.length - 1]!.timestamp + 1n;
  }
  const t1 = performance.now();
  for (let i = 0; i < rows.length; i += 32_756) await sink.insert("raw", TRANSFER_COLUMNS, rows.slice(i, i + 32_756));
  const rawSeconds = (performance.now() - t1) / 1000;
  await sink.close();
  await client.close();
  return {
    transfers: r.transfers,
    seconds: round(seconds, 3),
    transfers_per_s: Math.round(r.transfers / seconds),
    chdb_insert_rows_per_s: Math.round(rows.length / rawSeconds),
  };
}

// ---- 2. lag under session load -----------------------------------------------------------------
const PRICE = priceBookFromText({ flat_per_session: "0.05", per_minute: "0.01", per_1k_input_tokens: "0.003", per_1k_output_tokens: "0.015", per_tool_call: "0.001", reserve: "1.00" });

async function setupAgents(client: Client, agents: string[]): Promise<void> {
  await client.createAccounts(startupPlatformAccounts([]));
  for (const agent of agents) {
    await client.createAccounts([
      ...agentWalletAccounts(agent, "prepaid"),
      authorEarningsAccount(`author-${agent}`),
      account(agentDebtId(agent), AccountCode.agent_debt, { flags: 0 }),
      ...USAGE_LEDGERS.map((l) => account(usageMeterId(agent, l), AccountCode.usage_meter, { ledger: l, flags: 0 })),
    ]);
    await client.createTransfers([depositTransfer({ walletId: agentWalletId(agent), amountMicro: 1_000_000_000_000n, rail: null, idempotencyKey: `bench-${agent}` })]);
  }
}

interface LoadResult {
  sessions: number;
  sessions_per_s: number;
  transfers: number;
  event_loop_delay_p99_ms: number;
  failures: number;
}

/** Full sessions at `rate`/s for `seconds`, C at a time, through `client`. */
async function sessionLoad(client: Client, agents: string[], tag: string, rate: number, seconds: number): Promise<LoadResult> {
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let started = 0;
  let done = 0;
  let failures = 0;
  const check = async (what: string, p: Promise<{ status: number }[]>) => {
    const res = await p;
    if (res.some((r) => r.status !== 0xffffffff)) {
      failures++;
      throw new Error(`${what}: ${res.map((r) => r.status).join(",")}`);
    }
  };
  const worker = async (w: number) => {
    const agent = agents[w % agents.length]!;
    while (performance.now() < end) {
      // pace: session k may start at t0 + k / rate
      const k = started++;
      const due = t0 + (k * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (performance.now() >= end) break;
      const session_id = deterministicId("bench-session", tag, k);
      try {
        await check("don", client.createTransfers([planDon(sessionAccountIds, { session_id, agent_id: agent, masque_index: w % 16, price_version: 1, mode: "live", hold_micro: PRICE.reserve_micro, timeout_s: 3600 })]));
        await check("session meters", client.createAccounts(sessionMeterAccounts(session_id, agentWalletId(agent))));
        const usage = { input_tokens: 1500n, output_tokens: 700n, tool_calls: 3n };
        await check("usage", client.createTransfers(planUsage(sessionAccountIds, { session_id, agent_id: agent, seq: 1n, ...usage })));
        const settlement = priceSession(PRICE, "live", PRICE.reserve_micro, usage, 30_000n, 2000);
        const chain: Transfer[] = planDoff(sessionAccountIds, { session_id, agent_id: agent, author_id: `author-${agent}`, masque_index: w % 16, settlement, billed_duration_ms: 30_000n, fee_bps: 2000, reason: "doff" });
        await check("doff", client.createTransfers(chain));
        done++;
      } catch {
        // counted in failures
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
  loop.disable();
  const secs = (performance.now() - t0) / 1000;
  return {
    sessions: done,
    sessions_per_s: Math.round(done / secs),
    transfers: done * 7,
    event_loop_delay_p99_ms: round(loop.percentile(99) / 1e6, 1),
    failures,
  };
}

async function lagUnderLoad() {
  const engine = createEmbeddedClient({ dataDir: path.join(dir, "ledger-load") });
  const client = createCoalescedClient(engine);
  const agents = Array.from({ length: CONCURRENCY }, (_, i) => `bench-agent-${i}`);
  await setupAgents(client, agents);
  log(`lag: ${SECONDS}s of sessions at ${RATE}/s without the streamer...`);
  const baseline = await sessionLoad(client, agents, "baseline", RATE, Math.max(3, Math.round(SECONDS / 3)));
  const sink = await ChdbSink.open({ path: sinkDir, database: "bench_lag" });
  await migrate(sink);
  const streamer = await Streamer.create({ client, sink, poll_ms: 200 });
  await streamer.syncOnce(); // catch up with the set-up and the baseline run first
  streamer.lagHistogram.reset();
  streamer.start();
  log(`lag: ${SECONDS}s of sessions at ${RATE}/s with the streamer running in-process...`);
  const loaded = await sessionLoad(client, agents, "streamed", RATE, SECONDS);
  // let it drain, then stop
  for (let i = 0; i < 100 && !streamer.lag().caught_up; i++) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 500));
  await streamer.stop();
  const h = streamer.lagHistogram;
  const result = {
    offered_sessions_per_s: RATE,
    baseline,
    with_streamer: loaded,
    streamed_events: h.total,
    lag_p50_ms: h.quantile(0.5),
    lag_p99_ms: h.quantile(0.99),
    lag_max_ms: h.quantile(1),
    poll_ms: 200,
  };
  await sink.close();
  await engine.close();
  return result;
}

// ---- 2. lag under the real daemon at SESSIONS' benchmark load -----------------------------------
/** A free loopback TCP port. */
async function freePort(): Promise<number> {
  const net = await import("node:net");
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** `serve` as SESSIONS' bench runs it (log level warn), with the streamer on; ready when health says SERVING. */
async function startDaemon(): Promise<{ grpcAddr: string; dataDir: string; pid: number | undefined; shutdown: () => Promise<void> }> {
  const grpc = await import("@grpc/grpc-js");
  const dataDir = path.join(dir, "daemon");
  const grpcAddr = `127.0.0.1:${await freePort()}`;
  const child = spawn(process.execPath, [path.join(import.meta.dirname, "../bin/masques-ledger.js"), "serve"], {
    env: {
      ...process.env,
      MASQUES_GRPC_ADDR: grpcAddr,
      MASQUES_HTTP_ADDR: `127.0.0.1:${await freePort()}`,
      MASQUES_DATA_DIR: dataDir,
      MASQUES_LOG_LEVEL: "warn",
      SESSION_REAPER_INTERVAL_MS: "60000",
      STREAMER_ENABLED: "true",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const client = new grpc.Client(grpcAddr, grpc.credentials.createInsecure());
  for (const deadline = Date.now() + 60_000; ; ) {
    if (child.exitCode !== null) throw new Error("daemon exited during start-up");
    const ok = await new Promise<boolean>((resolve) =>
      client.makeUnaryRequest(
        "/grpc.health.v1.Health/Check", () => Buffer.alloc(0), (b: Buffer) => b, {}, new grpc.Metadata(),
        { deadline: Date.now() + 1000 },
        (err, res) => resolve(!err && res !== undefined && res.length >= 2 && res[1] === 1),
      ),
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error("daemon did not become healthy within 60 s");
    await new Promise((r) => setTimeout(r, 200));
  }
  client.close();
  return {
    grpcAddr,
    dataDir,
    pid: child.pid,
    shutdown: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

async function daemonLag() {
  const d = await startDaemon();
  try {
    const args = [
      "--import", "tsx", path.join(import.meta.dirname, "sessions.ts"), "--json",
      "--grpc-addr", d.grpcAddr, "--data-dir", d.dataDir, ...(d.pid ? ["--daemon-pid", String(d.pid)] : []),
      "--n", String(arg("daemon-n", 4000)), "--usage-events", String(arg("daemon-usage", 40_000)),
    ];
    log(`daemon: SESSIONS' load generator against the daemon (streamer on)...`);
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
      let buf = "";
      child.stdout.on("data", (b: Buffer) => (buf += b.toString()));
      child.on("exit", (code) => (code === 0 ? resolve(buf) : reject(new Error(`bench/sessions.ts exited with ${code}`))));
    });
    const sessions = JSON.parse(out.trim().split("\n").pop()!) as Record<string, { rate?: number } | number>;
    const rate = (k: string) => {
      const v = sessions[k];
      return typeof v === "object" && v !== null ? (v.rate ?? 0) : 0;
    };
    await d.shutdown();
    const sink = await ChdbSink.open({ path: path.join(d.dataDir, "chdb"), database: "masques" });
    try {
      const [total] = await sink.query("SELECT events, lag_p50_ms, lag_p99_ms, lag_max_ms, window_s FROM masques.streamer_stats WHERE scope = 'total' ORDER BY time DESC LIMIT 1");
      const [win] = await sink.query("SELECT max(lag_p99_ms) AS worst_window_p99_ms, max(events_per_s) AS peak_events_per_s FROM masques.streamer_stats WHERE scope = 'window'");
      return {
        sessions_per_s: rate("sessions"),
        don_per_s: rate("don"),
        doff_per_s: rate("doff"),
        usage_events_per_s: rate("usage_events"),
        streamed_events: Number(total?.events ?? 0),
        lag_p50_ms: Number(total?.lag_p50_ms ?? 0),
        lag_p99_ms: Number(total?.lag_p99_ms ?? 0),
        lag_max_ms: Number(total?.lag_max_ms ?? 0),
        worst_10s_window_lag_p99_ms: Number(win?.worst_window_p99_ms ?? 0),
        peak_events_per_s: Number(win?.peak_events_per_s ?? 0),
      };
    } finally {
      await sink.close();
    }
  } finally {
    await d.shutdown();
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

try {
  const ing = await ingest();
  const daemon = process.argv.includes("--no-daemon") ? null : await daemonLag();
  const lag = process.argv.includes("--no-in-process") ? null : await lagUnderLoad();
  const out = {
    bench: "stream",
    machine: { cpus: (await import("node:os")).cpus().length, loadavg_1m: round((await import("node:os")).loadavg()[0]!, 1) },
    ingest: ing,
    daemon,
    in_process: lag,
    targets: { ingest_transfers_per_s: 100_000, lag_p99_ms: 2000 },
    meets_targets: {
      ingest: ing.transfers_per_s >= 100_000,
      daemon_lag: daemon ? daemon.lag_p99_ms < 2000 : null,
      in_process_lag: lag ? lag.lag_p99_ms < 2000 : null,
    },
  };
  if (json) process.stdout.write(JSON.stringify(out) + "\n");
  else {
    const lines = [
      `CDC streamer benchmark (embedded engine -> embedded chDB, one run, ${out.machine.cpus} shared cores, load avg ${out.machine.loadavg_1m})`,
      `  ingest (catch-up from zero): ${ing.transfers} transfers in ${ing.seconds}s = ${ing.transfers_per_s} transfers/s (target >= 100000)`,
      `  raw chDB insert of the same rows: ${ing.chdb_insert_rows_per_s} rows/s`,
    ];
    if (daemon) {
      lines.push(
        `  lag under daemon load (SESSIONS' bench: ${daemon.sessions_per_s} sessions/s, ${daemon.usage_events_per_s} usage events/s, Don ${daemon.don_per_s}/s, Doff ${daemon.doff_per_s}/s):`,
        `    ${daemon.streamed_events} events streamed: lag p50 ${daemon.lag_p50_ms} ms, p99 ${daemon.lag_p99_ms} ms, max ${daemon.lag_max_ms} ms (target p99 < 2000); worst 10 s window p99 ${daemon.worst_10s_window_lag_p99_ms} ms; peak ${daemon.peak_events_per_s} events/s`,
      );
    }
    if (lag) {
      lines.push(
        `  lag under in-process load, offered ${lag.offered_sessions_per_s} sessions/s (7 transfers each):`,
        `    without streamer: ${lag.baseline.sessions_per_s} sessions/s, event-loop delay p99 ${lag.baseline.event_loop_delay_p99_ms} ms`,
        `    with streamer:    ${lag.with_streamer.sessions_per_s} sessions/s, event-loop delay p99 ${lag.with_streamer.event_loop_delay_p99_ms} ms`,
        `    lag over ${lag.streamed_events} events: p50 ${lag.lag_p50_ms} ms, p99 ${lag.lag_p99_ms} ms, max ${lag.lag_max_ms} ms (target p99 < 2000; poll ${lag.poll_ms} ms)`,
      );
    }
    process.stdout.write(lines.join("\n") + "\n");
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
