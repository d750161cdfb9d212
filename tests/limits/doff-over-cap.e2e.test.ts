/**
 * A Doff is never refused for a spending limit (ADR 0110): in soft mode the overrun is charged as
 * debt only up to what the daily and per-session caps allow; the rest is unbilled.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startClockDaemon, type ClockDaemon } from "../support/clock-daemon.js";
import { newSessionId } from "../sessions/harness.js";

let d: ClockDaemon;
beforeAll(async () => {
  d = await startClockDaemon({ BILLING_MODE: "soft" });
}, 120_000);
afterAll(async () => d?.stop());

describe("Doff past a cap", () => {
  it("charges up to the caps, records the rest as unbilled, and counts exactly the charge on the day", async () => {
    const admin = await d.as("admin", "ops");
    const c = await d.fundedAgent("overrunner", 10_000_000n);
    await admin.accounts.setSpendingLimits({ agentId: "overrunner", dailyCapMicro: 700_000n, sessionCapMicro: 600_000n });
    const sid = newSessionId();
    const don = (await c.sessions.don({ sessionId: sid, masque: "researcher" })).session!;
    expect(don.holdMicro).toBe(500_000n); // reserve 0.5 <= session cap 0.6
    // Usage worth more than the masque's 1 USD per-session price cap.
    await c.sessions.recordUsage({ events: [{ sessionId: sid, seq: 1n, inputTokens: 0n, outputTokens: 1_000_000n, toolCalls: 1_000n }] });
    const s = (await c.sessions.doff({ sessionId: sid })).session!;
    expect(s.priceMicro).toBe(1_000_000n);
    expect(s.postedMicro).toBe(500_000n);
    // Debt room: daily 0.7 - 0.5 = 0.2, per session 0.6 - 0.5 = 0.1 -> 0.1.
    expect(s.debtMicro).toBe(100_000n);
    expect(s.chargedMicro).toBe(600_000n);
    expect(s.unbilledMicro).toBe(400_000n);
    expect(s.authorShareMicro + s.platformFeeMicro).toBe(600_000n);
    const l = await c.accounts.getSpendingLimits({});
    expect(l.daily!.usedMicro).toBe(600_000n);
    expect(l.daily!.remainingMicro).toBe(100_000n);
  });
});
