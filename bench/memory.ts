/**
 * Daemon memory benchmark (ADR 0133): the daemon started the way `npm start` starts it (64 MiB
 * semi-space, streamer on, embedded ledger, PGlite control plane, embedded chDB) on a temp data
 * dir, measured from outside through /proc.
 *
 *   npm run bench:memory                       # table on stderr
 *   npm run bench:memory -- --json             # one JSON object
 * Options: --idle-s S (wait after start-up before the idle figure, default 15), --n N (requests per
 * phase of the load run, default 2000), --usage-events U (default 20000).
 *
 * Figures: RSS / RssAnon / RssFile / VmHWM when idle after start-up and after the load run (the
 * sessions bench, `bench/sessions.ts --grpc-addr`, drives Check, Don, Doff, N/2 full sessions
 * and U usage events against this daemon), the V8 heap used as the daemon's /metrics reports it, and
 * the resident set split by mapping owner from /proc/<pid>/smaps: libchdb.so (ClickHouse code and
 * data), the node binary, the malloc main arena ([heap]), other shared objects, and anonymous
 * mappings (V8 heap, PGlite's WebAssembly memory, allocator arenas of chDB/glibc threads; one
 * owner cannot be told from outside, ADR 0133 attributes them by experiment).
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..");
const KIB_PER_MIB = 1024;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Resident MiB of one process, by mapping owner (from /proc/<pid>/smaps) and totals (status). */
export interface MemorySnapshot {
  rss_mb: number;
  rss_anon_mb: number;
  rss_file_mb: number;
  vm_hwm_mb: number;
  threads: number;
  v8_heap_used_mb: number | null;
  by_owner_mb: Record<string, number>;
  /** Anonymous mappings over 8 MiB resident, largest first: [size MiB, resident MiB]. */
  large_anon_regions_mb: Array<[number, number]>;
}

function owner(name: string): string {
  if (name === "") return "anonymous";
  if (name.endsWith("libchdb.so")) return "libchdb.so";
  if (name === process.execPath || /\/node$/.test(name)) return "node binary";
  if (name === "[heap]") return "malloc main arena [heap]";
  if (name.startsWith("[")) return "other [kernel/stack]";
  if (name.includes(".so") || name.endsWith(".node")) return "other shared objects";
  return "other files";
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

async function snapshot(pid: number, httpAddr: string): Promise<MemorySnapshot> {
  const smaps = fs.readFileSync(`/proc/${pid}/smaps`, "utf8");
  const byOwner = new Map<string, number>();
  const anon: Array<[number, number]> = [];
  let cur: { owner: string; size_kb: number } | null = null;
  for (const line of smaps.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      cur = { owner: owner(m[3]!), size_kb: (parseInt(m[2]!, 16) - parseInt(m[1]!, 16)) / 1024 };
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (r && cur) {
      const kb = Number(r[1]);
      byOwner.set(cur.owner, (byOwner.get(cur.owner) ?? 0) + kb);
      if (cur.owner === "anonymous" && kb > 8 * KIB_PER_MIB) anon.push([round1(cur.size_kb / KIB_PER_MIB), round1(kb / KIB_PER_MIB)]);
    }
  }
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  let heapUsed: number | null = null;
  try {
    const text = await (await fetch(`http://${httpAddr}/metrics`)).text();
    const m = /^process_memory_heap_used\{[^}]*\}\s+(\d+)/m.exec(text);
    heapUsed = m ? round1(Number(m[1]) / 1024 / 1024) : null;
  } catch {
    heapUsed = null;
  }
  return {
    rss_mb: round1(kb("VmRSS") / KIB_PER_MIB),
    rss_anon_mb: round1(kb("RssAnon") / KIB_PER_MIB),
    rss_file_mb: round1(kb("RssFile") / KIB_PER_MIB),
    vm_hwm_mb: round1(kb("VmHWM") / KIB_PER_MIB),
    threads: kb("Threads"),
    v8_heap_used_mb: heapUsed,
    by_owner_mb: Object.fromEntries([...byOwner].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, round1(v / KIB_PER_MIB)])),
    large_anon_regions_mb: anon.sort((a, b) => b[1] - a[1]),
  };
}

