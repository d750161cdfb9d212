/**
 * Issue 18, "readiness turns not-ready when ClickHouse is unreachable and ready again after"
 * (ADR 0119). The daemon starts with its embedded chDB unusable for real: its data directory
 * cannot be opened because a plain file stands where the directory must be. Payments are
 * ready at once (HTTP /readyz and gRPC health ""), analytics is NOT_SERVING and says why, and the
 * daemon keeps retrying (logged, counted in /metrics). Money moves during the outage. Then the
 * test removes the file: the daemon's next attempt opens chDB, `masques.analytics` and
 * `checks.analytics` turn SERVING / ok, the analytics API answers again, and every ledger event
 * made during the outage is in ClickHouse exactly once (reconciled against the ledger). Then
 * ClickHouse fails mid-run for real (a table's storage directory replaced by a plain file): the
 * copy fails, analytics turns NOT_SERVING while payments stay ready, and once the directory is
 * back the copy resumes from its cursor and analytics is SERVING again.
 */
import { mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { AnalyticsService } from "../../clients/gen/masques/ledger/v1/analytics_service_pb.js";
import { SessionStatus } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { ChdbSink } from "../../src/streamer/chdb-sink.js";
import { formatReconcileReport, reconcileFromConfig } from "../../src/streamer/index.js";
import { newSessionId, startHarness, type Harness } from "../sessions/harness.js";

async function grpcHealth(addr: string, service: string): Promise<string> {
  const Ctor = grpc.makeClientConstructor(healthService, "grpc.health.v1.Health");
  const client = new Ctor(addr, grpc.credentials.createInsecure());
  try {
    return await new Promise<string>((resolve, reject) =>
      (client as unknown as { check(req: object, cb: (e: Error | null, r: { status: string }) => void): void }).check({ service }, (e, r) =>
        e ? reject(e) : resolve(r.status),
      ),
    );
  } finally {
    client.close();
  }
}

interface ReadyBody {
  ready: boolean;
  status: string;
  checks: { serving: boolean; ledger: string; controlplane: string; analytics: string };
}

async function readyz(h: Harness): Promise<{ status: number; body: ReadyBody }> {
  const r = await fetch(`http://${h.daemon.httpAddr}/readyz`);
  return { status: r.status, body: (await r.json()) as ReadyBody };
}

/** Poll `read` until `ok` holds (generous bound for a loaded machine; no fixed sleeps). */
async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, bound_ms = 90_000): Promise<T> {
  const deadline = Date.now() + bound_ms;
  let last: T | undefined;
  let lastErr: unknown;
  for (;;) {
    try {
      last = await read();
      if (ok(last)) return last;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: not reached within ${bound_ms} ms (last: ${JSON.stringify(last, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))}, error: ${String(lastErr)})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function startFailures(metricsText: string): number {
  const m = /masques_streamer_failures(?:_total)?\{[^}]*phase="start"[^}]*\} (\d+)/.exec(metricsText);
  return m ? Number(m[1]) : 0;
}

let h: Harness;
let chdbRoot: string;
let chdbPath: string;
/** The plain file standing where chDB needs its directory. */
let blocker: string;

beforeAll(async () => {
  chdbRoot = await mkdtemp(path.join(tmpdir(), "masques-chdb-outage-"));
  chdbPath = path.join(chdbRoot, "chdb");
  // A plain file where chDB's data directory must be: the analytics store cannot be opened.
  blocker = chdbPath;
  await writeFile(blocker, "not a directory: chDB cannot open this data path\n");
  h = await startHarness({
    env: { CHDB_PATH: chdbPath, STREAMER_RETRY_MIN_MS: "100", STREAMER_RETRY_MAX_MS: "800", STREAM_POLL_MS: "50", RECONCILE_INTERVAL_S: "0" },
  });
}, 120_000);

afterAll(async () => {
  await h?.stop();
  await rm(chdbRoot, { recursive: true, force: true });
});

