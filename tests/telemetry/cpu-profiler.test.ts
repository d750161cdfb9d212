/**
 * Issue 20 (ADR 0123): a daemon started with MASQUES_CPU_PROFILE_DIR profiles its main thread
 * between two SIGUSR2 and writes a complete `.cpuprofile` that the bench's categorizer reads;
 * the signal neither stops nor disturbs the daemon, and a second start/stop pair writes a second
 * file. (`npm run bench` relies on exactly this for its per-call CPU split.)
 */
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { splitProfile, type CpuProfile } from "../../bench/profile-categories.js";
import { startDaemon, type Daemon } from "../support/daemon.js";

let d: Daemon;
let dir: string;

beforeAll(async () => {
  dir = path.join(await mkdtemp(path.join(tmpdir(), "cpu-profiler-")), "profiles");
  d = await startDaemon({ env: { MASQUES_CPU_PROFILE_DIR: dir, MASQUES_LOG_LEVEL: "info" } });
});
afterAll(async () => {
  await d?.stop();
  if (dir) await rm(path.dirname(dir), { recursive: true, force: true });
});

async function profileOnce(k: number): Promise<string> {
  const started = d.logs().filter((l) => l.msg === "cpu profile started").length;
  process.kill(d.pid!, "SIGUSR2");
  await d.waitForLog(() => d.logs().filter((l) => l.msg === "cpu profile started").length > started, 60_000);
  // While it runs, the marker a driver waits for exists.
  expect(existsSync(path.join(dir, `daemon-${d.pid}.profiling`))).toBe(true);
  for (let i = 0; i < 20; i++) expect((await fetch(`http://${d.httpAddr}/healthz`)).status).toBe(200);
  process.kill(d.pid!, "SIGUSR2");
  const line = await d.waitForLog((l) => l.msg === "cpu profile written" && typeof l.file === "string" && l.file.endsWith(`-${k}.cpuprofile`), 60_000);
  return line.file as string;
}

test("SIGUSR2 starts and stops a CPU profile of the daemon; the file is complete and the daemon keeps serving", async () => {
  await d.waitForLog((l) => l.msg === "cpu profiling on request enabled (MASQUES_CPU_PROFILE_DIR)");
  const first = await profileOnce(1);
  expect(path.dirname(first)).toBe(dir);
  expect(path.basename(first)).toBe(`daemon-${d.pid}-1.cpuprofile`);
  const profile = JSON.parse(await readFile(first, "utf8")) as CpuProfile;
  expect(profile.samples.length).toBeGreaterThan(0);
  expect(profile.nodes.some((n) => n.callFrame.functionName === "(root)")).toBe(true);
  // The categorizer reads it (every sample names a node of the profile).
  expect(() => splitProfile(profile)).not.toThrow();

  const second = await profileOnce(2);
  expect(path.basename(second)).toBe(`daemon-${d.pid}-2.cpuprofile`);
  // Only complete files are visible (written under a temporary name, then renamed); no marker is left.
  expect((await readdir(dir)).sort()).toEqual([`daemon-${d.pid}-1.cpuprofile`, `daemon-${d.pid}-2.cpuprofile`]);
  expect((await fetch(`http://${d.httpAddr}/healthz`)).status).toBe(200);
});
