/**
 * Limits, peer transfers and refunds in the analytics copy (issue 17): after a capped session, a
 * peer transfer and two refunds, the daemon's ClickHouse copy reconciles with its ledger, the
 * refunds net to zero and the peer transfer is there under its kind.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { formatReconcileReport, reconcileFromConfig } from "../../src/streamer/index.js";
import { newSessionId, startHarness, type Harness } from "../sessions/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { SPEND_DAILY_CAP_MICRO: "5000000" } });
}, 120_000);
afterAll(async () => h?.stop());

describe("analytics copy of limits, peer transfers and refunds", () => {
  it("reconciles, with every refund netting to zero", async () => {
    const admin = await h.as("admin", "ops");
    const a = await h.fundedAgent("cdc-a", 20_000_000n);
    await h.fundedAgent("cdc-b", 0n);
    const sid = newSessionId();
    await a.sessions.don({ sessionId: sid, masque: "researcher" });
    await a.sessions.recordUsage({ events: [{ sessionId: sid, seq: 1n, inputTokens: 100_000n, outputTokens: 100_000n, toolCalls: 10n }] });
    const charged = (await a.sessions.doff({ sessionId: sid })).session!.chargedMicro;
    await a.accounts.transferFunds({ toAgentId: "cdc-b", amountMicro: 1_000_000n, memo: "thanks", idempotencyKey: "cdc-1" });
    await admin.accounts.refundSession({ sessionId: sid, amountMicro: 1_000n, reason: "part", idempotencyKey: "x1" });
    await admin.accounts.refundSession({ sessionId: sid, reason: "rest", idempotencyKey: "x2" });
    expect(await h.available("cdc-a")).toBe(20_000_000n - 1_000_000n);
    expect(charged).toBeGreaterThan(1_000n);

    expect(await h.daemon.shutdown()).toBe(0);
    const { report } = await reconcileFromConfig(loadConfig({ MASQUES_DATA_DIR: h.daemon.dataDir }), { sync: false });
    expect(report.drift, formatReconcileReport(report)).toEqual([]);
    expect(report.ok).toBe(true);
    const refunds = report.checks.find((c) => c.name.startsWith("refunds"));
    expect(refunds?.detail).toBe("2 refunds in 1 sessions, 0 not netting; 1 peer transfers");
  }, 120_000);
});
