/**
 * Start-up configuration and lifecycle of the real daemon: configuration errors name the
 * variable, a non-loopback daemon refuses to run without keys, every variable is documented,
 * SIGTERM drains and exits cleanly, and state survives a restart and a crash.
 */
import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AccountService, WalletMode } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { configDocs, loadConfig, ConfigError } from "../../src/config.js";
import { runCli, startDaemon } from "../support/daemon.js";

const bearer = (token: string): Interceptor => (next) => (req) => {
  req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

describe("configuration", () => {
  test("loadConfig names every invalid variable", () => {
    const err = (() => {
      try {
        loadConfig({ MASQUES_GRPC_ADDR: "localhost", LEDGER: "postgres", MASQUES_SHUTDOWN_GRACE_S: "-1" });
      } catch (e) {
        return e;
      }
    })() as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.issues.map((i) => i.variable).sort()).toEqual(["LEDGER", "MASQUES_GRPC_ADDR", "MASQUES_SHUTDOWN_GRACE_S"]);
    expect(err.message).toMatch(/MASQUES_GRPC_ADDR: expected host:port/);
  });

  test("defaults: loopback ports 50051/8080, embedded ledger under ./data", () => {
    const c = loadConfig({});
    expect(c.MASQUES_GRPC_ADDR.text).toBe("127.0.0.1:50051");
    expect(c.MASQUES_HTTP_ADDR.text).toBe("127.0.0.1:8080");
    expect(c.LEDGER).toBe("embedded");
    expect(c.ledgerDataDir).toBe(path.resolve("data/ledger"));
  });

  test("serve exits with code 2 and names the variable on bad configuration", async () => {
    const bad = await runCli(["serve"], { MASQUES_HTTP_ADDR: "127.0.0.1:http" });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/MASQUES_HTTP_ADDR: expected host:port/);
    const tb = await runCli(["serve"], { LEDGER: "tigerbeetle" });
    expect(tb.code).toBe(2);
    expect(tb.stderr).toMatch(/TB_ADDRESSES: required when LEDGER=tigerbeetle/);
  });

  test("serve refuses a non-loopback address without MASQUES_JWT_PUBLIC_KEYS, and private keys in it", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "masques-refuse-"));
    const open = await runCli(["serve"], { MASQUES_GRPC_ADDR: "0.0.0.0:0", MASQUES_HTTP_ADDR: "127.0.0.1:0", MASQUES_DATA_DIR: dataDir });
    expect(open.code).toBe(2);
    expect(open.stderr).toMatch(/MASQUES_JWT_PUBLIC_KEYS: \(or MASQUES_JWT_PUBLIC_KEYS_FILE\) required when listening on a non-loopback address \(0\.0\.0\.0:0\)/);
    expect(open.stdout).not.toMatch(/"msg":"listening"/);
    const priv = await runCli(["serve"], {
      MASQUES_GRPC_ADDR: "127.0.0.1:0",
      MASQUES_HTTP_ADDR: "127.0.0.1:0",
      MASQUES_DATA_DIR: dataDir,
      MASQUES_JWT_PUBLIC_KEYS: JSON.stringify({ keys: [{ kty: "OKP", crv: "Ed25519", x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", d: "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A" }] }),
    });
    expect(priv.code).toBe(2);
    expect(priv.stderr).toMatch(/MASQUES_JWT_PUBLIC_KEYS: contains a PRIVATE key/);
    // Refusing to start never created keys or a ledger.
    expect(await readdir(dataDir)).toEqual([]);
    await rm(dataDir, { recursive: true, force: true });
  });

  test("every variable is documented in `serve --help`, in .env.example and in the README table", async () => {
    const help = await runCli(["serve", "--help"]);
    expect(help.code).toBe(0);
    const example = await readFile(path.resolve(".env.example"), "utf8");
    const readme = await readFile(path.resolve("README.md"), "utf8");
    for (const name of Object.keys(configDocs)) {
      expect(help.stdout, name).toContain(name);
      expect(example, name).toMatch(new RegExp(`^#?\\s*${name}=`, "m"));
      expect(readme, name).toContain(`| \`${name}\` |`);
    }
  });
});

describe("command line", () => {
  test("`masques-ledger --help` lists the commands; an unknown command is a usage error (exit 2)", async () => {
    const help = await runCli(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^\s+serve\s+Run the ledger daemon/m);
    expect(help.stdout).toMatch(/^\s+token\s+Mint a dev bearer token/m);
    const unknown = await runCli(["serv"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "serv"/);
    const extra = await runCli(["serve", "--port", "1"]);
    expect(extra.code).toBe(2);
    expect(extra.stderr).toMatch(/configuration comes from the environment/);
  });
});

describe("lifecycle", () => {
  test("SIGTERM drains and exits 0; wallets survive a graceful restart and a crash; state lives in MASQUES_DATA_DIR", async () => {
    const d = await startDaemon();
    try {
      const token = await d.token("agent", "durable");
      const client = () => createClient(AccountService, createGrpcTransport({ baseUrl: `http://${d.grpcAddr}`, interceptors: [bearer(token)] }));
      const opened = await client().openAgentWallet({ mode: WalletMode.PREPAID });
      const ref = { account: { ref: { case: "agentWallet" as const, value: "durable" } } };

      expect(await d.shutdown()).toBe(0);
      const msgs = d.logs().map((l) => l.msg);
      expect(msgs).toContain("shutting down: draining in-flight calls");
      expect(msgs[msgs.length - 1]).toBe("stopped");
      await d.start();
      expect((await client().getAccount(ref)).account?.accountId).toBe(opened.account?.accountId);

      await d.kill();
      await d.start();
      expect((await client().getAccount(ref)).account?.accountId).toBe(opened.account?.accountId);

      expect((await stat(path.join(d.dataDir, "ledger"))).isDirectory()).toBe(true);
      expect((await stat(path.join(d.dataDir, "keys", "dev-public.jwks.json"))).isFile()).toBe(true);
    } finally {
      await d.stop();
    }
  });
});
