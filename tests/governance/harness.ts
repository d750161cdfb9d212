/**
 * Test support for governance (issue 16): the real daemon in this process (`runDaemon`) with an
 * injected clock (cooling periods pass by moving the daemon's clock, never by sleeping), tokens
 * with any scopes, and AdminService / AccountService / SessionService clients over native gRPC or
 * Connect JSON (HTTP/1.1).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { AccountService } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { AdminService } from "../../clients/gen/masques/ledger/v1/admin_service_pb.js";
import { SessionService } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { WebhookService } from "../../clients/gen/masques/ledger/v1/webhook_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { runDaemon, systemClock, type RunningDaemon } from "../../src/daemon.js";
import { createLogger } from "../../src/log.js";
import { loadOrCreateDevKeys, mintToken } from "../../src/server/auth.js";
import type { PrincipalKind, Scope } from "../../src/server/principal.js";
import { seedControlPlane } from "../support/pglite-template.js";

export type TransportName = "grpc" | "connect-json";
export const TRANSPORTS: readonly TransportName[] = ["grpc", "connect-json"];

export interface As {
  admin: Client<typeof AdminService>;
  accounts: Client<typeof AccountService>;
  sessions: Client<typeof SessionService>;
  hooks: Client<typeof WebhookService>;
}

export interface GovDaemon {
  readonly dataDir: string;
  /** Clients for a principal with exactly `scopes`, over `transport`; `requestId` sets x-request-id. */
  as(transport: TransportName, kind: PrincipalKind, id: string, scopes: readonly Scope[], requestId?: string): Promise<As>;
  /** Move the daemon's clock forward by `seconds`. */
  advance(seconds: number): void;
  logs(): Record<string, unknown>[];
  restart(): Promise<void>;
  /** Stop the daemon, keep its data (then `start`). */
  halt(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export const WRITE: Scope[] = ["admin", "admin:rules:write"];
export const APPROVE: Scope[] = ["admin", "admin:rules:approve"];
export const EMERGENCY: Scope[] = ["admin", "admin:rules:emergency"];
export const ADMIN: Scope[] = ["admin", "ledger:read", "ledger:write"];

/** Poll `probe` until it returns a value (generous bound: the machine is loaded). */
export async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startGovDaemon(env: Record<string, string> = {}): Promise<GovDaemon> {
  const dir = await mkdtemp(path.join(tmpdir(), "governance-"));
  let offset_ns = 0n;
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split("\n")) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const config = loadConfig({
    MASQUES_GRPC_ADDR: "127.0.0.1:0",
    MASQUES_HTTP_ADDR: "127.0.0.1:0",
    MASQUES_DATA_DIR: dir,
    MASQUES_DIR: path.resolve("masques"),
    STREAMER_ENABLED: "false",
    MASQUES_SHUTDOWN_GRACE_S: "5",
    GOVERNANCE_TICK_MS: "50",
    ...env,
  });
  await seedControlPlane(dir, env);
  const start = () => runDaemon(config, createLogger({ destination: sink }), { clock: () => systemClock() + offset_ns });
  let daemon: RunningDaemon = await start();
  const keys = await loadOrCreateDevKeys(dir);
  return {
    dataDir: dir,
    async as(transport, kind, id, scopes, requestId) {
      const token = await mintToken(keys.privateJwk, { kind, id, scopes, ttlS: 3600, issuer: config.MASQUES_JWT_ISSUER, audience: config.MASQUES_JWT_AUDIENCE });
      const auth: Interceptor = (next) => (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        if (requestId) req.header.set("x-request-id", requestId);
        return next(req);
      };
      const t: Transport =
        transport === "grpc"
          ? createGrpcTransport({ baseUrl: `http://${daemon.grpcAddr}`, interceptors: [auth] })
          : createConnectTransport({ baseUrl: `http://${daemon.httpAddr}`, httpVersion: "1.1", useBinaryFormat: false, interceptors: [auth] });
      return { admin: createClient(AdminService, t), accounts: createClient(AccountService, t), sessions: createClient(SessionService, t), hooks: createClient(WebhookService, t) };
    },
    advance(seconds) {
      if (!(seconds > 0)) throw new Error("the clock only moves forward");
      offset_ns += BigInt(Math.round(seconds * 1e9));
    },
    logs: () => lines.slice(),
    async restart() {
      await daemon.stop();
      daemon = await start();
    },
    async halt() {
      await daemon.stop();
    },
    async start() {
      daemon = await start();
    },
    async stop() {
      await daemon.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
