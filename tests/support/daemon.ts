/**
 * Test support: run the REAL daemon (`node bin/masques-ledger.js serve`) as a child process on
 * free loopback ports with a fresh temp data dir, and talk to it over the network.
 *
 *   const d = await startDaemon();                 // embedded ledger, dev keys
 *   const token = await d.token("agent", "alice");  // bearer JWT from the daemon's dev key pair
 *   ... call http://${d.grpcAddr} (gRPC) or http://${d.httpAddr} (Connect/JSON) ...
 *   await d.restart();                             // graceful stop + start on the same data/ports
 *   await d.kill();  await d.start();              // crash (SIGKILL) + start again
 *   await d.stop();                                // graceful stop, temp dir removed
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_SCOPES, loadOrCreateDevKeys, mintToken } from "../../src/server/auth.js";
import type { PrincipalKind, Scope } from "../../src/server/principal.js";
import { seedControlPlane } from "./pglite-template.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.join(ROOT, "bin/masques-ledger.js");

export interface DaemonOptions {
  /** Extra environment (wins over the defaults below; process.env is NOT inherited except PATH/HOME/TMPDIR). */
  env?: Record<string, string>;
  /** Use this data dir (kept on stop) instead of a fresh temp dir (removed on stop). */
  dataDir?: string;
  /** How long to wait for the "listening" log line. Default 60 s. */
  startTimeoutMs?: number;
}

export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

export interface Daemon {
  /** host:port of the native gRPC listener (reflection, health). */
  readonly grpcAddr: string;
  /** host:port of the Connect / gRPC-Web / JSON listener. */
  readonly httpAddr: string;
  readonly dataDir: string;
  readonly pid: number | undefined;
  /** Mint a bearer token with the daemon's dev key pair (default scopes per kind). */
  token(kind: PrincipalKind, id: string, scopes?: readonly Scope[], ttlS?: number): Promise<string>;
  /** Structured log lines printed so far (JSON lines of stdout), across restarts. */
  logs(): LogLine[];
  /** Raw stderr so far. */
  stderr(): string;
  /** Wait until a log line matches. */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Start again after kill()/shutdown() on the same data dir and ports. */
  start(): Promise<void>;
  /** SIGTERM and wait for exit (graceful drain); keeps the data dir. Returns the exit code. */
  shutdown(): Promise<number | null>;
  /** SIGKILL (simulated crash); keeps the data dir. */
  kill(): Promise<void>;
  /** Graceful shutdown + start on the same data dir and ports. */
  restart(): Promise<void>;
  /** Graceful shutdown and remove the temp data dir (if we created it). */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of ["PATH", "HOME", "TMPDIR", "LANG", "NODE_OPTIONS"]) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  return env;
}

interface Spawned {
  child: ChildProcess;
  grpcAddr: string;
  httpAddr: string;
  exited: Promise<number | null>;
}

export interface SpawnResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `masques-ledger <args>` to completion (for CLI/config tests). */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<SpawnResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...baseEnv(), ...env }, stdio: ["ignore", "pipe", "pipe"] });
    live.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`masques-ledger ${args.join(" ")} timed out\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

export async function startDaemon(opts: DaemonOptions = {}): Promise<Daemon> {
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(path.join(tmpdir(), "masques-daemon-")));
  const lines: LogLine[] = [];
  let stderr = "";
  const waiters = new Set<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  let current: Spawned | undefined;
  // After the first start, keep the ports so clients can reconnect after restart().
  let grpcListen = "127.0.0.1:0";
  let httpListen = "127.0.0.1:0";

  const spawnOnce = (): Promise<Spawned> =>
    new Promise((resolve, reject) => {
      const env = {
        ...baseEnv(),
        MASQUES_GRPC_ADDR: grpcListen,
        MASQUES_HTTP_ADDR: httpListen,
        MASQUES_DATA_DIR: dataDir,
        MASQUES_SHUTDOWN_GRACE_S: "5",
        ...opts.env,
      };
      const child = spawn(process.execPath, [BIN, "serve"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
      live.add(child);
      let buf = "";
      let started = false;
      const exited = new Promise<number | null>((res) =>
        child.on("exit", (code, signal) => {
          live.delete(child);
          res(code ?? (signal ? null : code));
          if (!started) {
            reject(new Error(`daemon exited before listening (code ${String(code)}, signal ${String(signal)})\nstderr:\n${stderr}\nstdout:\n${lines.map((l) => JSON.stringify(l)).join("\n")}`));
          }
        }),
      );
      const timer = setTimeout(() => {
        if (started) return;
        child.kill("SIGKILL");
        reject(new Error(`daemon did not start within ${opts.startTimeoutMs ?? 60_000} ms\nstderr:\n${stderr}`));
      }, opts.startTimeoutMs ?? 60_000);
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.stdout.on("data", (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const text = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          let line: LogLine;
          try {
            line = JSON.parse(text) as LogLine;
          } catch {
            line = { msg: text, level: "raw" };
          }
          lines.push(line);
          for (const w of waiters) {
            if (w.pred(line)) {
              waiters.delete(w);
              w.resolve(line);
            }
          }
          if (!started && line.msg === "listening") {
            started = true;
            clearTimeout(timer);
            resolve({ child, grpcAddr: String(line.grpc_addr), httpAddr: String(line.http_addr), exited });
          }
        }
      });
    });

  const start = async () => {
    if (current && current.child.exitCode === null && current.child.signalCode === null) {
      throw new Error("daemon already running");
    }
    await seedControlPlane(dataDir, opts.env ?? {});
    current = await spawnOnce();
    grpcListen = current.grpcAddr;
    httpListen = current.httpAddr;
  };
  const shutdown = async (): Promise<number | null> => {
    const c = current;
    if (!c || c.child.exitCode !== null || c.child.signalCode !== null) return c ? c.exited : null;
    c.child.kill("SIGTERM");
    return c.exited;
  };
  const kill = async (): Promise<void> => {
    const c = current;
    if (!c || c.child.exitCode !== null || c.child.signalCode !== null) return;
    c.child.kill("SIGKILL");
    await c.exited;
  };

  await start();
  return {
    get grpcAddr() {
      return grpcListen;
    },
    get httpAddr() {
      return httpListen;
    },
    dataDir,
    get pid() {
      return current?.child.pid;
    },
    async token(kind, id, scopes, ttlS = 3600) {
      const keys = await loadOrCreateDevKeys(dataDir);
      return mintToken(keys.privateJwk, {
        kind,
        id,
        scopes: scopes ?? DEFAULT_SCOPES[kind],
        ttlS,
        issuer: opts.env?.MASQUES_JWT_ISSUER ?? "masques-ledger",
        audience: opts.env?.MASQUES_JWT_AUDIENCE ?? "masques-ledger",
      });
    },
    logs: () => lines.slice(),
    stderr: () => stderr,
    waitForLog(pred, timeoutMs = 30_000) {
      const found = lines.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve: (l: LogLine) => (clearTimeout(t), resolve(l)) };
        const t = setTimeout(() => {
          waiters.delete(w);
          reject(new Error("log line not seen in time"));
        }, timeoutMs);
        waiters.add(w);
      });
    },
    start,
    shutdown,
    kill,
    async restart() {
      await shutdown();
      await start();
    },
    async stop() {
      await shutdown();
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
