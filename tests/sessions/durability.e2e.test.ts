/**
 * Sessions across time and crashes, against the real daemon: the reaper (idle and maximum
 * length), kill -9 + restart in the middle of sessions, and a hold the ledger voided while the
 * daemon was down (EXPIRED: nothing charged, usage kept).
 */
import path from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CloseReason, SessionStatus, UsageOutcome, type Session } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { loadCatalog } from "../../src/domain/catalog.js";
import { accrue } from "../../src/domain/pricing.js";
import { expectStatus } from "../accounts/errors.js";
import { newSessionId, startHarness, type Clients, type Harness } from "./harness.js";
import { expectAnalyticsReconcile } from "../support/reconcile.js";

const researcher = loadCatalog(path.resolve("masques")).byName.get("researcher")!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(c: Clients, sid: string, pred: (s: Session) => boolean, timeoutMs = 30_000): Promise<Session> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const s = (await c.sessions.getSession({ sessionId: sid })).session!;
    if (pred(s)) return s;
    if (Date.now() > until) throw new Error(`session ${sid} never matched; last status ${SessionStatus[s.status]}`);
    await sleep(100);
  }
}

let idle: Harness; // SESSION_IDLE_S=2
let plain: Harness; // defaults
let short: Harness; // SESSION_MAX_S=2
beforeAll(async () => {
  [idle, plain, short] = await Promise.all([
    startHarness({ env: { SESSION_IDLE_S: "2", SESSION_REAPER_INTERVAL_MS: "100" } }),
    startHarness(),
    startHarness({ env: { SESSION_MAX_S: "2", SESSION_IDLE_S: "600", SESSION_REAPER_INTERVAL_MS: "100" } }),
  ]);
});
afterAll(async () => {
  await Promise.all([idle?.stop(), plain?.stop(), short?.stop()]);
});

describe("reaper", () => {
  it("finalizes a silent session at its accrued price, billing time only up to its last sign of life", async () => {
    const c = await idle.fundedAgent("vanishing", 2_000_000n);
    const sid = newSessionId();
    await c.sessions.don({ sessionId: sid, masque: "researcher" });
    await c.sessions.recordUsage({ events: [{ sessionId: sid, seq: 1n, inputTokens: 10_000n, outputTokens: 5_000n, toolCalls: 4n }] });
    const s = await waitFor(c, sid, (x) => x.status !== SessionStatus.OPEN);
    expect(s).toMatchObject({ status: SessionStatus.REAPED, closeReason: CloseReason.IDLE });
    // researcher has no per-minute price: 10k x 0.0002/1k + 5k x 0.0008/1k + 4 x 0.0005 = 0.008 USD
    expect(s.priceMicro).toBe(8_000n);
    expect(s.chargedMicro).toBe(8_000n);
    expect(s.billedDurationMs).toBeLessThan(2_000n); // don -> last usage, not the idle wait
    expect(await idle.available("vanishing")).toBe(2_000_000n - 8_000n);
    // The agent's late Doff returns the reaped result; nothing moves twice.
    const d = (await c.sessions.doff({ sessionId: sid })).session!;
    expect(d).toEqual(s);
  });

  it("heartbeats keep a session alive past the idle time", async () => {
    const c = await idle.fundedAgent("alive", 2_000_000n);
    const sid = newSessionId();
    await c.sessions.don({ sessionId: sid, masque: "researcher" });
    for (let i = 0; i < 16; i++) {
      const hb = await c.sessions.heartbeat({ sessionId: sid });
      expect(hb.status).toBe(SessionStatus.OPEN);
      await sleep(250);
    }
    expect((await c.sessions.getSession({ sessionId: sid })).session!.status).toBe(SessionStatus.OPEN);
    const d = (await c.sessions.doff({ sessionId: sid })).session!;
    expect(d).toMatchObject({ status: SessionStatus.DOFFED, closeReason: CloseReason.DOFF });
  });

  it("finalizes a session before its hold's timeout (maximum length)", async () => {
    const c = await short.fundedAgent("marathon", 2_000_000n);
    const sid = newSessionId();
    await c.sessions.don({ sessionId: sid, masque: "pair-programmer" });
    const s = await waitFor(c, sid, (x) => x.status !== SessionStatus.OPEN);
    expect(s).toMatchObject({ status: SessionStatus.REAPED, closeReason: CloseReason.MAX_LENGTH });
    expect(s.billedDurationMs).toBeLessThanOrEqual(2_000n);
    expect(s.chargedMicro).toBeGreaterThanOrEqual(50_000n); // the flat fee
    expect(await short.available("marathon")).toBe(2_000_000n - s.chargedMicro);
  });
});

