/**
 * OTLP ingest benchmark (issue 18): the real daemon (`masques-ledger serve`, embedded ledger,
 * embedded chDB ON: ingest writes api_requests) driven by this process over loopback, all figures
 * from one run.
 *
 *   npm run bench:otlp                     # table on stderr
 *   npm run bench:otlp -- --json           # one JSON object
 * Options: --events N (OTLP events per phase, default 40000), --batch B (records per export and
 * events per RecordUsage, default 500), --concurrency C (exports / calls in flight, default 4),
 * --sessions S (OTLP-metered sessions, default 32), --don-doff K (Don+Doff pairs timed during
 * ingest, default 200), --otlp-only (warm-up and phase 1 only: for a CPU profile of ingest).
 *
 * Fairness: a warm-up (a few exports and RecordUsage calls) runs first, and every phase starts
 * with the streamer caught up (ClickHouse holds every ledger event so far), so the OTLP and the
 * RecordUsage phases run under the same conditions (streamer on in both). Besides events/s (which
 * swing 2x with the load of this shared machine), each phase reports the daemon's CPU per event
 * (user + system of the whole process, chDB's threads included, from the phase's start until the
 * streamer caught up after it): steadier under load, and it counts the streamer's share of both.
 * BENCH_DAEMON_CPU_PROF=<dir>: write a V8 CPU profile of the daemon there (on graceful stop).
 *
 * Phases:
 *  1. OTLP alone: Claude-Code-shaped `claude_code.api_request` records (protobuf, as Claude Code
 *     sends them) for sessions donned with a claude_session_id: billed on the ledger and stored
 *     in ClickHouse. Events/s end to end (answered 200 = billed and stored).
 *  2. RecordUsage alone: the same number of events, same batch size, on un-bound sessions.
 *  3. Together: OTLP ingest runs while RecordUsage runs and Don+Doff pairs (OTLP_DOFF_GRACE_MS=0)
 *     are timed one after the other: RecordUsage events/s and Don / Doff p50 / p99 under ingest.
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AccountService, WalletMode } from "../clients/gen/masques/ledger/v1/account_service_pb.js";
import { SessionService } from "../clients/gen/masques/ledger/v1/session_service_pb.js";
import { DEFAULT_SCOPES, loadOrCreateDevKeys, mintToken } from "../src/server/auth.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const json = process.argv.includes("--json");
const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const say = (...a: unknown[]) => {
  if (!json) console.error(...a);
};

interface Encoder {
  encode(m: object): { finish(): Uint8Array };
  fromObject(o: Record<string, unknown>): object;
}
const root = createRequire(import.meta.url)("@opentelemetry/otlp-transformer/build/src/generated/root.js") as {
  opentelemetry: { proto: { collector: { logs: { v1: { ExportLogsServiceRequest: Encoder } } } } };
};
const ExportLogs = root.opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

function bearer(token: string): Interceptor {
  return (next) => async (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** One export body: `n` api_request records for `claude`, sequence numbers from `seq0`. */
function exportBody(claude: string, seq0: number, n: number): Uint8Array {
  const t = BigInt(Date.now()) * 1_000_000n;
  const kv = (key: string, v: string | number) => ({ key, value: typeof v === "number" ? { intValue: v } : { stringValue: v } });
  const logRecords = Array.from({ length: n }, (_, i) => ({
    timeUnixNano: (t + BigInt(i)).toString(),
    body: { stringValue: "claude_code.api_request" },
    attributes: [
      kv("event.name", "api_request"), kv("session.id", claude), kv("event.sequence", seq0 + i), kv("prompt.id", `p-${seq0 + i}`),
      kv("model", "claude-sonnet-4"), kv("input_tokens", "1200"), kv("output_tokens", "300"), kv("cache_read_tokens", "100"),
      kv("cache_creation_tokens", "0"), kv("cost_usd", "0.0081"), kv("duration_ms", "900"),
    ],
  }));
  return ExportLogs.encode(ExportLogs.fromObject({ resourceLogs: [{ resource: { attributes: [kv("service.name", "claude-code")] }, scopeLogs: [{ logRecords }] }] })).finish();
}

/** utime + stime of a process (`thread`: its main thread only) in µs, from /proc (0 if unavailable). */
function processCpuUs(pid: number | undefined, thread = false): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(thread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1_000_000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return 0;
  }
}

/** Wait until the daemon's streamer holds every ledger event (Prometheus gauges at 0, 3 polls in a row; at most 300 s). */
async function streamerCaughtUp(httpAddr: string): Promise<void> {
  let quiet = 0;
  let text = "";
  for (let i = 0; i < 3000 && quiet < 3; i++) {
    text = await (await fetch(`http://${httpAddr}/metrics`)).text();
    const v = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, "m").exec(text)?.[1] ?? "NaN");
    quiet = v("masques_streamer_events_behind") === 0 && v("masques_streamer_lag") === 0 ? quiet + 1 : 0;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (quiet < 3) throw new Error(`the streamer did not catch up within 300 s: ${text.split("\n").filter((l) => l.startsWith("masques_streamer")).join("; ")}`);
}

