/**
 * ADR 0129: the daemon started the normal way (`npm start`) runs with a 64 MiB V8 semi-space, the
 * operator's NODE_OPTIONS wins over it, and the flag really reaches V8 (its heap limit moves by
 * 3 × the semi-space change), as the daemon's start-up log line reports.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_MAX_SEMI_SPACE_MB, v8SizeFlag, type YoungGenerationInfo } from "../../src/telemetry/young-generation.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const MIB = 1024 * 1024;
const dirs: string[] = [];

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** `npm start` in its own process group; resolves to the start-up log line's `v8` field, then stops the group. */
async function youngGenerationOfNpmStart(nodeOptions: string | undefined): Promise<YoungGenerationInfo> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "young-gen-"));
  dirs.push(dataDir);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? os.homedir(),
    MASQUES_DATA_DIR: dataDir,
    MASQUES_GRPC_ADDR: `127.0.0.1:${await freePort()}`,
    MASQUES_HTTP_ADDR: `127.0.0.1:${await freePort()}`,
    MASQUES_LOG_LEVEL: "info",
    STREAMER_ENABLED: "false",
  };
  if (nodeOptions !== undefined) env.NODE_OPTIONS = nodeOptions;
  const child = spawn("npm", ["start", "--silent"], { cwd: ROOT, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  try {
    return await new Promise<YoungGenerationInfo>((resolve, reject) => {
      let buf = "";
      const timer = setTimeout(() => reject(new Error(`no "v8 young generation" log line within 90 s; stderr: ${stderr}`)), 90_000);
      child.stdout.on("data", (d: Buffer) => {
        buf += d.toString();
        for (const line of buf.split("\n").slice(0, -1)) {
          if (!line.startsWith("{")) continue;
          const l = JSON.parse(line) as { msg?: string; v8?: YoungGenerationInfo };
          if (l.msg?.startsWith("v8 young generation") && l.v8) {
            clearTimeout(timer);
            resolve(l.v8);
          }
        }
        buf = buf.slice(buf.lastIndexOf("\n") + 1);
      });
      child.once("exit", (code) => reject(new Error(`npm start exited (${code}) before logging; stderr: ${stderr}`)));
    });
  } finally {
    if (child.pid !== undefined) process.kill(-child.pid, "SIGTERM");
    await exited;
  }
}

describe("V8 young generation of the daemon (ADR 0129)", () => {
  it("reads --max-semi-space-size as node applies it: NODE_OPTIONS first, the command line last, the last one wins", () => {
    expect(v8SizeFlag("max-semi-space-size", ["--max-semi-space-size=32", "--max-semi-space-size=64"], [])).toBe(64);
    expect(v8SizeFlag("max-semi-space-size", ["--max-semi-space-size=32"], ["--max_semi_space_size", "8"])).toBe(8);
    expect(v8SizeFlag("max-semi-space-size", ["--max-old-space-size=512"], ["--single-threaded-gc"])).toBeNull();
  });

  it("`npm start` gives V8 the default semi-space, an operator's NODE_OPTIONS overrides it, and V8's heap limit moves with it", async () => {
    const byDefault = await youngGenerationOfNpmStart(undefined);
    const overridden = await youngGenerationOfNpmStart("--max-semi-space-size=16");
    expect(byDefault.max_semi_space_mb).toBe(DEFAULT_MAX_SEMI_SPACE_MB);
    expect(overridden.max_semi_space_mb).toBe(16);
    // V8's heap limit = old generation limit + 3 × semi-space: the flag took effect in V8 itself.
    expect(byDefault.heap_size_limit_bytes - overridden.heap_size_limit_bytes).toBe(3 * (DEFAULT_MAX_SEMI_SPACE_MB - 16) * MIB);
  }, 240_000);
});
