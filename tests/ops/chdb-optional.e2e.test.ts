/**
 * Issue 12: the image for a ClickHouse server leaves out the embedded analytics engine (chDB), so
 * the daemon must start without the `chdb` package when CLICKHOUSE_URL is set. The real daemon
 * runs with chdb made unresolvable (tests/ops/fixtures/no-chdb.mjs); the ClickHouse server it is
 * pointed at refuses connections, so it serves without analytics, and says so.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../clients/gen/masques/ledger/v1/admin_service_pb.js";
import { startDaemon, runCli, type Daemon } from "../support/daemon.js";

const HIDE_CHDB = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures/no-chdb.mjs");

describe("daemon without the chdb package (daemon-server image)", () => {
  let d: Daemon;
  const env = {
    NODE_OPTIONS: `--import=${HIDE_CHDB}`,
    // Nothing listens on the discard port: the server is unreachable, not missing from the config.
    CLICKHOUSE_URL: "http://127.0.0.1:9",
  };

  beforeAll(async () => {
    d = await startDaemon({ env });
  }, 120_000);
  afterAll(async () => {
    await d?.stop();
  });

  it("the chdb hiding works: the embedded sink reports the package missing", async () => {
    const r = await runCli(["stream", "--once"], { ...env, CLICKHOUSE_URL: "", MASQUES_DATA_DIR: `${d.dataDir}-other` });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/npm package chdb\) is not installed/);
  }, 120_000);

  it("starts, serves, and reports the unreachable ClickHouse server instead of crashing", async () => {
    expect(d.logs().some((l) => l.msg === "listening")).toBe(true);
    const failed = d.logs().find((l) => l.msg === "streamer failed to start; serving without analytics");
    expect(failed).toBeDefined();
    expect(JSON.stringify(failed)).not.toMatch(/chdb/i);
    const token = await d.token("admin", "ops");
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    };
    const admin = createClient(AdminService, createGrpcTransport({ baseUrl: `http://${d.grpcAddr}`, interceptors: [auth] }));
    const err = await admin.getReconciliation({}).then(() => null, (e: unknown) => ConnectError.from(e));
    expect(err?.code).toBe(Code.FailedPrecondition);
    expect(err?.rawMessage).toMatch(/streamer, which is not running here/);
  }, 60_000);
});
