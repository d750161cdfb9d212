/**
 * The real daemon (child process, embedded ledger, dev keys) called over the network on every
 * transport: native gRPC (generated Connect client over HTTP/2, grpc-js health client, buf curl
 * with reflection), Connect JSON over HTTP/1.1 (plain fetch) and HTTP/2 (h2c), gRPC-Web.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { AccountService, WalletMode } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { ErrorInfoSchema } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { startDaemon, type Daemon } from "../support/daemon.js";

const run = promisify(execFile);
const BUF = path.resolve("node_modules/.bin/buf");

let d: Daemon;
let alice: string;

beforeAll(async () => {
  d = await startDaemon();
  alice = await d.token("agent", "alice");
});
afterAll(async () => {
  await d?.stop();
});

const bearer = (token: string): Interceptor => (next) => (req) => {
  req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

type TransportName = "grpc" | "connect-h1-json" | "connect-h2-binary" | "grpc-web";
function transport(name: TransportName, token?: string): Transport {
  const interceptors = token ? [bearer(token)] : [];
  switch (name) {
    case "grpc":
      return createGrpcTransport({ baseUrl: `http://${d.grpcAddr}`, interceptors });
    case "connect-h1-json":
      return createConnectTransport({ baseUrl: `http://${d.httpAddr}`, httpVersion: "1.1", useBinaryFormat: false, interceptors });
    case "connect-h2-binary":
      return createConnectTransport({ baseUrl: `http://${d.httpAddr}`, httpVersion: "2", useBinaryFormat: true, interceptors });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl: `http://${d.httpAddr}`, httpVersion: "1.1", interceptors });
  }
}

async function buf(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run(BUF, args, { timeout: 60_000 });
    return { ...r, code: 0 };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return { stdout: err.stdout, stderr: err.stderr, code: err.code };
  }
}

describe("native gRPC port", () => {
  test("grpc.health.v1 reports SERVING without a token", async () => {
    const Client = grpc.makeClientConstructor(healthService, "grpc.health.v1.Health");
    const client = new Client(d.grpcAddr, grpc.credentials.createInsecure());
    const res = await new Promise<{ status: string }>((resolve, reject) =>
      (client as unknown as { check(req: object, cb: (e: Error | null, r: { status: string }) => void): void }).check(
        { service: "" },
        (e, r) => (e ? reject(e) : resolve(r)),
      ),
    );
    client.close();
    expect(res.status).toBe("SERVING");
  });

  test("reflection v1 and v1alpha list the services; buf curl resolves methods without proto files", async () => {
    for (const proto of ["grpc-v1", "grpc-v1alpha"]) {
      const r = await buf(["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect", "--reflect-protocol", proto, "--list-services", `http://${d.grpcAddr}`]);
      expect(r.stderr).toBe("");
      const services = r.stdout.trim().split("\n");
      expect(services).toContain("masques.ledger.v1.AccountService");
      expect(services).toContain("grpc.health.v1.Health");
    }
    const methods = await buf(["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect", "--list-methods", `http://${d.grpcAddr}`]);
    expect(methods.stdout).toContain("masques.ledger.v1.AccountService/OpenAgentWallet");
    expect(methods.stdout).toContain("grpc.health.v1.Health/Check");
  });

  test("buf curl via reflection calls AccountService with a bearer token", async () => {
    const token = await d.token("agent", "buf-curl-agent");
    const open = await buf([
      "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect",
      "-H", `authorization: Bearer ${token}`,
      "-d", JSON.stringify({ mode: "WALLET_MODE_PREPAID" }),
      `http://${d.grpcAddr}/masques.ledger.v1.AccountService/OpenAgentWallet`,
    ]);
    expect(open.code).toBe(0);
    const body = JSON.parse(open.stdout) as { account: { balance?: { availableMicro?: string } } };
    expect(body.account).toBeDefined();
    const denied = await buf([
      "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect",
      "-d", JSON.stringify({ mode: "WALLET_MODE_PREPAID" }),
      `http://${d.grpcAddr}/masques.ledger.v1.AccountService/OpenAgentWallet`,
    ]);
    expect(denied.code).not.toBe(0);
    expect(denied.stdout + denied.stderr).toMatch(/unauthenticated/);
  });
});

describe.each<TransportName>(["grpc", "connect-h1-json", "connect-h2-binary", "grpc-web"])("same handlers over %s", (name) => {
  test("an agent opens and reads its own wallet", async () => {
    const agent = `agent-${name}`;
    const client = createClient(AccountService, transport(name, await d.token("agent", agent)));
    const opened = await client.openAgentWallet({ mode: WalletMode.PREPAID });
    const got = await client.getAccount({ account: { ref: { case: "agentWallet", value: agent } } });
    expect(got.account?.accountId).toBe(opened.account?.accountId);
    expect(got.account?.balance?.availableMicro).toBe(0n);
  });

  test("structured error details survive the transport", async () => {
    const client = createClient(AccountService, transport(name, await d.token("agent", `no-wallet-${name}`)));
    const err = await client.getAccount({ account: { ref: { case: "agentWallet", value: `no-wallet-${name}` } } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    const ce = err as ConnectError;
    expect(ce.code).toBe(Code.NotFound);
    const [info] = ce.findDetails(ErrorInfoSchema);
    expect(info?.reason).toBe("ACCOUNT_NOT_FOUND");
  });

  test("no token is UNAUTHENTICATED with a clear message", async () => {
    const client = createClient(AccountService, transport(name));
    const err = (await client.openAgentWallet({ mode: WalletMode.PREPAID }).catch((e: unknown) => e)) as ConnectError;
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.rawMessage).toMatch(/missing bearer token/);
  });
});

describe("JSON over HTTP/1.1 with plain fetch", () => {
  test("POST JSON, get JSON; x-request-id is echoed and appears in the daemon's log lines", async () => {
    const res = await fetch(`http://${d.httpAddr}/masques.ledger.v1.AccountService/OpenAgentWallet`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${alice}`, "x-request-id": "req-fetch-1" },
      body: JSON.stringify({ mode: "WALLET_MODE_PREPAID" }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("req-fetch-1");
    const body = (await res.json()) as { account: { accountId: string; owner?: string } };
    expect(body.account.accountId).toMatch(/^[0-9a-f]{32}$/);
    const line = await d.waitForLog((l) => l.request_id === "req-fetch-1" && l.msg === "rpc");
    expect(line.principal).toBe("agent:alice");
    expect(line.code).toBe("OK");
  });

  test("a request without a usable x-request-id gets a generated one", async () => {
    const res = await fetch(`http://${d.httpAddr}/masques.ledger.v1.AccountService/GetAccount`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${alice}`, "x-request-id": "bad id with spaces" },
      body: JSON.stringify({ account: { agentWallet: "alice" } }),
    });
    const id = res.headers.get("x-request-id");
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await d.waitForLog((l) => l.request_id === id && typeof l.rpc === "string");
  });

  test("JSON errors carry the code, message and decoded details", async () => {
    const token = await d.token("agent", "json-nobody");
    const res = await fetch(`http://${d.httpAddr}/masques.ledger.v1.AccountService/GetAccount`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ account: { agentWallet: "json-nobody" } }),
    });
    expect(res.status).toBe(404);
    const body = (await res.json()) as { code: string; message: string; details: { type: string; debug?: { reason?: string } }[] };
    expect(body.code).toBe("not_found");
    const info = body.details.find((x) => x.type === "masques.ledger.v1.ErrorInfo");
    expect(info?.debug?.reason).toBe("ACCOUNT_NOT_FOUND");
  });

  test("GET /healthz answers without a token", async () => {
    const res = await fetch(`http://${d.httpAddr}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "SERVING" });
  });

  test("every RPC log line carries a request id, and no line contains a token", async () => {
    const rpcLines = d.logs().filter((l) => typeof l.rpc === "string");
    expect(rpcLines.length).toBeGreaterThan(3);
    for (const l of rpcLines) expect(typeof l.request_id === "string" && l.request_id.length > 0).toBe(true);
    const all = d.logs().map((l) => JSON.stringify(l)).join("\n");
    expect(all).not.toContain(alice);
    expect(all).not.toContain(alice.split(".")[2]!);
  });
});