describe("crashes", () => {
  it("kill -9 in the middle of sessions: usage and holds survive, sessions continue and doff correctly", async () => {
    const c = await plain.fundedAgent("crashy", 5_000_000n);
    const a = newSessionId();
    const b = newSessionId();
    await c.sessions.don({ sessionId: a, masque: "researcher" });
    await c.sessions.don({ sessionId: b, masque: "researcher" });
    await c.sessions.recordUsage({
      events: [
        { sessionId: a, seq: 1n, inputTokens: 1_000n, outputTokens: 1_000n, toolCalls: 1n },
        { sessionId: a, seq: 2n, inputTokens: 2_000n, outputTokens: 0n, toolCalls: 0n },
        { sessionId: b, seq: 1n, inputTokens: 0n, outputTokens: 3_000n, toolCalls: 0n },
      ],
    });
    await plain.daemon.kill();
    await plain.daemon.start();
    const c2 = await plain.as("agent", "crashy");
    expect(await plain.available("crashy")).toBe(4_000_000n);
    // The client retries its last batch (it never saw a reply) and continues.
    const r = await c2.sessions.recordUsage({
      events: [
        { sessionId: a, seq: 2n, inputTokens: 2_000n, outputTokens: 0n, toolCalls: 0n },
        { sessionId: a, seq: 3n, inputTokens: 0n, outputTokens: 0n, toolCalls: 2n },
      ],
    });
    expect(r.results.map((x) => x.outcome)).toEqual([UsageOutcome.DUPLICATE, UsageOutcome.APPLIED]);
    const sa = (await c2.sessions.doff({ sessionId: a })).session!;
    expect(sa.usage).toMatchObject({ inputTokens: 3_000n, outputTokens: 1_000n, toolCalls: 3n });
    const usage = { input_tokens: 3_000n, output_tokens: 1_000n, tool_calls: 3n };
    expect(sa.chargedMicro).toBe(accrue(researcher.pricing, usage, sa.billedDurationMs).price_micro);
    const sb = (await c2.sessions.doff({ sessionId: b })).session!;
    expect(sb.chargedMicro).toBe(2_400n);
    expect(await plain.available("crashy")).toBe(5_000_000n - sa.chargedMicro - sb.chargedMicro);
    // Crash after the doff: the settled sessions read back identically.
    await plain.daemon.kill();
    await plain.daemon.start();
    const c3 = await plain.as("agent", "crashy");
    expect((await c3.sessions.getSession({ sessionId: a })).session).toEqual(sa);
    expect((await c3.sessions.doff({ sessionId: b })).session).toEqual(sb);
  });

  it("daemon down past the hold's timeout: EXPIRED, the agent has its money back, usage is kept, nothing charged", async () => {
    const c = await short.fundedAgent("stranded", 3_000_000n);
    const sid = newSessionId();
    await c.sessions.don({ sessionId: sid, masque: "researcher" });
    await c.sessions.recordUsage({ events: [{ sessionId: sid, seq: 1n, inputTokens: 0n, outputTokens: 10_000n, toolCalls: 0n }] });
    await short.daemon.kill();
    await sleep(2_500);
    await short.daemon.start();
    const c2 = await short.as("agent", "stranded");
    const s = (await c2.sessions.getSession({ sessionId: sid })).session!;
    expect(s).toMatchObject({
      status: SessionStatus.EXPIRED,
      chargedMicro: 0n,
      postedMicro: 0n,
      authorShareMicro: 0n,
      refundMicro: 500_000n,
      priceMicro: 8_000n,
      unbilledMicro: 8_000n,
      usage: { outputTokens: 10_000n },
    });
    expect(await short.available("stranded")).toBe(3_000_000n);
    await expectStatus(c2.sessions.doff({ sessionId: sid }), Code.FailedPrecondition, "SESSION_EXPIRED");
    await expectStatus(c2.sessions.cancel({ sessionId: sid }), Code.FailedPrecondition, "SESSION_EXPIRED");
    const late = await c2.sessions.recordUsage({ events: [{ sessionId: sid, seq: 2n, inputTokens: 1n, outputTokens: 0n, toolCalls: 0n }] });
    expect(late.results[0]!.reason).toBe("SESSION_NOT_OPEN");
  });
});

describe("analytics copy (issue 5: reconcile after every end-to-end scenario)", () => {
  it("the daemon's ClickHouse copy reconciles with its ledger after every scenario above", async () => {
    // one at a time: chDB hosts one directory per process
    for (const d of [idle.daemon, plain.daemon, short.daemon]) await expectAnalyticsReconcile(d);
  });
});