describe("analytics recovery: ClickHouse unavailable at start, then back", () => {
  let analytics: (kind: "admin" | "agent", id: string) => Promise<Client<typeof AnalyticsService>>;
  const agent = "outage-agent";
  const sessionIds = [newSessionId(), newSessionId()];
  let spent = 0n;

  beforeAll(() => {
    analytics = async (kind, id) => {
      const token = await h.daemon.token(kind, id);
      return createClient(
        AnalyticsService,
        createConnectTransport({
          baseUrl: `http://${h.daemon.httpAddr}`,
          httpVersion: "1.1",
          interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))],
        }),
      );
    };
  });

  test("chDB cannot open: payments are ready, analytics is NOT_SERVING with the reason, and the start is retried", async () => {
    const { status, body } = await readyz(h);
    expect(status).toBe(200);
    expect(body).toMatchObject({ ready: true, status: "SERVING", checks: { serving: true, ledger: "ok", controlplane: "ok" } });
    expect(body.checks.analytics).toMatch(/^unreachable: the streamer could not start \(\d+ attempt\(s\), retrying with backoff\): .*chDB at .* failed to open/);
    expect(await grpcHealth(h.daemon.grpcAddr, "")).toBe("SERVING");
    expect(await grpcHealth(h.daemon.grpcAddr, "masques.analytics")).toBe("NOT_SERVING");
    await h.daemon.waitForLog((l) => l.msg === "streamer failed to start; serving without analytics");
    // Retried with backoff, each failure counted.
    await until(
      "a second failed start attempt in /metrics",
      async () => startFailures(await (await fetch(`http://${h.daemon.httpAddr}/metrics`)).text()),
      (n) => n >= 2,
    );
    await h.daemon.waitForLog((l) => l.msg === "streamer still cannot start; retrying");
    // The analytics API says the copy is not running (rather than failing obscurely).
    const ops = await analytics("admin", "ops");
    const err = await ops.getStreamerStatus({}).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.FailedPrecondition);
    expect((err as ConnectError).rawMessage).toMatch(/streamer, which is not running here/);
  }, 120_000);

  test("money moves during the outage", async () => {
    const c = await h.fundedAgent(agent, 10_000_000n);
    for (const [i, sessionId] of sessionIds.entries()) {
      expect((await c.sessions.don({ sessionId, masque: "researcher" })).session!.status).toBe(SessionStatus.OPEN);
      await c.sessions.recordUsage({ events: [{ sessionId, seq: 1n, inputTokens: 1_500n * BigInt(i + 1), outputTokens: 400n, toolCalls: 2n }] });
      expect((await c.sessions.doff({ sessionId })).session!.status).toBe(SessionStatus.DOFFED);
    }
    spent = 10_000_000n - (await h.available(agent));
    expect(spent).toBeGreaterThan(0n);
    // Still down: nothing changed for analytics.
    expect(await grpcHealth(h.daemon.grpcAddr, "masques.analytics")).toBe("NOT_SERVING");
  }, 120_000);

  test("chDB can open again: analytics turns SERVING and ok, and the outage's sessions arrive from the cursor", async () => {
    await rm(blocker);
    await until("masques.analytics SERVING", () => grpcHealth(h.daemon.grpcAddr, "masques.analytics"), (s) => s === "SERVING");
    const { status, body } = await until("/readyz analytics ok", () => readyz(h), (r) => r.body.checks.analytics === "ok");
    expect(status).toBe(200);
    expect(body.ready).toBe(true);
    expect(await grpcHealth(h.daemon.grpcAddr, "")).toBe("SERVING");
    await h.daemon.waitForLog((l) => l.msg === "streamer started after retrying; copying from the stored cursor");
    // The running daemon's analytics API now shows what the agent spent during the outage.
    const me = await analytics("agent", agent);
    const spend = await until("the outage's sessions in ClickHouse", () => me.getAgentSpend({}), (r) => r.sessions.length === sessionIds.length);
    expect(spend.sessions.map((s) => s.sessionId).sort()).toEqual([...sessionIds].sort());
    expect(spend.totalPriceMicro).toBe(spent);
    const ops = await analytics("admin", "ops");
    const st = await ops.getStreamerStatus({});
    expect(st.sink).toContain(chdbPath);
  }, 180_000);

  test("ClickHouse fails mid-run (the transfers table's storage is replaced by a file): payments stay ready, analytics turns NOT_SERVING, then recovers and copies what it missed", async () => {
    // The table's directory, from chDB's own metadata (Atomic database: store/<3>/<uuid>/).
    const meta = await readFile(path.join(chdbPath, "metadata", "masques", "transfers.sql"), "utf8");
    const uuid = /UUID '([0-9a-f-]{36})'/.exec(meta)?.[1];
    expect(uuid).toBeDefined();
    const tableDir = path.join(chdbPath, "store", uuid!.slice(0, 3), uuid!);
    await rename(tableDir, `${tableDir}.away`);
    await writeFile(tableDir, "not a directory: chDB cannot write parts here\n");
    try {
      const c = await h.as("agent", agent);
      const sessionId = newSessionId();
      await c.sessions.don({ sessionId, masque: "researcher" });
      await c.sessions.doff({ sessionId });
      sessionIds.push(sessionId);
      spent = 10_000_000n - (await h.available(agent));
      const down = await until("/readyz analytics failing", () => readyz(h), (r) => r.body.checks.analytics.startsWith("failing:"));
      expect(down.status).toBe(200);
      expect(down.body).toMatchObject({ ready: true, checks: { ledger: "ok", controlplane: "ok" } });
      expect(down.body.checks.analytics).toMatch(/^failing: the copy to ClickHouse failed \d+ time\(s\) in a row, retrying: .*Not a directory/);
      expect(await grpcHealth(h.daemon.grpcAddr, "masques.analytics")).toBe("NOT_SERVING");
      expect(await grpcHealth(h.daemon.grpcAddr, "")).toBe("SERVING");
      const text = await (await fetch(`http://${h.daemon.httpAddr}/metrics`)).text();
      expect(text).toMatch(/masques_streamer_failures(?:_total)?\{[^}]*phase="sync"[^}]*\} [1-9]/);
    } finally {
      await rm(tableDir, { force: true });
      await rename(`${tableDir}.away`, tableDir);
    }
    await until("/readyz analytics ok again", () => readyz(h), (r) => r.body.checks.analytics === "ok");
    expect(await grpcHealth(h.daemon.grpcAddr, "masques.analytics")).toBe("SERVING");
    const me = await analytics("agent", agent);
    const spend = await until("the mid-run session in ClickHouse", () => me.getAgentSpend({}), (r) => r.sessions.length === sessionIds.length);
    expect(spend.sessions.map((s) => s.sessionId).sort()).toEqual([...sessionIds].sort());
    expect(spend.totalPriceMicro).toBe(spent);
  }, 180_000);

  test("every ledger event is in ClickHouse exactly once (read after the daemon stops)", async () => {
    expect(await h.daemon.shutdown()).toBe(0);
    // The ledger against its copy: counts and sums per account, balances, every session's split.
    const { report } = await reconcileFromConfig(loadConfig({ MASQUES_DATA_DIR: h.daemon.dataDir, CHDB_PATH: chdbPath }), { sync: false });
    expect(report.drift, formatReconcileReport(report)).toEqual([]);
    expect(report).toMatchObject({ ok: true, ledger_events_after_cursor: 0 });
    // Nothing doubled: not even a physical duplicate row before merges (no pass was re-copied).
    const sink = await ChdbSink.open({ path: chdbPath, database: "masques" });
    try {
      const [t] = await sink.query("SELECT count() AS n, uniqExact(id) AS ids FROM masques.transfers");
      expect(Number(t!.n)).toBeGreaterThan(0);
      expect(t!.n).toBe(t!.ids);
      // The only sessions this daemon ever had are the outages' three.
      const sessions = await sink.query("SELECT count() AS n, countIf(status = 'closed') AS closed FROM masques.sessions FINAL");
      expect(sessions[0]).toEqual({ n: String(sessionIds.length), closed: String(sessionIds.length) });
    } finally {
      await sink.close();
    }
    await h.daemon.start();
  }, 180_000);
});
