/**
 * Authentication at the daemon's edge, on both ports: every RPC except health and reflection
 * needs a valid bearer JWT; failures are UNAUTHENTICATED with a message saying why. Also: keys
 * from MASQUES_JWT_PUBLIC_KEYS (JWKS or PEM), and the `token` CLI.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { exportJWK, exportSPKI, generateKeyPair, type JWK } from "jose";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { AccountService, WalletMode } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { mintToken, type MintOptions } from "../../src/server/auth.js";
import { runCli, startDaemon, type Daemon } from "../support/daemon.js";

const bearer = (value: string): Interceptor => (next) => (req) => {
  req.header.set("authorization", value);
  return next(req);
};

function transports(d: Daemon, authorization?: string): [string, Transport][] {
  const interceptors = authorization ? [bearer(authorization)] : [];
  return [
    ["grpc", createGrpcTransport({ baseUrl: `http://${d.grpcAddr}`, interceptors })],
    ["connect", createConnectTransport({ baseUrl: `http://${d.httpAddr}`, httpVersion: "1.1", interceptors })],
  ];
}

async function openWallet(t: Transport): Promise<unknown> {
  return createClient(AccountService, t).openAgentWallet({ mode: WalletMode.PREPAID });
}

async function foreignKey(alg: "EdDSA" | "ES256"): Promise<{ privateJwk: JWK; publicJwk: JWK; pem: string }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return {
    privateJwk: { ...(await exportJWK(privateKey)), alg, kid: `k-${alg}` },
    publicJwk: { ...(await exportJWK(publicKey)), alg, kid: `k-${alg}` },
    pem: await exportSPKI(publicKey),
  };
}

const base: Omit<MintOptions, "kind" | "id"> = { scopes: ["ledger:read", "ledger:write"], ttlS: 600, issuer: "masques-ledger", audience: "masques-ledger" };

describe("dev keys on loopback", () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await startDaemon();
  });
  afterAll(async () => {
    await d?.stop();
  });

  const cases: [string, (d: Daemon) => Promise<string | undefined>, RegExp][] = [
    ["no token", async () => undefined, /missing bearer token/],
    ["not a bearer header", async () => "Basic dXNlcjpwYXNz", /malformed authorization header/],
    ["garbage token", async () => "Bearer not.a.jwt", /malformed token|invalid token/],
    ["bad signature (another key)", async () => `Bearer ${await mintToken((await foreignKey("EdDSA")).privateJwk, { ...base, kind: "agent", id: "mallory" })}`, /signature verification failed|unknown key/],
    ["expired", async (dd) => `Bearer ${await dd.token("agent", "alice", undefined, -120)}`, /token expired/],
    ["wrong audience", async () => "", /claim `aud` rejected/],
    ["unknown kind claim", async () => "", /invalid token claims/],
  ];

  test.each(cases)("%s -> UNAUTHENTICATED on gRPC and Connect", async (label, make, message) => {
    let header = await make(d);
    if (label === "wrong audience" || label === "unknown kind claim") {
      // Signed with the daemon's own dev key, but with a bad claim.
      const { loadOrCreateDevKeys } = await import("../../src/server/auth.js");
      const keys = await loadOrCreateDevKeys(d.dataDir);
      const opts: MintOptions = label === "wrong audience"
        ? { ...base, kind: "agent", id: "alice", audience: "someone-else" }
        : { ...base, kind: "emperor" as unknown as "agent", id: "alice" };
      header = `Bearer ${await mintToken(keys.privateJwk, opts)}`;
    }
    for (const [name, t] of transports(d, header)) {
      const err = await openWallet(t).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code, name).toBe(Code.Unauthenticated);
      expect((err as ConnectError).rawMessage, name).toMatch(message);
    }
    // The rejection is logged with its reason, never with the token.
    const line = await d.waitForLog((l) => l.msg === "rpc rejected" && typeof l.reason === "string" && message.test(l.reason));
    expect(line.code).toBe("Unauthenticated");
    if (header) expect(JSON.stringify(d.logs())).not.toContain(header.replace(/^\S+\s+/, ""));
  });

  test("`masques-ledger token` mints a token the daemon accepts", async () => {
    const r = await runCli(["token", "--kind", "agent", "--id", "cli-agent", "--ttl-s", "60"], { MASQUES_DATA_DIR: d.dataDir });
    expect(r.code).toBe(0);
    const token = r.stdout.trim();
    expect(token.split(".")).toHaveLength(3);
    for (const [name, t] of transports(d, `Bearer ${token}`)) {
      await expect(openWallet(t), name).resolves.toBeDefined();
    }
  });

  test("`masques-ledger token` rejects bad flags with usage errors", async () => {
    const bad = await runCli(["token", "--kind", "wizard", "--id", "x"], { MASQUES_DATA_DIR: d.dataDir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--kind must be one of agent, author, rail, admin/);
    const rail = await runCli(["token", "--kind", "rail", "--id", "paypal"], { MASQUES_DATA_DIR: d.dataDir });
    expect(rail.code).toBe(2);
    expect(rail.stderr).toMatch(/rail id must be one of/);
    const scope = await runCli(["token", "--kind", "agent", "--id", "a", "--scopes", "ledger:read,root"], { MASQUES_DATA_DIR: d.dataDir });
    expect(scope.code).toBe(2);
    expect(scope.stderr).toMatch(/unknown scope "root"/);
  });
});

describe("keys from MASQUES_JWT_PUBLIC_KEYS", () => {
  test("a JWKS with EdDSA and ES256 keys on a non-loopback address: both verify, dev tokens do not", async () => {
    const ed = await foreignKey("EdDSA");
    const es = await foreignKey("ES256");
    const d = await startDaemon({
      env: {
        MASQUES_GRPC_ADDR: "0.0.0.0:0",
        MASQUES_JWT_PUBLIC_KEYS: JSON.stringify({ keys: [ed.publicJwk, es.publicJwk] }),
      },
    });
    try {
      const grpcAddr = d.grpcAddr.replace("0.0.0.0", "127.0.0.1");
      for (const [i, k] of [ed, es].entries()) {
        const token = await mintToken(k.privateJwk, { ...base, kind: "agent", id: `jwks-${i}` });
        const t = createGrpcTransport({ baseUrl: `http://${grpcAddr}`, interceptors: [bearer(`Bearer ${token}`)] });
        await expect(openWallet(t)).resolves.toBeDefined();
      }
      // The daemon made no dev key pair and trusts none.
      // The daemon trusts no dev key pair (a token from one made now is refused).
      const dev = await d.token("agent", "dev");
      const t = createGrpcTransport({ baseUrl: `http://${grpcAddr}`, interceptors: [bearer(`Bearer ${dev}`)] });
      const err = (await openWallet(t).catch((e: unknown) => e)) as ConnectError;
      expect(err.code).toBe(Code.Unauthenticated);
    } finally {
      await d.stop();
    }
  });

  test("PEM public keys are accepted too, also from MASQUES_JWT_PUBLIC_KEYS_FILE", async () => {
    const es = await foreignKey("ES256");
    const dir = await mkdtemp(path.join(tmpdir(), "pem-"));
    const file = path.join(dir, "jwt.pem");
    await writeFile(file, es.pem);
    const d = await startDaemon({ env: { MASQUES_JWT_PUBLIC_KEYS_FILE: file } });
    try {
      const token = await mintToken(es.privateJwk, { ...base, kind: "author", id: "pem-author" });
      const t = createConnectTransport({ baseUrl: `http://${d.httpAddr}`, httpVersion: "1.1", interceptors: [bearer(`Bearer ${token}`)] });
      const res = await createClient(AccountService, t).openAuthorEarnings({});
      expect(res.account?.accountId).toMatch(/^[0-9a-f]{32}$/);
      expect(d.logs().find((l) => l.msg === "listening")?.auth).toBe(`MASQUES_JWT_PUBLIC_KEYS_FILE (${file})`);
    } finally {
      await d.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
