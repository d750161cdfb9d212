/**
 * Errors and inputs at the daemon's edges (issues 11 and 12), against the real daemon over the
 * network on every transport:
 * - every error, from any layer (authentication, routing, decoding, size limits), carries its
 *   ErrorInfo; a malformed binary message is INVALID_ARGUMENT, not INTERNAL / HTTP 500;
 * - a request value echoed into an error is bounded (MASQUES_MAX_ECHO_CHARS), so the error
 *   arrives over native gRPC and neither the response nor the log line grows with the input;
 * - a 64-bit amount in a JSON request is an exact canonical decimal or refused naming the field;
 * - a port clash names the variable to change; the data directory, the analytics directory
 *   and the dev keys are private to the daemon's user.
 */
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { AccountService, WalletMode } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { ErrorInfoSchema } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { SessionService } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { runCli, startDaemon, type Daemon } from "../support/daemon.js";

const ECHO_MAX = 256;
/** The message is cut at 4x MASQUES_MAX_ECHO_CHARS plus the cut marker. */
const MESSAGE_MAX = ECHO_MAX * 4 + 40;

let d: Daemon;
let agentToken: string;
let adminToken: string;

beforeAll(async () => {
  d = await startDaemon({ env: { STREAMER_ENABLED: "false", MASQUES_MAX_MESSAGE_BYTES: String(2 * 1024 * 1024) } });
  agentToken = await d.token("agent", "edge-agent");
  adminToken = await d.token("admin", "edge-ops");
});
afterAll(async () => {
  await d?.stop();
});

const bearer = (token: string): Interceptor => (next) => (req) => {
  req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

type TransportName = "grpc" | "connect-h1-json" | "connect-h2-binary" | "grpc-web";
const TRANSPORTS: TransportName[] = ["grpc", "connect-h1-json", "connect-h2-binary", "grpc-web"];
function transport(name: TransportName, token?: string): Transport {
  const interceptors = token ? [bearer(token)] : [];
  // Generous: only a missing answer (the fault) comes near it.
  const defaultTimeoutMs = 30_000;
  switch (name) {
    case "grpc":
      return createGrpcTransport({ baseUrl: `http://${d.grpcAddr}`, interceptors, defaultTimeoutMs });
    case "connect-h1-json":
      return createConnectTransport({ baseUrl: `http://${d.httpAddr}`, httpVersion: "1.1", useBinaryFormat: false, interceptors, defaultTimeoutMs });
    case "connect-h2-binary":
      return createConnectTransport({ baseUrl: `http://${d.httpAddr}`, httpVersion: "2", useBinaryFormat: true, interceptors, defaultTimeoutMs });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl: `http://${d.httpAddr}`, httpVersion: "1.1", interceptors, defaultTimeoutMs });
  }
}

function reasonOf(err: unknown): string | undefined {
  expect(err).toBeInstanceOf(ConnectError);
  return (err as ConnectError).findDetails(ErrorInfoSchema)[0]?.reason;
}

/** A raw unary call on the gRPC port (any path, any bytes); resolves with the status. */
function rawGrpcCall(pathName: string, body: Buffer): Promise<{ code: number; details: string; metadata: grpc.Metadata }> {
  const client = new grpc.Client(d.grpcAddr, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      pathName,
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      new grpc.Metadata(),
      { deadline: Date.now() + 30_000 },
      (err) => {
        client.close();
        if (!err) reject(new Error("expected an error"));
        else resolve({ code: err.code, details: err.details, metadata: err.metadata });
      },
    );
  });
}

/** The ErrorInfo reason carried in a gRPC status's grpc-status-details-bin. */
function grpcReason(status: { code: number; details: string; metadata: grpc.Metadata }): string | undefined {
  const h = new Headers({ "grpc-status": String(status.code), "grpc-message": encodeURIComponent(status.details) });
  const bin = status.metadata.get("grpc-status-details-bin")[0];
  if (bin) h.set("grpc-status-details-bin", Buffer.from(bin).toString("base64"));
  const err = findTrailerError(h);
  return err?.findDetails(ErrorInfoSchema)[0]?.reason;
}

