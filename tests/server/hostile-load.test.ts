/**
 * Transport limits under hostile load (issue 12), against the real daemon on loopback, each kind
 * bounded and small: silent and idle connections are closed on both ports, the HTTP/2 stream
 * and header limits are advertised (so a conforming client cannot exceed them and nghttp2
 * refuses the rest), a stalled request on the HTTP port is cut, and connections over
 * MASQUES_MAX_CONNECTIONS are refused at once while `GET /healthz` keeps answering.
 *
 * Every wait is for a condition with a generous bound; the daemon's limits are small (1-3 s),
 * the bounds 30 s, so only a missing limit (the fault) comes near a bound.
 */
import http2 from "node:http2";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { startDaemon, type Daemon } from "../support/daemon.js";

const BOUND_MS = 30_000;

function hostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(":");
  return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
}

/** A TCP connection, with everything it received and a promise of its close. */
async function connect(addr: string): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> {
  const { host, port } = hostPort(addr);
  const socket = net.connect(port, host);
  let data = "";
  socket.on("data", (c: Buffer) => (data += c.toString("latin1")));
  socket.on("error", () => {});
  const closed = new Promise<void>((r) => socket.once("close", () => r()));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return { socket, received: () => data, closed };
}

function within<T>(p: Promise<T>, what: string, ms = BOUND_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]);
}

function healthCheck(addr: string, deadlineMs: number): Promise<string> {
  const Client = grpc.makeClientConstructor(healthService, "grpc.health.v1.Health");
  const client = new Client(addr, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) =>
    (client as unknown as { check(req: object, opts: { deadline: number }, cb: (e: Error | null, r: { status: string }) => void): void }).check(
      { service: "" },
      { deadline: Date.now() + deadlineMs },
      (e, r) => {
        client.close();
        if (e) reject(e);
        else resolve(r.status);
      },
    ),
  );
}

describe("timeouts and per-connection limits", () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await startDaemon({
      env: {
        STREAMER_ENABLED: "false",
        MASQUES_IDLE_TIMEOUT_S: "1",
        MASQUES_HEADER_TIMEOUT_S: "1",
        MASQUES_MAX_STREAMS_PER_CONNECTION: "4",
        MASQUES_MAX_METADATA_BYTES: "8192",
      },
    });
  });
  afterAll(async () => {
    await d?.stop();
  });

  test.each(["grpc", "http"] as const)("a connection that sends nothing is closed (%s port)", async (port) => {
    const c = await connect(port === "grpc" ? d.grpcAddr : d.httpAddr);
    await within(c.closed, "silent connection closed");
    expect(c.received()).toBe("");
  });

  test.each(["grpc", "http"] as const)("an HTTP/2 connection without a call is closed after the idle timeout (%s port)", async (port) => {
    const session = http2.connect(`http://${port === "grpc" ? d.grpcAddr : d.httpAddr}`);
    session.on("error", () => {});
    const closed = new Promise<void>((r) => session.once("close", () => r()));
    await within(closed, "idle HTTP/2 session closed");
  });

  test("HTTP/1.1 request headers that never complete are cut (HTTP port)", async () => {
    const c = await connect(d.httpAddr);
    c.socket.write("POST /masques.ledger.v1.AccountService/GetAccount HTTP/1.1\r\nhost: x\r\n");
    await within(c.closed, "slow headers cut");
  });

  test.each(["grpc", "http"] as const)("streams per connection and the header list size are advertised (%s port)", async (port) => {
    const session = http2.connect(`http://${port === "grpc" ? d.grpcAddr : d.httpAddr}`);
    session.on("error", () => {});
    const settings = await within(
      new Promise<http2.Settings>((r) => session.once("remoteSettings", (s: http2.Settings) => r(s))),
      "server settings",
    );
    session.destroy();
    expect(settings.maxConcurrentStreams).toBe(4);
    expect(settings.maxHeaderListSize).toBe(8192);
  });

  test.each(["grpc", "http"] as const)("a request whose message never completes is cut (%s port)", async (port) => {
    const session = http2.connect(`http://${port === "grpc" ? d.grpcAddr : d.httpAddr}`);
    session.on("error", () => {});
    const stream = session.request({
      ":method": "POST",
      ":path": "/masques.ledger.v1.AccountService/GetAccount",
      "content-type": port === "grpc" ? "application/grpc" : "application/proto",
      ...(port === "grpc" ? { te: "trailers" } : {}),
    });
    stream.on("error", () => {});
    // A message that never ends (gRPC: an envelope announcing 100 bytes, 1 sent).
    stream.write(port === "grpc" ? Buffer.from([0, 0, 0, 0, 100, 0x0a]) : Buffer.from([0x0a]));
    await within(new Promise<void>((r) => stream.once("close", () => r())), "stalled stream cut");
    session.destroy();
  });

  test.each(["grpc", "http"] as const)("a request header block over MASQUES_MAX_METADATA_BYTES is refused (%s port)", async (port) => {
    const session = http2.connect(`http://${port === "grpc" ? d.grpcAddr : d.httpAddr}`);
    session.on("error", () => {});
    const headers =
      port === "grpc"
        ? { ":method": "POST", ":path": "/grpc.health.v1.Health/Check", "content-type": "application/grpc", te: "trailers" }
        : { ":method": "GET", ":path": "/healthz" };
    const stream = session.request({ ...headers, "x-padding": "p".repeat(16 * 1024) });
    stream.on("error", () => {});
    let status: number | undefined;
    let grpcStatus: string | undefined;
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      grpcStatus = h["grpc-status"] as string | undefined;
    });
    if (port === "grpc") stream.end(Buffer.from([0, 0, 0, 0, 0]));
    else stream.end();
    stream.resume();
    await within(new Promise<void>((r) => stream.once("close", () => r())), "oversized header block answered");
    session.destroy();
    // Refused: 431 on the HTTP port; on the gRPC port RESOURCE_EXHAUSTED before any call runs.
    if (port === "http") expect(status).toBe(431);
    else expect(grpcStatus).toBe(String(grpc.status.RESOURCE_EXHAUSTED));
  });
});

