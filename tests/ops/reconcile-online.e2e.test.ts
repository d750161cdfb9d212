/**
 * Issue 12, "Operating the daemon": reconciliation without downtime. While the daemon holds the
 * embedded stores, `masques-ledger reconcile` asks it to reconcile (AdminService) instead of
 * refusing; the daemon also reconciles on its own schedule and exposes the last result; only
 * admins may do either; `stream` refused by the lock says what to do instead.
 */
import { createClient, ConnectError, Code, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService, ReconciliationTrigger } from "../../clients/gen/masques/ledger/v1/admin_service_pb.js";
import { newSessionId, startHarness, type Harness } from "../sessions/harness.js";
import { runCli } from "../support/daemon.js";

function admin(h: Harness, token: string) {
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  return createClient(AdminService, createGrpcTransport({ baseUrl: `http://${h.daemon.grpcAddr}`, interceptors: [auth] }));
}

describe("reconciliation while the daemon runs", () => {
  let h: Harness;

  beforeAll(async () => {
    // A 1 s schedule, so a scheduled run happens during the test (awaited as a log line).
    h = await startHarness({ env: { RECONCILE_INTERVAL_S: "1", STREAM_POLL_MS: "50" } });
    const c = await h.fundedAgent("ops-agent", 10_000_000n);
    const s = newSessionId();
    await c.sessions.don({ sessionId: s, masque: "researcher" });
    await c.sessions.recordUsage({ events: [{ sessionId: s, seq: 1n, inputTokens: 1_000n, outputTokens: 500n, toolCalls: 2n }] });
    await c.sessions.doff({ sessionId: s });
    const open = newSessionId();
    await c.sessions.don({ sessionId: open, masque: "researcher" });
  }, 120_000);
  afterAll(async () => {
    await h?.stop();
  });

  it("`masques-ledger reconcile` asks the running daemon instead of refusing with 'in use'", async () => {
    const env = { MASQUES_DATA_DIR: h.daemon.dataDir, MASQUES_GRPC_ADDR: h.daemon.grpcAddr };
    const r = await runCli(["reconcile"], env, 120_000);
    expect(r.stderr).not.toMatch(/masques-ledger reconcile: data directory .* is in use/);
    expect(r.stdout, r.stderr).toMatch(/reconcile \(by the daemon, .*\): OK, no drift/);
    expect(r.stdout).toMatch(/\[ok\] transfers copied: \d+ in the ledger up to the cursor/);
    expect(r.stdout).toMatch(/\[ok\] sessions \(author \+ platform \+ refund = hold \+ debt\): 2 sessions/);
    expect(r.code).toBe(0);

    const json = await runCli(["reconcile", "--json"], env, 120_000);
    expect(json.code, json.stderr).toBe(0);
    const parsed = JSON.parse(json.stdout) as { ok: boolean; trigger: string; checks: { name: string; ok: boolean }[] };
    expect(parsed).toMatchObject({ ok: true, trigger: "RECONCILIATION_TRIGGER_REQUEST" });
    expect(parsed.checks.map((c) => c.name)).toEqual([
      "transfers copied",
      "transfer counts and sums per account",
      "balances",
      "conservation (debits = credits per ledger)",
      "sessions (author + platform + refund = hold + debt)",
      "usage after settlement (every usage event is in its session's price)",
      "refunds (every refund nets to zero: counted = refunded to the wallet; author debt = author part)",
      "exchange position (open, per ledger)",
    ]);
  }, 240_000);

  it("runs on demand for admins and exposes the last result", async () => {
    const a = admin(h, await h.daemon.token("admin", "ops"));
    const { reconciliation: run } = await a.runReconciliation({});
    expect(run).toMatchObject({ ok: true, error: "", trigger: ReconciliationTrigger.REQUEST, findings: [] });
    expect(run!.ledgerTransfers).toBe(run!.clickhouseTransfers);
    expect(run!.ledgerTransfers).toBeGreaterThan(0n);
    expect(run!.checks.every((c) => c.ok)).toBe(true);
    const last = await a.getReconciliation({});
    // the last result is this run or a later scheduled one
    expect(last.reconciliation?.ok).toBe(true);
    expect(last.reconciliation!.finishedAt!.seconds).toBeGreaterThanOrEqual(run!.finishedAt!.seconds);
    expect(last.nextRunAt).toBeDefined();
  }, 120_000);

  it("runs on its schedule (RECONCILE_INTERVAL_S)", async () => {
    const line = await h.daemon.waitForLog((l) => l.msg === "reconciliation: no drift" && l.trigger === "schedule", 90_000);
    expect(line).toMatchObject({ ok: true, findings: 0 });
  }, 120_000);

  it("refuses non-admins before doing anything", async () => {
    for (const [kind, id] of [["agent", "ops-agent"], ["author", "a"], ["rail", "base"]] as const) {
      const a = admin(h, await h.daemon.token(kind, id));
      const err = await a.runReconciliation({}).then(() => null, (e: unknown) => ConnectError.from(e));
      expect(err?.code, kind).toBe(Code.PermissionDenied);
      expect(err?.rawMessage).toMatch(/admin only/);
      const err2 = await a.getReconciliation({}).then(() => null, (e: unknown) => ConnectError.from(e));
      expect(err2?.code, kind).toBe(Code.PermissionDenied);
    }
  }, 60_000);

  it("`stream` refused by the daemon's lock says how to proceed", async () => {
    const r = await runCli(["stream", "--once"], { MASQUES_DATA_DIR: h.daemon.dataDir }, 120_000);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/in use by pid \d+/);
    expect(r.stderr).toMatch(/already runs this streamer/);
    expect(r.stderr).toMatch(/masques-ledger reconcile/);
    expect(r.stderr).toMatch(/STREAMER_ENABLED=false/);
  }, 120_000);
});
