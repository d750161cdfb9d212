/**
 * Sessions across time and crashes, against the real daemon: the reaper (idle and maximum
 * length), kill -9 + restart in the middle of sessions, heartbeats that survive a kill, and a hold
 * the ledger voided while the daemon was down (EXPIRED: nothing charged, usage kept).
 *
 * Nothing here depends on how fast the machine is: the reaper tests run the daemon in process
 * with an injected clock and move it (tests/support/clock-daemon.ts); everything else awaits a
 * condition (a status, a passed deadline), never a fixed sleep.
 */
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CloseReason, SessionStatus, UsageOutcome, type Session } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { expectStatus } from "../accounts/errors.js";
import { startClockDaemon, type ClockDaemon } from "../support/clock-daemon.js";
import { newSessionId, startHarness, type Clients, type Harness } from "./harness.js";
import { expectAnalyticsReconcile } from "../support/reconcile.js";

const tick = () => new Promise((r) => setTimeout(r, 20));

/** Poll a session until `pred` holds (bounded generously: a loaded machine only makes it slower). */
async function waitFor(c: Clients, sid: string, pred: (s: Session) => boolean, timeoutMs = 60_000): Promise<Session> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const s = (await c.sessions.getSession({ sessionId: sid })).session!;
    if (pred(s)) return s;
    if (Date.now() > until) throw new Error(`session ${sid} never matched; last status ${SessionStatus[s.status]}`);
    await tick();
  }
}

let idle: ClockDaemon; // SESSION_IDLE_S=600, the clock moved by the test
let long: ClockDaemon; // SESSION_MAX_S=600 (reap margin 60 s), the clock moved by the test
let plain: Harness; // child process; SESSION_IDLE_S=1 so every heartbeat is written; no reaper pass during the test
let stranded: ClockDaemon; // SESSION_MAX_S=600, stopped while the clock moves past a hold's timeout
beforeAll(async () => {
  const noReaper = { SESSION_REAPER_INTERVAL_MS: "3600000" };
  [idle, long, plain, stranded] = await Promise.all([
    startClockDaemon({ SESSION_IDLE_S: "600", SESSION_REAPER_INTERVAL_MS: "50" }),
    startClockDaemon({ SESSION_MAX_S: "600", SESSION_IDLE_S: "3600", SESSION_REAPER_INTERVAL_MS: "50" }),
    startHarness({ env: { SESSION_IDLE_S: "1", ...noReaper } }),
    startClockDaemon({ SESSION_MAX_S: "600", SESSION_IDLE_S: "3600", SESSION_REAPER_INTERVAL_MS: "50" }),
  ]);
}, 180_000);
afterAll(async () => {
  await Promise.all([idle?.stop(), long?.stop(), plain?.stop(), stranded?.stop()]);
});

