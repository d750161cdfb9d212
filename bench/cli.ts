/**
 * `npm run bench:cli`: wall time of the client binary on the plugin's hot path (issue 12), the way
 * a Claude Code hook runs it — a fresh `node` process per call:
 *   - `heartbeat --quiet` with no paid session (every prompt and tool call): with no session file,
 *     and with the plugin's own file holding no ledger session;
 *   - `usage --tool-calls 1 --quiet` with one open session (a real daemon, one RPC per call).
 * Prints median and p99 per case, next to bare `node -e 0` on the same machine (the floor).
 * Target: heartbeat median ≤ 150 ms. Runs are sequential; BENCH_CLI_RUNS sets how many (default 40).
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir, loadavg, cpus } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startDaemon } from "../tests/support/daemon.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(ROOT, "clients/bin/masques-ledger-client.js");
const RUNS = Number(process.env["BENCH_CLI_RUNS"] ?? 40);

interface Timed {
  ms: number;
  code: number | null;
  stderr: string;
}

function once(args: string[], env: Record<string, string>): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", ...env }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.on("error", reject);
    child.on("close", (code) => resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, code, stderr }));
  });
}

function quantile(sorted: number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1);
  return sorted[Math.max(0, i)]!;
}

async function measure(label: string, args: string[], env: Record<string, string>): Promise<{ label: string; median: number; p99: number }> {
  await once(args, env); // warm the page cache
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await once(args, env);
    if (r.code !== 0) throw new Error(`${label}: exit ${r.code}\n${r.stderr}`);
    times.push(r.ms);
  }
  times.sort((a, b) => a - b);
  return { label, median: quantile(times, 0.5), p99: quantile(times, 0.99) };
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(tmpdir(), "masques-bench-cli-"));
  const d = await startDaemon({ env: { MASQUES_DIR: path.join(ROOT, "masques") } });
  try {
    const endpoint = `http://${d.grpcAddr}`;
    const admin = { MASQUES_ENDPOINT: endpoint, MASQUES_TOKEN: await d.token("admin", "bench") };
    const dep = await once([BIN, "deposit", "agent-bench", "100", "--key", "bench-cli-topup"], admin);
    if (dep.code !== 0) throw new Error(dep.stderr);
    const token = await d.token("agent", "agent-bench");
    const noFile = { MASQUES_ENDPOINT: endpoint, MASQUES_TOKEN: token, MASQUES_SESSION_FILE: path.join(work, "none", "masque.session.yaml") };
    const pluginFile = path.join(work, "plugin", ".claude", "masque.session.yaml");
    await mkdir(path.dirname(pluginFile), { recursive: true });
    await writeFile(pluginFile, "# Auto-managed by masques plugin\nactive:\n  name: null\n  source: null\n  donned_at: null\nprevious:\n  name: researcher\n  source: private\n  doffed_at: 2026-01-26T12:00:00Z\n");
    const noLedger = { ...noFile, MASQUES_SESSION_FILE: pluginFile };
    const active = { ...noFile, MASQUES_SESSION_FILE: path.join(work, "active", ".claude", "masque.session.yaml") };
    const don = await once([BIN, "don", "pair-programmer"], active);
    if (don.code !== 0) throw new Error(don.stderr);

    const rows = [
      await measure("node -e 0 (floor)", ["-e", "0"], {}),
      await measure("heartbeat --quiet, no session file", [BIN, "heartbeat", "--quiet"], noFile),
      await measure("heartbeat --quiet, plugin file, no session", [BIN, "heartbeat", "--quiet"], noLedger),
      await measure("usage --tool-calls 1, one open session", [BIN, "usage", "--tool-calls", "1", "--quiet"], active),
    ];
    const [load1] = loadavg();
    console.log(`masques-ledger-client start-up (${RUNS} sequential runs each; ${cpus().length} CPUs, load average ${load1!.toFixed(2)} at the end)`);
    console.log(`${"case".padEnd(44)} ${"median ms".padStart(10)} ${"p99 ms".padStart(8)} ${"median/floor".padStart(13)}`);
    const floor = rows[0]!.median;
    for (const r of rows) {
      console.log(`${r.label.padEnd(44)} ${r.median.toFixed(1).padStart(10)} ${r.p99.toFixed(1).padStart(8)} ${(r.median / floor).toFixed(2).padStart(13)}`);
    }
    const doff = await once([BIN, "doff"], active);
    if (doff.code !== 0) throw new Error(doff.stderr);
  } finally {
    await d.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
