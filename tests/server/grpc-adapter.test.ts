/**
 * The grpc-js adapter carries everything a Connect handler relies on across native gRPC: request
 * metadata as headers, the deadline (timeoutMs + abort signal), client cancellation, response
 * headers and trailers, error codes and details, and never leaks internal errors. The daemon runs
 * in-process here (real listeners, real network calls) with handlers written for the test.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, expect, test } from "vitest";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { AccountService } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { InsufficientFundsSchema } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { loadConfig } from "../../src/config.js";
import { runDaemon, type RunningDaemon } from "../../src/daemon.js";
import { createLogger } from "../../src/log.js";
import { loadOrCreateDevKeys, mintToken } from "../../src/server/auth.js";
import { principalOf, requestLogger } from "../../src/server/context.js";
import { defineService } from "../../src/server/registry.js";

let dir: string;
let daemon: RunningDaemon;
let grpcClient: Client<typeof AccountService>;
let connectClient: Client<typeof AccountService>;
const logLines: Record<string, unknown>[] = [];
let slowCallEntered = false;
const observed: { signalReason?: unknown; timeoutMs?: number | undefined } = {};

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "grpc-adapter-"));
  const config = loadConfig({ MASQUES_GRPC_ADDR: "127.0.0.1:0", MASQUES_HTTP_ADDR: "127.0.0.1:0", MASQUES_DATA_DIR: dir, STREAMER_ENABLED: "false", MASQUES_CORS_ORIGINS: "https://app.example.com" });
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split("\n")) if (line.trim()) logLines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  daemon = await runDaemon(config, createLogger({ destination: sink }), {
    services: {
      createServices: () => [
        defineService(AccountService, {
          getAccount(req, ctx) {
            ctx.responseHeader.set("x-handler", "seen");
            ctx.responseTrailer.set("x-trailer", "done");
            requestLogger(ctx).info("inside handler");
            return {
              account: {
                accountId: JSON.stringify({
                  echo: ctx.requestHeader.get("x-echo"),
                  principal: principalOf(ctx),
                  hasDeadline: ctx.timeoutMs() !== undefined,
                  ref: req.account?.ref.value,
                }),
              },
            };
          },
          openAgentWallet() {
            throw new Error("secret internal detail: db password is hunter2");
          },
          async deposit(_req, ctx) {
            observed.timeoutMs = ctx.timeoutMs();
            await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
            observed.signalReason = ctx.signal.reason;
            return {};
          },
          async getBalanceHistory() {
            slowCallEntered = true;
            await new Promise((r) => setTimeout(r, 400));
            return {};
          },
          openAuthorEarnings() {
            throw new ConnectError("cannot cover", Code.FailedPrecondition, { "x-err-meta": "m1" }, [
              { desc: InsufficientFundsSchema, value: { accountId: "ab".repeat(16), availableMicro: 5n, requiredMicro: 10n } },
            ]);
          },
        }),
      ],
    },
  });
  const keys = await loadOrCreateDevKeys(dir);
  const token = await mintToken(keys.privateJwk, { kind: "agent", id: "adapter", scopes: ["ledger:read"], ttlS: 600, issuer: "masques-ledger", audience: "masques-ledger" });
  const headers = { authorization: `Bearer ${token}` };
  const auth: Interceptor = (next) => (req) => {
    for (const [k, v] of Object.entries(headers)) req.header.set(k, v);
    return next(req);
  };
  grpcClient = createClient(AccountService, createGrpcTransport({ baseUrl: `http://${daemon.grpcAddr}`, interceptors: [auth] }));
  connectClient = createClient(AccountService, createConnectTransport({ baseUrl: `http://${daemon.httpAddr}`, httpVersion: "1.1", interceptors: [auth] }));
});

afterAll(async () => {
  await daemon?.stop("test done");
  await rm(dir, { recursive: true, force: true });
});

test("metadata reaches the handler as headers; response headers and trailers come back", async () => {
  let header: Headers | undefined;
  let trailer: Headers | undefined;
  const res = await grpcClient.getAccount(
    { account: { ref: { case: "agentWallet", value: "adapter" } } },
    { headers: { "x-echo": "hello", "x-request-id": "adapter-req-1" }, timeoutMs: 30_000, onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) },
  );
  expect(JSON.parse(res.account!.accountId)).toEqual({
    echo: "hello",
    principal: { kind: "agent", id: "adapter", scopes: ["ledger:read"] },
    hasDeadline: true,
    ref: "adapter",
  });
  expect(header?.get("x-handler")).toBe("seen");
  expect(header?.get("x-request-id")).toBe("adapter-req-1");
  expect(trailer?.get("x-trailer")).toBe("done");
  const inside = logLines.find((l) => l.msg === "inside handler" && l.request_id === "adapter-req-1");
  expect(inside).toMatchObject({ protocol: "grpc", principal: "agent:adapter", rpc: "masques.ledger.v1.AccountService/GetAccount" });
});

test("the client's deadline is visible to the handler and aborts its signal", async () => {
  const err = (await grpcClient.deposit({}, { timeoutMs: 300 }).catch((e: unknown) => e)) as ConnectError;
  expect(err.code).toBe(Code.DeadlineExceeded);
  await expect.poll(() => observed.signalReason).toBeInstanceOf(ConnectError);
  expect(observed.timeoutMs).toBeGreaterThan(0);
  expect(observed.timeoutMs).toBeLessThanOrEqual(300);
});

test("an unexpected error is INTERNAL with a generic message on both transports; the details go to the log only", async () => {
  for (const client of [grpcClient, connectClient]) {
    const err = (await client.openAgentWallet({}).catch((e: unknown) => e)) as ConnectError;
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).toBe("internal error");
    expect(err.rawMessage).not.toContain("hunter2");
  }
  expect(logLines.some((l) => l.msg === "unhandled error in handler" && JSON.stringify(l).includes("secret internal detail"))).toBe(true);
});

test("error code, message, metadata and typed details cross both transports unchanged", async () => {
  for (const client of [grpcClient, connectClient]) {
    const err = (await client.openAuthorEarnings({}).catch((e: unknown) => e)) as ConnectError;
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toBe("cannot cover");
    expect(err.metadata.get("x-err-meta")).toBe("m1");
    const [d] = err.findDetails(InsufficientFundsSchema);
    expect(d).toMatchObject({ accountId: "ab".repeat(16), availableMicro: 5n, requiredMicro: 10n });
  }
});

test("methods a service leaves out answer UNIMPLEMENTED (after authentication)", async () => {
  const err = (await grpcClient.listTransfers({}).catch((e: unknown) => e)) as ConnectError;
  expect(err.code).toBe(Code.Unimplemented);
});

test("CORS: allowlisted browser origins get preflight answers and exposed headers; others get nothing", async () => {
  const url = `http://${daemon.httpAddr}/masques.ledger.v1.AccountService/GetAccount`;
  const preflight = await fetch(url, {
    method: "OPTIONS",
    headers: { origin: "https://app.example.com", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
  });
  expect(preflight.status).toBe(204);
  expect(preflight.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
  expect(preflight.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
  const other = await fetch(url, { method: "OPTIONS", headers: { origin: "https://evil.example", "access-control-request-method": "POST" } });
  expect(other.headers.get("access-control-allow-origin")).toBeNull();
  const call = await fetch(url, { method: "POST", headers: { origin: "https://app.example.com", "content-type": "application/json" }, body: "{}" });
  expect(call.status).toBe(401);
  expect(call.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
  expect(call.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("x-request-id");
});

test("shutdown drains: an in-flight call completes, then the daemon stops and refuses new calls", async () => {
  const inFlight = grpcClient.getBalanceHistory({});
  await expect.poll(() => slowCallEntered).toBe(true);
  const stopping = daemon.stop("drain test");
  await expect(inFlight).resolves.toBeDefined();
  await stopping;
  const err = (await grpcClient.getAccount({}).catch((e: unknown) => e)) as ConnectError;
  expect(err.code).toBe(Code.Unavailable);
  expect(logLines.map((l) => l.msg)).toContain("stopped");
});
