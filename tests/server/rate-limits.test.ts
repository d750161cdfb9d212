/**
 * Per-principal rate limits (issue 17) on the real daemon: a caller over its limit gets
 * RESOURCE_EXHAUSTED with retry-after on every transport (HTTP 429 + Retry-After on the JSON
 * port) while another principal is served at the same moment; classes are separate buckets;
 * health and reflection stay unlimited.
 *
 * Deterministic: the buckets hold 2 calls and refill one token per 10,000 s, so no refill can
 * happen while the test runs, however slow the machine.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { SessionService } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { ErrorInfoSchema } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { RateLimiter } from "../../src/server/rate-limit.js";

let d: Daemon;

beforeAll(async () => {
  d = await startDaemon({
    env: {
      RATE_LIMIT_ENABLED: "true",
      RATE_LIMIT_READ_PER_S: "0.0001",
      RATE_LIMIT_READ_BURST: "2",
      RATE_LIMIT_WRITE_PER_S: "0.0001",
      RATE_LIMIT_WRITE_BURST: "1",
    },
  });
});
afterAll(async () => {
  await d?.stop();
});

const bearer = (token: string): Interceptor => (next) => (req) => {
  req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

function grpcClient(token: string) {
  return createClient(SessionService, createGrpcTransport({ baseUrl: `http://${d.grpcAddr}`, interceptors: [bearer(token)] }));
}

async function refusal(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to be refused");
}

function healthCheck(addr: string): Promise<string> {
  const Client = grpc.makeClientConstructor(healthService, "grpc.health.v1.Health");
  const client = new Client(addr, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) =>
    (client as unknown as { check(req: object, opts: { deadline: number }, cb: (e: Error | null, r: { status: string }) => void): void }).check(
      { service: "" },
      { deadline: Date.now() + 30_000 },
      (e, r) => {
        client.close();
        if (e) reject(e);
        else resolve(r.status);
      },
    ),
  );
}

describe("rate limits per principal and method class", () => {
  test("gRPC: the third read of one agent is refused with retry-after while another agent is served", async () => {
    const alice = grpcClient(await d.token("agent", "rl-alice"));
    const bob = grpcClient(await d.token("agent", "rl-bob"));
    await alice.listMasques({});
    await alice.listMasques({});
    // Same moment: alice is over her limit, bob is not.
    const [refused, served] = await Promise.allSettled([alice.listMasques({}), bob.listMasques({})]);
    expect(served.status).toBe("fulfilled");
    expect(refused.status).toBe("rejected");
    const err = ConnectError.from((refused as PromiseRejectedResult).reason);
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toMatch(/rate limit exceeded for read calls/);
    expect(err.findDetails(ErrorInfoSchema)[0]?.reason).toBe("RATE_LIMITED");
    // One token per 10,000 s: the wait is long and announced in whole seconds.
    expect(Number(err.metadata.get("retry-after"))).toBeGreaterThan(1000);
  });

  test("classes are separate buckets: reads exhausted, the write bucket still has its token", async () => {
    const carol = grpcClient(await d.token("agent", "rl-carol"));
    await carol.listMasques({});
    await carol.listMasques({});
    expect((await refusal(carol.listMasques({}))).code).toBe(Code.ResourceExhausted);
    // A write (Heartbeat of an unknown session) passes the limiter and reaches the service.
    const write = await refusal(carol.heartbeat({ sessionId: "00000000-0000-0000-0000-000000000000" }));
    expect(write.code).not.toBe(Code.ResourceExhausted);
    // ...and the second write is over the write bucket (size 1).
    expect((await refusal(carol.heartbeat({ sessionId: "00000000-0000-0000-0000-000000000000" }))).code).toBe(Code.ResourceExhausted);
  });

  test("JSON port: HTTP 429 with Retry-After; another principal gets 200 at the same moment", async () => {
    const dave = await d.token("agent", "rl-dave");
    const erin = await d.token("agent", "rl-erin");
    const call = (token: string) =>
      fetch(`http://${d.httpAddr}/masques.ledger.v1.SessionService/ListMasques`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: "{}",
      });
    expect((await call(dave)).status).toBe(200);
    expect((await call(dave)).status).toBe(200);
    const [over, other] = await Promise.all([call(dave), call(erin)]);
    expect(other.status).toBe(200);
    expect(over.status).toBe(429);
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(1000);
    const body = (await over.json()) as { code: string; message: string };
    expect(body.code).toBe("resource_exhausted");
    expect(body.message).toMatch(/rate limit exceeded/);
  });

  test("Connect binary and gRPC-Web carry RESOURCE_EXHAUSTED and retry-after too", async () => {
    const transports: [string, (t: string) => Transport][] = [
      ["connect-h2", (t) => createConnectTransport({ baseUrl: `http://${d.httpAddr}`, httpVersion: "2", useBinaryFormat: true, interceptors: [bearer(t)] })],
      ["grpc-web", (t) => createGrpcWebTransport({ baseUrl: `http://${d.httpAddr}`, httpVersion: "1.1", interceptors: [bearer(t)] })],
    ];
    for (const [name, make] of transports) {
      const c = createClient(SessionService, make(await d.token("agent", `rl-${name}`)));
      await c.listMasques({});
      await c.listMasques({});
      const err = await refusal(c.listMasques({}));
      expect(err.code, name).toBe(Code.ResourceExhausted);
      expect(Number(err.metadata.get("retry-after")), name).toBeGreaterThan(1000);
    }
  });

  test("the health check stays unlimited", async () => {
    for (let i = 0; i < 6; i++) expect(await healthCheck(d.grpcAddr)).toBe("SERVING");
  });
});

describe("RateLimiter", () => {
  test("keys by principal kind and id; perS 0 means unlimited", () => {
    const rl = new RateLimiter({ read: { perS: 0.0001, burst: 1 }, write: { perS: 0, burst: 1 }, admin: { perS: 0.0001, burst: 1 } });
    const agent = { kind: "agent" as const, id: "x", scopes: [] };
    const author = { kind: "author" as const, id: "x", scopes: [] };
    expect(rl.take(agent, "read").ok).toBe(true);
    expect(rl.take(agent, "read").ok).toBe(false);
    expect(rl.take(author, "read").ok).toBe(true);
    for (let i = 0; i < 10; i++) expect(rl.take(agent, "write").ok).toBe(true);
  });
});
