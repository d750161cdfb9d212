/**
 * Issue 9: the client package stands alone. `npm pack` the client workspace, install the tarball
 * into an empty directory the way the masques plugin would (dependencies from the npm registry),
 * and run don → usage → doff through the INSTALLED `masques-ledger-client` against a real daemon.
 * The install must hold neither the ledger (tigerbeetle-node) nor ClickHouse (chdb), must fit in
 * 60 MB, and the SDK must import from the package name.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { at, cliEnv, micro, type CliResult } from "../cli/helpers.js";

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const MASQUES_DIR = path.join(ROOT, "masques");
const MAX_INSTALL_BYTES = 60 * 1024 * 1024;

let d: Daemon;
let work: string;
let app: string;
let bin: string;

async function sizeOf(p: string): Promise<number> {
  const s = await stat(p);
  if (!s.isDirectory()) return s.size;
  let total = 0;
  for (const e of await readdir(p)) total += await sizeOf(path.join(p, e));
  return total;
}

/** Run the installed binary from the plugin's directory, with only the environment it is given. */
function client(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd: app, env: cliEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.on("error", reject);
    child.on("close", (code) => {
      let json: Record<string, unknown> | undefined;
      try {
        json = args.includes("--json") ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json });
    });
  });
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), "masques-pack-"));
  app = path.join(work, "plugin");
  const daemonP = startDaemon({ env: { MASQUES_DIR } });
  // `npm pack` runs the package's prepack (the build), then writes the tarball; --json names it.
  const packed = await run("npm", ["pack", "--json", "--pack-destination", work], { cwd: path.join(ROOT, "clients"), maxBuffer: 16 << 20 });
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as Array<{ filename: string }>;
  const tarball = path.join(work, path.basename(info!.filename));
  // An empty directory with nothing but a package.json, as a plugin's would be.
  await run("mkdir", ["-p", app]);
  await writeFile(path.join(app, "package.json"), JSON.stringify({ name: "masques-plugin-under-test", private: true, type: "module" }));
  await run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", tarball], { cwd: app, maxBuffer: 16 << 20 });
  bin = path.join(app, "node_modules", ".bin", "masques-ledger-client");
  d = await daemonP;
}, 600_000);

afterAll(async () => {
  await d?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("the client package installed alone from its npm pack tarball", () => {
  it("is small and holds neither the ledger nor ClickHouse", async () => {
    const modules = path.join(app, "node_modules");
    const bytes = await sizeOf(modules);
    console.log(`installed client package (node_modules of an empty project): ${(bytes / 1024 / 1024).toFixed(1)} MB`);
    expect(bytes).toBeLessThanOrEqual(MAX_INSTALL_BYTES);
    const top = await readdir(modules);
    for (const heavy of ["tigerbeetle-node", "chdb", "@clickhouse", "tsx", "pino"]) expect(top, heavy).not.toContain(heavy);
    // It ships compiled JavaScript and no TypeScript sources to compile at run time.
    const pkgDir = path.join(modules, "@masques", "ledger-client");
    expect((await readdir(path.join(pkgDir, "dist", "cli"))).some((f) => f === "main.js")).toBe(true);
    expect(await readdir(pkgDir)).not.toContain("cli");
    const version = await client(["--version"], {});
    expect(version.code, version.stderr).toBe(0);
    expect(version.stdout).toMatch(/^masques-ledger-client \d+\.\d+\.\d+\n$/);
  });

  it("runs deposit → don → usage → heartbeat → doff against a daemon, and the SDK imports by package name", async () => {
    const endpoint = `http://${d.grpcAddr}`;
    const admin = { MASQUES_ENDPOINT: endpoint, MASQUES_TOKEN: await d.token("admin", "ops") };
    const agent = {
      MASQUES_ENDPOINT: endpoint,
      MASQUES_TOKEN: await d.token("agent", "agent-packed"),
      MASQUES_SESSION_FILE: path.join(app, ".claude", "masque.session.yaml"),
    };
    const dep = await client(["deposit", "agent-packed", "5", "--key", "packed-1", "--json"], admin);
    expect(dep.code, dep.stderr).toBe(0);
    expect(micro(dep.json, "wallet_available", "micro")).toBe(5_000_000n);

    const don = await client(["don", "pair-programmer", "--json"], agent);
    expect(don.code, don.stderr).toBe(0);
    expect(micro(don.json, "session", "hold", "micro")).toBe(1_000_000n);
    const sid = at(don.json, "session", "session_id") as string;
    const use = await client(["usage", "--input-tokens", "1000", "--tool-calls", "2", "--json"], agent);
    expect(use.code, use.stderr).toBe(0);
    expect(at(use.json, "seq")).toBe(1);
    const hb = await client(["heartbeat", "--quiet"], agent);
    expect([hb.code, hb.stdout, hb.stderr]).toEqual([0, "", ""]);
    const doff = await client(["doff", "--json"], agent);
    expect(doff.code, doff.stderr).toBe(0);
    expect(at(doff.json, "session", "session_id")).toBe(sid);
    expect(at(doff.json, "session", "status")).toBe("doffed");
    expect(at(doff.json, "session", "usage")).toMatchObject({ input_tokens: "1000", tool_calls: "2", events: "1" });
    const charged = micro(doff.json, "session", "charged", "micro");
    expect(charged).toBeGreaterThanOrEqual(50_000n); // pair-programmer's $0.05 flat fee at least
    expect(charged + micro(doff.json, "session", "refund", "micro")).toBe(1_000_000n);

    // The SDK, imported by package name from the plugin's directory, sees the same wallet.
    const script = [
      'import { MasquesClient, formatUsd, parseUsdInput } from "@masques/ledger-client";',
      'const c = new MasquesClient();',
      "const a = await c.getAccount();",
      'process.stdout.write(JSON.stringify({ available: a.balance.availableMicro.toString(), shown: formatUsd(a.balance.availableMicro), parsed: parseUsdInput("$1.25").toString() }));',
    ].join("\n");
    const sdk = await run(process.execPath, ["--input-type=module", "-e", script], { cwd: app, env: cliEnv(agent) });
    expect(JSON.parse(sdk.stdout)).toEqual({
      available: (5_000_000n - charged).toString(),
      shown: expect.stringMatching(/^\$\d+\.\d{2,6}$/),
      parsed: "1250000",
    });
  });
});
