/**
 * Issue 12: calls still running when MASQUES_SHUTDOWN_GRACE_S is over are cancelled (their
 * handlers see the abort, their clients get an error), on both listeners, and the daemon stops;
 * a call that finishes within the grace completes normally. Nothing here depends on how fast the
 * machine is: the hanging handlers never finish by themselves, so only the cancellation can end
 * them, and every wait is for a condition.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, expect, test } from "vitest";
import { AccountService } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { runDaemon, type RunningDaemon } from "../../src/daemon.js";
import { createLogger } from "../../src/log.js";
import { DEFAULT_SCOPES, loadOrCreateDevKeys, mintToken } from "../../src/server/auth.js";
import { defineService } from "../../src/server/registry.js";

let dir: string;
let daemon: RunningDaemon;
const logLines: { msg?: string }[] = [];
const entered = new Set<string>();
const aborted = new Set<string>();
let releaseQuick: () => void = () => {};
const quickMayFinish = new Promise<void>((r) => (releaseQuick = r));

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "shutdown-grace-"));
  const config = loadConfig({
    MASQUES_GRPC_ADDR: "127.0.0.1:0",
    MASQUES_HTTP_ADDR: "127.0.0.1:0",
    MASQUES_DATA_DIR: dir,
    STREAMER_ENABLED: "false",
    MASQUES_SHUTDOWN_GRACE_S: "1",
  });
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split("\n")) if (line.trim()) logLines.push(JSON.parse(line) as { msg?: string });
      cb();
    },
  });
  daemon = await runDaemon(config, createLogger({ destination: sink }), {
    services: {
      createServices: () => [
        defineService(AccountService, {
          // Never finishes on its own: only a cancellation ends it.
          async getAccount(req, ctx) {
            const who = req.account?.ref.value as string;
            entered.add(who);
            await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
            aborted.add(who);
            return {};
          },
          // Finishes once the test lets it, after the shutdown began (within the grace).
          async getBalanceHistory(_req, ctx) {
            entered.add("quick");
            await quickMayFinish;
            if (ctx.signal.aborted) aborted.add("quick");
            return {};
          },
        }),
      ],
    },
  });
}, 60_000);
afterAll(async () => {
  await daemon?.stop();
  await rm(dir, { recursive: true, force: true });
});

test("calls past the grace are cancelled on both listeners; a call within it completes; the daemon stops", async () => {
  const keys = await loadOrCreateDevKeys(dir);
  const token = await mintToken(keys.privateJwk, { kind: "admin", id: "ops", scopes: DEFAULT_SCOPES.admin, ttlS: 600, issuer: "masques-ledger", audience: "masques-ledger" });
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const grpc = createClient(AccountService, createGrpcTransport({ baseUrl: `http://${daemon.grpcAddr}`, interceptors: [auth] }));
  const connect = createClient(AccountService, createConnectTransport({ baseUrl: `http://${daemon.httpAddr}`, httpVersion: "1.1", interceptors: [auth] }));
  const outcome = (p: Promise<unknown>) => p.then(() => "ok" as const, (e: unknown) => ConnectError.from(e));

  const hangingGrpc = outcome(grpc.getAccount({ account: { ref: { case: "agentWallet", value: "grpc" } } }));
  const hangingConnect = outcome(connect.getAccount({ account: { ref: { case: "agentWallet", value: "connect" } } }));
  const quick = outcome(grpc.getBalanceHistory({}));
  await expect.poll(() => entered.size, { timeout: 30_000 }).toBe(3);

  const stopping = daemon.stop("grace test");
  releaseQuick();
  expect(await quick).toBe("ok");
  await stopping; // resolves only because the hanging calls were cancelled
  expect(aborted).toEqual(new Set(["grpc", "connect"]));
  for (const r of [await hangingGrpc, await hangingConnect]) {
    expect(r).toBeInstanceOf(ConnectError);
    expect([Code.Canceled, Code.Unavailable, Code.Aborted, Code.Internal, Code.Unknown]).toContain((r as ConnectError).code);
  }
  const msgs = logLines.map((l) => l.msg);
  expect(msgs).toContain("grace period over: cancelling remaining gRPC calls");
  expect(msgs.at(-1)).toBe("stopped");
}, 120_000);