async function waitListening(logPath: string, child: { exitCode: number | null }): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`daemon exited during start-up (log: ${logPath})`);
    if (fs.existsSync(logPath) && fs.readFileSync(logPath, "utf8").includes('"msg":"listening"')) return;
    if (Date.now() > deadline) throw new Error(`daemon did not log "listening" within 120 s (log: ${logPath})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function main(): Promise<void> {
  const json = process.argv.includes("--json");
  const idleS = Number(arg("idle-s") ?? 15);
  const n = Number(arg("n") ?? 2000);
  const usageEvents = Number(arg("usage-events") ?? 20_000);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-memory-"));
  const grpcAddr = `127.0.0.1:${await freePort()}`;
  const httpAddr = `127.0.0.1:${await freePort()}`;
  const logPath = path.join(dataDir, "daemon.log");
  const log = fs.openSync(logPath, "a");
  // As `npm start`: NODE_OPTIONS carries the young-generation size (ADR 0129); the streamer is on.
  const child = spawn(process.execPath, [path.join(ROOT, "bin/masques-ledger.js"), "serve"], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_OPTIONS: `--max-semi-space-size=64 ${process.env.NODE_OPTIONS ?? ""}`.trim(),
      MASQUES_GRPC_ADDR: grpcAddr,
      MASQUES_HTTP_ADDR: httpAddr,
      MASQUES_DATA_DIR: dataDir,
    },
    stdio: ["ignore", log, log],
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  try {
    await waitListening(logPath, child);
    const pid = child.pid!;
    if (!json) console.error(`daemon ${pid} listening; idle ${idleS} s...`);
    await new Promise((r) => setTimeout(r, idleS * 1000));
    const idle = await snapshot(pid, httpAddr);
    if (!json) console.error(`load: sessions bench against it (--n ${n} --usage-events ${usageEvents})...`);
    const bench = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const b = spawn(
        process.execPath,
        ["--import", "tsx", path.join(HERE, "sessions.ts"), "--json", "--no-split", "--grpc-addr", grpcAddr, "--data-dir", dataDir, "--daemon-pid", String(pid), "--n", String(n), "--usage-events", String(usageEvents)],
        { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
      );
      let out = "";
      b.stdout.on("data", (d: Buffer) => (out += d.toString()));
      b.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").pop()!) as Record<string, unknown>) : reject(new Error(`sessions bench exited with ${code}`))));
    });
    await new Promise((r) => setTimeout(r, 2000));
    const afterLoad = await snapshot(pid, httpAddr);
    const sessions = bench.sessions as { ops?: number } | undefined;
    const result = {
      machine: { cpus: os.cpus().length, node: process.version, total_mem_mb: Math.round(os.totalmem() / 1024 / 1024) },
      idle_s: idleS,
      idle,
      after_load: afterLoad,
      load: { full_sessions: sessions?.ops ?? null, usage_events: usageEvents, requests_per_phase: n },
    };
    if (json) {
      console.log(JSON.stringify(result));
    } else {
      const row = (label: string, s: MemorySnapshot) =>
        console.log(`${label.padEnd(12)} rss ${s.rss_mb} MiB (anon ${s.rss_anon_mb}, file ${s.rss_file_mb}), hwm ${s.vm_hwm_mb}, v8 heap used ${s.v8_heap_used_mb ?? "?"}, threads ${s.threads}`);
      row("idle", idle);
      row("after load", afterLoad);
      for (const [label, s] of [["idle", idle], ["after load", afterLoad]] as const) {
        console.log(`${label} by owner (MiB): ${JSON.stringify(s.by_owner_mb)}`);
        console.log(`${label} anonymous regions > 8 MiB [size, resident]: ${JSON.stringify(s.large_anon_regions_mb)}`);
      }
    }
  } finally {
    child.kill("SIGTERM");
    await exited;
    fs.closeSync(log);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