describe("every error carries its ErrorInfo", () => {
  test.each(TRANSPORTS)("UNAUTHENTICATED over %s", async (name) => {
    const client = createClient(AccountService, transport(name));
    const err = await client.openAgentWallet({ mode: WalletMode.PREPAID }).catch((e: unknown) => e);
    expect((err as ConnectError).code).toBe(Code.Unauthenticated);
    expect(reasonOf(err)).toBe("UNAUTHENTICATED");
  });

  test("an unknown method: UNIMPLEMENTED with ErrorInfo on the gRPC port, 404 with ErrorInfo on the HTTP port", async () => {
    const g = await rawGrpcCall("/masques.ledger.v1.AccountService/NoSuchMethod", Buffer.alloc(0));
    expect(g.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(grpcReason(g)).toBe("METHOD_NOT_FOUND");
    const res = await fetch(`http://${d.httpAddr}/masques.ledger.v1.AccountService/NoSuchMethod`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(404);
    const body = (await res.json()) as { code: string; details: { type: string; debug?: { reason?: string } }[] };
    expect(body.code).toBe("unimplemented");
    expect(body.details.find((x) => x.type === "masques.ledger.v1.ErrorInfo")?.debug?.reason).toBe("ROUTE_NOT_FOUND");
  });

  test("malformed protobuf is INVALID_ARGUMENT (HTTP 400) with ErrorInfo on both ports, not INTERNAL / 500", async () => {
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    const g = await rawGrpcCall("/masques.ledger.v1.AccountService/GetAccount", garbage);
    expect(g.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(grpcReason(g)).toBe("MALFORMED_REQUEST");
    const res = await fetch(`http://${d.httpAddr}/masques.ledger.v1.AccountService/GetAccount`, {
      method: "POST",
      headers: { "content-type": "application/proto", authorization: `Bearer ${agentToken}` },
      body: garbage,
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { code: string; details: { type: string; debug?: { reason?: string } }[] };
    expect(body.code).toBe("invalid_argument");
    expect(body.details.find((x) => x.type === "masques.ledger.v1.ErrorInfo")?.debug?.reason).toBe("MALFORMED_REQUEST");
  });

  test("a message over MASQUES_MAX_MESSAGE_BYTES is RESOURCE_EXHAUSTED with ErrorInfo on the gRPC port", async () => {
    const g = await rawGrpcCall("/masques.ledger.v1.AccountService/GetAccount", Buffer.alloc(3 * 1024 * 1024));
    expect(g.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(grpcReason(g)).toBe("RESOURCE_EXHAUSTED");
  });

  test("a message over MASQUES_MAX_MESSAGE_BYTES is RESOURCE_EXHAUSTED with ErrorInfo on the HTTP port", async () => {
    const res = await fetch(`http://${d.httpAddr}/masques.ledger.v1.AccountService/GetAccount`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${agentToken}` },
      body: JSON.stringify({ account: { agentWallet: "x".repeat(3 * 1024 * 1024) } }),
    });
    const body = (await res.json()) as { code: string; details: { type: string; debug?: { reason?: string } }[] };
    expect(body.code).toBe("resource_exhausted");
    expect(body.details.find((x) => x.type === "masques.ledger.v1.ErrorInfo")?.debug?.reason).toBe("MESSAGE_TOO_LARGE");
  });
});

describe("an echoed request value is bounded", () => {
  const huge = "m".repeat(1_000_000);

  test.each(TRANSPORTS)("a 1 MB masque name in Don over %s: the error arrives, cut, with its ErrorInfo", async (name) => {
    const client = createClient(SessionService, transport(name, agentToken));
    const err = await client.don({ masque: huge }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    const ce = err as ConnectError;
    expect(ce.code).toBe(Code.NotFound);
    expect(ce.rawMessage.length).toBeLessThanOrEqual(MESSAGE_MAX);
    expect(ce.rawMessage).toMatch(/^masque "m+…\[\d+ chars, cut\]/);
    const [info] = ce.findDetails(ErrorInfoSchema);
    expect(info?.reason).toBe("MASQUE_NOT_FOUND");
    expect(info?.metadata.masque?.length).toBeLessThanOrEqual(ECHO_MAX + 40);
  }, 120_000);

  test("the JSON error body and the daemon's log line stay small", async () => {
    const res = await fetch(`http://${d.httpAddr}/masques.ledger.v1.SessionService/Don`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${agentToken}`, "x-request-id": "edge-huge-don" },
      body: JSON.stringify({ masque: huge }),
    });
    expect(res.status).toBe(404);
    expect((await res.arrayBuffer()).byteLength).toBeLessThan(8 * 1024);
    const line = await d.waitForLog((l) => l.request_id === "edge-huge-don" && l.msg === "rpc failed");
    expect(JSON.stringify(line).length).toBeLessThan(8 * 1024);
    for (const l of d.logs()) expect(JSON.stringify(l).length).toBeLessThan(16 * 1024);
  }, 120_000);
});

describe("64-bit amounts in JSON are exact canonical decimals", () => {
  const deposit = (amountMicro: unknown, key: string) =>
    fetch(`http://${d.httpAddr}/masques.ledger.v1.AccountService/Deposit`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` },
      body: JSON.stringify({ account: { agentWallet: "edge-agent" }, amountMicro, idempotencyKey: key }),
    });
  const balance = async (): Promise<bigint> => {
    const client = createClient(AccountService, transport("grpc", agentToken));
    const got = await client.getAccount({ account: { ref: { case: "agentWallet", value: "edge-agent" } } });
    return got.account?.balance?.availableMicro ?? -1n;
  };

  test("hex, binary, octal, signs and spaces are refused naming amount_micro; nothing is deposited", async () => {
    await createClient(AccountService, transport("grpc", agentToken)).openAgentWallet({ mode: WalletMode.PREPAID });
    const before = await balance();
    const forms: unknown[] = ["0x10", "0b101", "0o17", " 5", "+5", "\n7", "5 ", "007", "1e3", "5.0", 2 ** 60];
    for (const [i, form] of forms.entries()) {
      const res = await deposit(form, `edge-bad-${i}`);
      expect(res.status, JSON.stringify(form)).toBe(400);
      const body = (await res.json()) as {
        code: string;
        message: string;
        details: { type: string; debug?: { fieldViolations?: { field: string }[] } }[];
      };
      expect(body.code).toBe("invalid_argument");
      expect(body.message).toMatch(/^amount_micro: /);
      const bad = body.details.find((x) => x.type === "masques.ledger.v1.BadRequest");
      expect(bad?.debug?.fieldViolations?.[0]?.field).toBe("amount_micro");
    }
    expect(await balance()).toBe(before);
    // The canonical forms still work: a decimal string and a (safe) JSON number.
    expect((await deposit("16", "edge-good-1")).status).toBe(200);
    expect((await deposit(4, "edge-good-2")).status).toBe(200);
    expect(await balance()).toBe(before + 20n);
  });

  test("enveloped JSON (gRPC / gRPC-Web / Connect streaming +json) is refused with 415", async () => {
    for (const ct of ["application/grpc-web+json", "application/grpc+json", "application/connect+json"]) {
      const res = await fetch(`http://${d.httpAddr}/masques.ledger.v1.AccountService/Deposit`, {
        method: "POST",
        headers: { "content-type": ct, authorization: `Bearer ${adminToken}` },
        body: Buffer.alloc(5),
      });
      expect(res.status, ct).toBe(415);
    }
  });
});

describe("start-up refusals", () => {
  const occupy = async (): Promise<{ port: number; close: () => Promise<void> }> => {
    const server = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const addr = server.address();
    if (!addr || typeof addr === "string") throw new Error("no port");
    return { port: addr.port, close: () => new Promise<void>((r) => server.close(() => r())) };
  };

  test("a port clash exits 2 and names the variable to change", async () => {
    const taken = await occupy();
    const dataDir = await mkdtemp(path.join(tmpdir(), "masques-clash-"));
    try {
      for (const variable of ["MASQUES_HTTP_ADDR", "MASQUES_GRPC_ADDR"]) {
        const env = { MASQUES_GRPC_ADDR: "127.0.0.1:0", MASQUES_HTTP_ADDR: "127.0.0.1:0", MASQUES_DATA_DIR: dataDir, STREAMER_ENABLED: "false", [variable]: `127.0.0.1:${taken.port}` };
        const r = await runCli(["serve"], env);
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toContain(`${variable}: 127.0.0.1:${taken.port} is already in use`);
        expect(r.stderr).toContain(`set ${variable} to a free address`);
      }
    } finally {
      await taken.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 120_000);

  test("a second daemon on a data directory in use says which variable gives it its own", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "masques-inuse-"));
    const first = await startDaemon({ dataDir, env: { STREAMER_ENABLED: "false" } });
    try {
      const r = await runCli(["serve"], { MASQUES_GRPC_ADDR: "127.0.0.1:0", MASQUES_HTTP_ADDR: "127.0.0.1:0", MASQUES_DATA_DIR: dataDir, STREAMER_ENABLED: "false" });
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/is in use by pid \d+/);
      expect(r.stderr).toContain("give this daemon its own MASQUES_DATA_DIR");
    } finally {
      await first.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 120_000);

  test("under umask 022 the data and analytics directories are created owner-only", async () => {
    const root = await mkdtemp(path.join(tmpdir(), "masques-perm-"));
    const dataDir = path.join(root, "fresh", "data");
    const p = await startDaemon({ dataDir, env: { STREAMER_ENABLED: "true" } });
    try {
      expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
      expect((await stat(path.join(dataDir, "chdb"))).mode & 0o777).toBe(0o700);
      expect((await stat(path.join(dataDir, "keys"))).mode & 0o777).toBe(0o700);
    } finally {
      await p.stop();
      await rm(root, { recursive: true, force: true });
    }
  }, 120_000);

  test("a world-readable keys directory is refused with the fix", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "masques-keys-"));
    try {
      const keys = path.join(dataDir, "keys");
      await mkdir(keys);
      await chmod(keys, 0o755);
      const r = await runCli(["serve"], { MASQUES_GRPC_ADDR: "127.0.0.1:0", MASQUES_HTTP_ADDR: "127.0.0.1:0", MASQUES_DATA_DIR: dataDir, STREAMER_ENABLED: "false" });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`MASQUES_DATA_DIR: ${keys} is readable by other users (mode 0755)`);
      expect(r.stderr).toContain(`chmod 700 ${keys}`);
      expect(r.stdout).not.toMatch(/"msg":"listening"/);
      // A private key readable by others is refused the same way.
      await chmod(keys, 0o700);
      await writeFile(path.join(keys, "dev-private.jwk.json"), "{}", { mode: 0o644 });
      await chmod(path.join(keys, "dev-private.jwk.json"), 0o644);
      const r2 = await runCli(["serve"], { MASQUES_GRPC_ADDR: "127.0.0.1:0", MASQUES_HTTP_ADDR: "127.0.0.1:0", MASQUES_DATA_DIR: dataDir, STREAMER_ENABLED: "false" });
      expect(r2.code).toBe(2);
      expect(r2.stderr).toContain("dev-private.jwk.json is readable by other users (mode 0644)");
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