async function pool(n: number, concurrency: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        await job(i);
      }
    }),
  );
}

async function main(): Promise<void> {
  const events = arg("events", 40_000);
  const batch = arg("batch", 500);
  const concurrency = arg("concurrency", 4);
  const nSessions = arg("sessions", 32);
  const donDoff = arg("don-doff", 200);
  const dataDir = mkdtempSync(path.join(tmpdir(), "bench-otlp-"));
  const grpcAddr = `127.0.0.1:${await freePort()}`;
  const httpAddr = `127.0.0.1:${await freePort()}`;
  const root = path.resolve(HERE, "..");
  say("starting daemon (embedded ledger + embedded chDB, MASQUES_LOG_LEVEL=warn)...");
  const prof = process.env.BENCH_DAEMON_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_DAEMON_CPU_PROF}`] : [];
  const child = spawn(process.execPath, [...prof, path.join(root, "bin/masques-ledger.js"), "serve"], {
    cwd: root,
    env: {
      ...process.env,
      MASQUES_GRPC_ADDR: grpcAddr,
      MASQUES_HTTP_ADDR: httpAddr,
      MASQUES_DATA_DIR: dataDir,
      MASQUES_LOG_LEVEL: "warn",
      SESSION_REAPER_INTERVAL_MS: "60000",
      OTLP_DOFF_GRACE_MS: "0",
      STREAMER_ENABLED: "true",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error("daemon exited during start-up");
      const ok = await fetch(`http://${httpAddr}/readyz`).then((r) => r.status === 200, () => false);
      if (ok) break;
      if (i > 600) throw new Error("daemon not ready within 120 s");
      await new Promise((r) => setTimeout(r, 200));
    }
    const keys = await loadOrCreateDevKeys(dataDir);
    const tok = (kind: "agent" | "admin", id: string) =>
      mintToken(keys.privateJwk, { kind, id, scopes: DEFAULT_SCOPES[kind], issuer: "masques-ledger", audience: "masques-ledger", ttlS: 3600 });
    const t = (token: string) => createGrpcTransport({ baseUrl: `http://${grpcAddr}`, interceptors: [bearer(token)] });
    const admin = createClient(AccountService, t(await tok("admin", "bench-admin")));
    const run = randomBytes(3).toString("hex");
    const agent = `otlp-bench-${run}`;
    const agentToken = await tok("agent", agent);
    const accounts = createClient(AccountService, t(agentToken));
    const sessions = createClient(SessionService, t(agentToken));
    await accounts.openAgentWallet({ mode: WalletMode.PREPAID });
    await admin.deposit({ account: { ref: { case: "agentWallet", value: agent } }, amountMicro: 1_000_000_000_000n, idempotencyKey: `fund-${run}` });
    say(`donning ${nSessions} OTLP-metered and ${nSessions} RecordUsage sessions...`);
    const claudes: string[] = [];
    const plain: string[] = [];
    for (let i = 0; i < nSessions; i++) {
      const claude = `claude-${run}-${i}`;
      await sessions.don({ sessionId: randomBytes(16).toString("hex"), masque: "researcher", maxSpendMicro: 1_000_000n, claudeSessionId: claude });
      claudes.push(claude);
      const sid = randomBytes(16).toString("hex");
      await sessions.don({ sessionId: sid, masque: "researcher", maxSpendMicro: 1_000_000n });
      plain.push(sid);
    }
    const exportsN = Math.ceil(events / batch);
    const headers = { authorization: `Bearer ${agentToken}`, "content-type": "application/x-protobuf" };
    let seqBase = 1;
    const otlpPhase = async (events: number): Promise<number> => {
      const exportsN = Math.ceil(events / batch);
      const bodies = Array.from({ length: exportsN }, (_, i) => exportBody(claudes[i % claudes.length]!, seqBase + Math.floor(i / claudes.length) * batch, batch));
      seqBase += Math.ceil(exportsN / claudes.length) * batch;
      const t0 = performance.now();
      await pool(exportsN, concurrency, async (i) => {
        const r = await fetch(`http://${httpAddr}/v1/logs`, { method: "POST", headers, body: bodies[i]! });
        if (r.status !== 200) throw new Error(`OTLP export answered ${r.status}: ${await r.text()}`);
        await r.arrayBuffer();
      });
      return (exportsN * batch) / ((performance.now() - t0) / 1000);
    };
    let usageSeq = 1n;
    const usagePhase = async (events: number): Promise<number> => {
      const calls = Math.ceil(events / batch);
      const reqs = Array.from({ length: calls }, (_, i) => {
        const sid = plain[i % plain.length]!;
        return Array.from({ length: batch }, () => ({ sessionId: sid, seq: usageSeq++, inputTokens: 1200n, outputTokens: 300n }));
      });
      const t0 = performance.now();
      await pool(calls, concurrency, async (i) => {
        const r = await sessions.recordUsage({ events: reqs[i]! });
        if (r.results.some((x) => x.outcome !== 1)) throw new Error(`RecordUsage refused an event: ${r.results.find((x) => x.outcome !== 1)?.reason}`);
      });
      return (calls * batch) / ((performance.now() - t0) / 1000);
    };
    /** Run `phase`; its rate, and the daemon's CPU per event until the streamer caught up after it. */
    const measured = async (phase: () => Promise<number>, n: number): Promise<{ rate: number; cpu_us: number; main_cpu_us: number }> => {
      await streamerCaughtUp(httpAddr);
      const cpu0 = processCpuUs(child.pid);
      const main0 = processCpuUs(child.pid, true);
      const rate = await phase();
      await streamerCaughtUp(httpAddr);
      return { rate, cpu_us: (processCpuUs(child.pid) - cpu0) / n, main_cpu_us: (processCpuUs(child.pid, true) - main0) / n };
    };
    say("warm-up...");
    await otlpPhase(Math.min(events, 8 * batch));
    await usagePhase(Math.min(events, 8 * batch));
    say(`phase 1: ${exportsN * batch} OTLP events (${batch}/export, ${concurrency} in flight)...`);
    const otlpAlone = await measured(() => otlpPhase(events), exportsN * batch);
    if (process.argv.includes("--otlp-only")) {
      // For a CPU profile of the ingest path alone (BENCH_DAEMON_CPU_PROF).
      const o = { otlp_events_per_s_alone: Math.round(otlpAlone.rate), otlp_daemon_cpu_us_per_event: Math.round(otlpAlone.cpu_us), otlp_main_thread_cpu_us_per_event: Math.round(otlpAlone.main_cpu_us) };
      console.log(JSON.stringify(o));
      return;
    }
    say(`phase 2: ${exportsN * batch} RecordUsage events (${batch}/call, ${concurrency} in flight)...`);
    const usageAlone = await measured(() => usagePhase(events), exportsN * batch);
    await streamerCaughtUp(httpAddr);
    say(`phase 3: OTLP ingest + RecordUsage + ${donDoff} Don/Doff pairs at once...`);
    const donMs: number[] = [];
    const doffMs: number[] = [];
    let ingestDone = false;
    const [otlpTogether, usageTogether] = await Promise.all([
      otlpPhase(events).finally(() => (ingestDone = true)),
      usagePhase(events),
      (async () => {
        for (let i = 0; i < donDoff && !ingestDone; i++) {
          const sid = randomBytes(16).toString("hex");
          let t0 = performance.now();
          await sessions.don({ sessionId: sid, masque: "researcher", maxSpendMicro: 10_000n });
          donMs.push(performance.now() - t0);
          t0 = performance.now();
          await sessions.doff({ sessionId: sid });
          doffMs.push(performance.now() - t0);
        }
      })(),
    ]);
    const out = {
      otlp_events_per_s_alone: Math.round(otlpAlone.rate),
      record_usage_events_per_s_alone: Math.round(usageAlone.rate),
      otlp_over_record_usage: Math.round((otlpAlone.rate / usageAlone.rate) * 100) / 100,
      otlp_daemon_cpu_us_per_event: Math.round(otlpAlone.cpu_us),
      record_usage_daemon_cpu_us_per_event: Math.round(usageAlone.cpu_us),
      otlp_main_thread_cpu_us_per_event: Math.round(otlpAlone.main_cpu_us),
      record_usage_main_thread_cpu_us_per_event: Math.round(usageAlone.main_cpu_us),
      otlp_over_record_usage_by_cpu: Math.round((usageAlone.cpu_us / Math.max(otlpAlone.cpu_us, 1e-9)) * 100) / 100,
      otlp_events_per_s_with_load: Math.round(otlpTogether),
      record_usage_events_per_s_with_ingest: Math.round(usageTogether),
      don_doff_pairs_timed: donMs.length,
      don_p50_ms: Math.round(quantile(donMs, 0.5) * 10) / 10,
      don_p99_ms: Math.round(quantile(donMs, 0.99) * 10) / 10,
      doff_p50_ms: Math.round(quantile(doffMs, 0.5) * 10) / 10,
      doff_p99_ms: Math.round(quantile(doffMs, 0.99) * 10) / 10,
      batch,
      concurrency,
    };
    if (json) console.log(JSON.stringify(out));
    else for (const [k, v] of Object.entries(out)) console.log(`${k.padEnd(40)} ${v}`);
  } finally {
    child.kill("SIGTERM");
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
