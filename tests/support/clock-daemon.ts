/**
 * Test support: the real daemon IN THIS PROCESS (`runDaemon`) with an injected clock, so tests
 * move the daemon's time instead of waiting for it (the session reaper's idle and maximum-length
 * decisions read this clock). The ledger keeps its own wall clock: only the daemon's view of "now"
 * moves, always forward. The streamer is off (chDB hosts one directory per process).
 *
 *   const d = await startClockDaemon({ SESSION_IDLE_S: "600" });
 *   const c = await d.fundedAgent("alice", 1_000_000n);
 *   d.advance(601);                                   // 601 s later, as far as the daemon knows
 *   await d.restart();                                // stopped, then started on the same data
 *   await d.stop();
 */
import type { DaemonContext } from "../../src/server/registry.js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AccountService, WalletMode } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { SessionService } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { seedControlPlane } from "./pglite-template.js";
import type { Client } from "tigerbeetle-node";
import { runDaemon, systemClock, type RunningDaemon } from "../../src/daemon.js";
import * as servicesModule from "../../src/services/index.js";
import type { ServicesModule } from "../../src/server/registry.js";
import { createLogger } from "../../src/log.js";
import { DEFAULT_SCOPES, loadOrCreateDevKeys, mintToken } from "../../src/server/auth.js";
import type { PrincipalKind } from "../../src/server/principal.js";
import type { Clients } from "../sessions/harness.js";

export interface ClockDaemon {
  /** The daemon running now (a new one after `restart`). */
  readonly daemon: RunningDaemon;
  /** Stop the daemon and start it again on the same data directory and clock (ports change). */
  restart(): Promise<void>;
  /** Move the daemon's clock forward by `seconds` (never back). */
  advance(seconds: number): void;
  as(kind: PrincipalKind, id: string): Promise<Clients>;
  /** A bearer token for `kind`/`id` (default scopes), for clients of other services. */
  token(kind: PrincipalKind, id: string): Promise<string>;
  fundedAgent(agent: string, amount_micro: bigint): Promise<Clients>;
  available(agent: string): Promise<bigint>;
  /** Log lines so far (parsed JSON). */
  logs(): Record<string, unknown>[];
  stop(): Promise<void>;
}

/** Options: `onLedger` receives the daemon's ledger client (each start), for tests that read accounts the API does not show (e.g. the msat ledger); `onAnalytics` the streamer's sink (STREAMER_ENABLED=true). */
export async function startClockDaemon(
  env: Record<string, string> = {},
  opts: { onLedger?: (ledger: Client) => void; onAnalytics?: (analytics: DaemonContext["analytics"]) => void } = {},
): Promise<ClockDaemon> {
  const dir = await mkdtemp(path.join(tmpdir(), "clock-daemon-"));
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
    STREAMER_ENABLED: "false",
    MASQUES_SHUTDOWN_GRACE_S: "5",
    ...env,
  });
  await seedControlPlane(dir, env);
  const services: ServicesModule = {
    ...servicesModule,
    createServices(ctx) {
      opts.onLedger?.(ctx.ledger);
      opts.onAnalytics?.(ctx.analytics);
      return servicesModule.createServices(ctx);
    },
  };
  const start = () => runDaemon(config, createLogger({ destination: sink }), { clock: () => systemClock() + offset_ns, services });
  let daemon = await start();
  const keys = await loadOrCreateDevKeys(dir);
  const token = (kind: PrincipalKind, id: string): Promise<string> =>
    mintToken(keys.privateJwk, { kind, id, scopes: DEFAULT_SCOPES[kind], ttlS: 3600, issuer: config.MASQUES_JWT_ISSUER, audience: config.MASQUES_JWT_AUDIENCE });
  const as = async (kind: PrincipalKind, id: string): Promise<Clients> => {
    const token = await mintToken(keys.privateJwk, { kind, id, scopes: DEFAULT_SCOPES[kind], ttlS: 3600, issuer: config.MASQUES_JWT_ISSUER, audience: config.MASQUES_JWT_AUDIENCE });
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    };
    const transport = createGrpcTransport({ baseUrl: `http://${daemon.grpcAddr}`, interceptors: [auth] });
    return { sessions: createClient(SessionService, transport), accounts: createClient(AccountService, transport) };
  };
  const admin = (): Promise<Clients> => as("admin", "ops");
  let k = 0;
  return {
    get daemon() {
      return daemon;
    },
    async restart() {
      await daemon.stop();
      daemon = await start();
    },
    advance(seconds) {
      if (!(seconds > 0)) throw new Error("the clock only moves forward");
      offset_ns += BigInt(Math.round(seconds * 1e9));
    },
    as,
    token,
    async fundedAgent(agent, amount_micro) {
      const c = await as("agent", agent);
      await c.accounts.openAgentWallet({ mode: WalletMode.PREPAID });
      await (await admin()).accounts.deposit({ account: { ref: { case: "agentWallet", value: agent } }, amountMicro: amount_micro, idempotencyKey: `fund-${agent}-${++k}` });
      return c;
    },
    async available(agent) {
      const r = await (await admin()).accounts.getAccount({ account: { ref: { case: "agentWallet", value: agent } } });
      return r.account!.balance!.availableMicro;
    },
    logs: () => lines.slice(),
    async stop() {
      await daemon.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