describe("connection cap", () => {
  let d: Daemon;
  beforeAll(async () => {
    // Long timeouts: the connections held open below must not be closed by them.
    d = await startDaemon({
      env: { STREAMER_ENABLED: "false", MASQUES_MAX_CONNECTIONS: "4", MASQUES_IDLE_TIMEOUT_S: "600", MASQUES_HEADER_TIMEOUT_S: "600" },
    });
  });
  afterAll(async () => {
    await d?.stop();
  });

  test("HTTP port: over the cap a new connection is closed unanswered, but GET /healthz still answers", async () => {
    const held = await Promise.all([1, 2, 3, 4].map(() => connect(d.httpAddr)));
    try {
      const rpc = await connect(d.httpAddr);
      rpc.socket.write("POST /masques.ledger.v1.AccountService/GetAccount HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}");
      await within(rpc.closed, "over-cap connection closed");
      expect(rpc.received()).toBe("");
      const health = await connect(d.httpAddr);
      health.socket.write("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
      await within(health.closed, "over-cap health answer");
      expect(health.received()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(health.received()).toContain('{"status":"SERVING"}');
    } finally {
      for (const c of held) c.socket.destroy();
    }
    // Below the cap again, calls are served.
    await within(
      (async () => {
        for (;;) {
          const res = await fetch(`http://${d.httpAddr}/healthz`).catch(() => undefined);
          if (res?.status === 200) return;
          await new Promise((r) => setTimeout(r, 100));
        }
      })(),
      "served again below the cap",
    );
  });

  test("gRPC port: over the cap a new connection is refused; below it health answers again", async () => {
    const held = await Promise.all([1, 2, 3, 4].map(() => connect(d.grpcAddr)));
    try {
      const over = await connect(d.grpcAddr);
      await within(over.closed, "over-cap gRPC connection closed");
    } finally {
      for (const c of held) c.socket.destroy();
    }
    await within(
      (async () => {
        for (;;) {
          const status = await healthCheck(d.grpcAddr, 5_000).catch(() => "");
          if (status === "SERVING") return;
          await new Promise((r) => setTimeout(r, 100));
        }
      })(),
      "gRPC health answers below the cap",
    );
  });
});