describe("reaper", () => {
  it("finalizes a silent session at its accrued price, billing time only up to its last sign of life", async () => {
    const c = await idle.fundedAgent("vanishing", 2_000_000n);
    const sid = newSessionId();
    await c.sessions.don({ sessionId: sid, masque: "researcher" });
    await c.sessions.recordUsage({ events: [{ sessionId: sid, seq: 1n, inputTokens: 10_000n, outputTokens: 5_000n, toolCalls: 4n }] });
    expect((await c.sessions.getSession({ sessionId: sid })).session!.status).toBe(SessionStatus.OPEN);
    idle.advance(601); // past SESSION_IDLE_S since the last usage
    const s = await waitFor(c, sid, (x) => x.status !== SessionStatus.OPEN);
    expect(s).toMatchObject({ status: SessionStatus.REAPED, closeReason: CloseReason.IDLE });
    // researcher has no per-minute price: 10k x 0.0002/1k + 5k x 0.0008/1k + 4 x 0.0005
    // = 2,000 + 4,000 + 2,000 = 8,000 micro-USD
    expect(s.priceMicro).toBe(8_000n);
    expect(s.chargedMicro).toBe(8_000n);
    expect(s.billedDurationMs).toBeLessThan(600_000n); // don -> last usage, not the 601 s idle wait
    expect(await idle.available("vanishing")).toBe(2_000_000n - 8_000n);
    // The agent's late Doff returns the reaped result; nothing moves twice.
    const d = (await c.sessions.doff({ sessionId: sid })).session!;
    expect(d).toEqual(s);
  });

  it("heartbeats keep a session alive past the idle time", async () => {
    const c = await idle.fundedAgent("alive", 5_000_000n);
    const sid = newSessionId();
    await c.sessions.don({ sessionId: sid, masque: "researcher" });
    // Each round: 800 s pass with a heartbeat halfway. A control session donned at the start of
    // the round (no heartbeat) must be reaped, which proves the reaper looked after the clock
    // moved; the heartbeated one, idle 400 s < 600 s, must not.
    for (let round = 0; round < 3; round++) {
      expect((await c.sessions.heartbeat({ sessionId: sid })).status).toBe(SessionStatus.OPEN);
      const control = newSessionId();
      await c.sessions.don({ sessionId: control, masque: "researcher" });
      idle.advance(400);
      expect((await c.sessions.heartbeat({ sessionId: sid })).status).toBe(SessionStatus.OPEN);
      idle.advance(400);
      const reaped = await waitFor(c, control, (x) => x.status !== SessionStatus.OPEN);
      expect(reaped).toMatchObject({ status: SessionStatus.REAPED, closeReason: CloseReason.IDLE });
      expect((await c.sessions.getSession({ sessionId: sid })).session!.status, `round ${round}`).toBe(SessionStatus.OPEN);
    }
    const d = (await c.sessions.doff({ sessionId: sid })).session!;
    expect(d).toMatchObject({ status: SessionStatus.DOFFED, closeReason: CloseReason.DOFF });
  });

  it("finalizes a session before its hold's timeout (maximum length), not before its margin", async () => {
    const c = await long.fundedAgent("marathon", 2_000_000n);
    const sid = newSessionId();
    await c.sessions.don({ sessionId: sid, masque: "pair-programmer" });
    // 500 s in: outside the 60 s margin (min(max(3 x 50 ms, 60 s), 600 s / 10)). A control
    // session donned now and pushed into its own margin later proves a reaper pass ran.
    long.advance(500);
    const control = newSessionId();
    await c.sessions.don({ sessionId: control, masque: "pair-programmer" });
    long.advance(70); // sid: 570 s in, inside its margin; control: 70 s in
    const s = await waitFor(c, sid, (x) => x.status !== SessionStatus.OPEN);
    expect((await c.sessions.getSession({ sessionId: control })).session!.status).toBe(SessionStatus.OPEN);
    expect(s).toMatchObject({ status: SessionStatus.REAPED, closeReason: CloseReason.MAX_LENGTH });
    // billed to the reaper's now: at least the 570 s the clock moved, never past SESSION_MAX_S
    expect(s.billedDurationMs).toBeGreaterThanOrEqual(570_000n);
    expect(s.billedDurationMs).toBeLessThanOrEqual(600_000n);
    // pair-programmer: flat 0.05 USD + 0.01 USD/min = 50,000 + billed ms x 10,000 / 60,000, floored once
    expect(s.chargedMicro).toBe(50_000n + s.billedDurationMs / 6n); // 145,000..150,000 micro-USD
    expect(await long.available("marathon")).toBe(2_000_000n - s.chargedMicro - 1_000_000n); // control still holds 1 USD
    await c.sessions.cancel({ sessionId: control });
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
    // researcher, no per-minute price: 3k x 0.0002/1k + 1k x 0.0008/1k + 3 x 0.0005
    // = 600 + 800 + 1,500 = 2,900 micro-USD
    expect(sa.chargedMicro).toBe(2_900n);
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

  it("heartbeats are durable: after kill -9 the session's last sign of life is the last written heartbeat (ADR 0033)", async () => {
    // SESSION_IDLE_S=1 here: a heartbeat is written to the ledger once 100 ms passed since the last.
    const c = await plain.fundedAgent("beating", 2_000_000n);
    const sid = newSessionId();
    const don = (await c.sessions.don({ sessionId: sid, masque: "researcher" })).session!;
    const don_ms = timestampMs(don.donTime!);
    // Heartbeat until one is sent at least 150 ms after the Don (a condition on the clock, not a sleep).
    let beat_ms = 0;
    // When the last heartbeat's answer arrived (same machine, same clock): a written heartbeat's
    // ledger timestamp is its commit time, at or after the daemon's `now` for it and before the
    // answer, so the bound holds however long the commit took on a loaded machine.
    let answered_ms = 0;
    while (beat_ms - don_ms < 150) {
      const hb = await c.sessions.heartbeat({ sessionId: sid });
      answered_ms = Date.now();
      expect(hb.status).toBe(SessionStatus.OPEN);
      beat_ms = timestampMs(hb.idleDeadlineTime!) - 1_000; // idle deadline = heartbeat time + SESSION_IDLE_S
      await tick();
    }
    await plain.daemon.kill();
    await plain.daemon.start();
    const c2 = await plain.as("agent", "beating");
    const s = (await c2.sessions.getSession({ sessionId: sid })).session!;
    expect(s.status).toBe(SessionStatus.OPEN);
    // Rebuilt from the ledger alone: the last activity is a heartbeat well after the Don (not the Don).
    const last_ms = timestampMs(s.lastActivityTime!);
    expect(last_ms - don_ms).toBeGreaterThanOrEqual(100);
    expect(last_ms).toBeLessThanOrEqual(answered_ms);
    await c2.sessions.cancel({ sessionId: sid });
  });

  it("daemon down past the hold's timeout: EXPIRED, the agent has its money back, usage is kept, nothing charged", async () => {
    const c = await stranded.fundedAgent("stranded", 3_000_000n);
    const sid = newSessionId();
    await c.sessions.don({ sessionId: sid, masque: "researcher" });
    await c.sessions.recordUsage({ events: [{ sessionId: sid, seq: 1n, inputTokens: 0n, outputTokens: 10_000n, toolCalls: 0n }] });
    const s0 = (await c.sessions.getSession({ sessionId: sid })).session!;
    const deadline_ms = timestampMs(s0.deadlineTime!);
    // Down (stopped) while the daemon's and the ledger's clock moves past the hold's timeout; no
    // reaper pass can run meanwhile, so the ledger voids the hold on its own, as a TigerBeetle
    // cluster would while every daemon is down.
    await stranded.daemon.stop();
    stranded.advance((deadline_ms - Date.now()) / 1000 + 5);
    await stranded.restart();
    const c2 = await stranded.as("agent", "stranded");
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
    expect(await stranded.available("stranded")).toBe(3_000_000n);
    await expectStatus(c2.sessions.doff({ sessionId: sid }), Code.FailedPrecondition, "SESSION_EXPIRED");
    await expectStatus(c2.sessions.cancel({ sessionId: sid }), Code.FailedPrecondition, "SESSION_EXPIRED");
    const late = await c2.sessions.recordUsage({ events: [{ sessionId: sid, seq: 2n, inputTokens: 1n, outputTokens: 0n, toolCalls: 0n }] });
    expect(late.results[0]!.reason).toBe("SESSION_NOT_OPEN");
  });
});

describe("analytics copy (issue 5: reconcile after every end-to-end scenario)", () => {
  it("the daemon's ClickHouse copy reconciles with its ledger after every scenario above", async () => {
    // one at a time: chDB hosts one directory per process
    // (the in-process clock daemons run without a streamer)
    await expectAnalyticsReconcile(plain.daemon);
  });
});
