/**
 * TEMPORARY stand-in for tests/support/daemon.ts (PLATFORM) with the same shape, used until it
 * lands: spawns the real daemon on free ports with a fresh data dir, mints tokens with its dev key.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { DEFAULT_SCOPES, loadOrCreateDevKeys, mintToken } from "../../src/server/auth.js";
import type { PrincipalKind, Scope } from "../../src/server/principal.js";

export interface Daemon {
  grpcAddr: string;
  httpAddr: string;
  dataDir: string;
  token(kind: PrincipalKind, id: string, scopes?: readonly Scope[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startDaemon(): Promise<Daemon> {
  const dataDir = await mkdtemp(join(tmpdir(), "masques-accounts-"));
  const child: ChildProcess = spawn(process.execPath, [resolve("bin/masques-ledger.js"), "serve"], {
    env: {
      ...process.env,
      MASQUES_DATA_DIR: dataDir,
      MASQUES_GRPC_ADDR: "127.0.0.1:0",
      MASQUES_HTTP_ADDR: "127.0.0.1:0",
      MASQUES_LOG_LEVEL: "info",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const addrs = await new Promise<{ grpc: string; http: string }>((ok, fail) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on("line", (line) => {
      lines.push(line);
      try {
        const rec = JSON.parse(line) as { msg?: string; grpc_addr?: string; http_addr?: string };
        if (rec.msg === "listening" && rec.grpc_addr && rec.http_addr) ok({ grpc: rec.grpc_addr, http: rec.http_addr });
      } catch {
        /* not JSON */
      }
    });
    child.stderr!.on("data", (d: Buffer) => lines.push(d.toString()));
    child.on("exit", (code) => fail(new Error(`daemon exited with ${code}:\n${lines.join("\n")}`)));
  });
  const keys = await loadOrCreateDevKeys(dataDir);
  return {
    grpcAddr: addrs.grpc,
    httpAddr: addrs.http,
    dataDir,
    token: (kind, id, scopes) =>
      mintToken(keys.privateJwk, {
        kind,
        id,
        scopes: scopes ?? DEFAULT_SCOPES[kind],
        ttlS: 3600,
        issuer: "masques-ledger",
        audience: "masques-ledger",
      }),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise<void>((r) => child.once("exit", () => r()));
        child.kill("SIGTERM");
        await exited;
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
