/**
 * RefundSession through the real daemon (ADR 0112): admins refund settled sessions fully or in
 * part, the author only within the window (injected clock), never past the charge, idempotent by
 * key, visible in both statements.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { TransferKind } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { startClockDaemon, type ClockDaemon } from "../support/clock-daemon.js";
import { newSessionId, type Clients } from "../sessions/harness.js";
import { expectStatus } from "../accounts/errors.js";
import { auditEntriesAbout } from "../wiring/audit-reader.js";

const USD = 1_000_000n;
let d: ClockDaemon;
let admin: Clients;
beforeAll(async () => {
  d = await startClockDaemon({ REFUND_AUTHOR_WINDOW_S: "3600" });
  admin = await d.as("admin", "ops");
}, 120_000);
afterAll(async () => d?.stop());

let n = 0;
/** A settled researcher session of a fresh agent; returns its id and charge. */
async function settledSession(): Promise<{ sid: string; agent: string; c: Clients; charged: bigint }> {
  const agent = `refund-agent-${++n}-${Date.now()}`;
  const c = await d.fundedAgent(agent, 10n * USD);
  const sid = newSessionId();
  await c.sessions.don({ sessionId: sid, masque: "researcher" });
  await c.sessions.recordUsage({ events: [{ sessionId: sid, seq: 1n, inputTokens: 100_000n, outputTokens: 100_000n, toolCalls: 100n }] });
  const s = (await c.sessions.doff({ sessionId: sid })).session!;
  return { sid, agent, c, charged: s.chargedMicro };
}

describe("RefundSession", () => {
  it("an admin refunds in part, then the rest; never past the charge; a retried key refunds once", async () => {
    const s = await settledSession();
    expect(s.charged).toBeGreaterThan(100_000n);
    const before = await d.available(s.agent);
    const r1 = await admin.accounts.refundSession({ sessionId: s.sid, amountMicro: 100_000n, reason: "bad answer", idempotencyKey: "r1" });
    expect(r1.authorMicro + r1.platformMicro).toBe(100_000n);
    expect(r1.platformMicro).toBe(15_000n); // the 15% fee's share
    expect(r1.refundedTotalMicro).toBe(100_000n);
    const again = await admin.accounts.refundSession({ sessionId: s.sid, amountMicro: 100_000n, reason: "bad answer", idempotencyKey: "r1" });
    expect(again.refundId).toBe(r1.refundId);
    expect(await d.available(s.agent)).toBe(before + 100_000n);
    await expectStatus(admin.accounts.refundSession({ sessionId: s.sid, amountMicro: 200_000n, reason: "x", idempotencyKey: "r1" }), Code.AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
    const over = await expectStatus(
      admin.accounts.refundSession({ sessionId: s.sid, amountMicro: s.charged, reason: "too much", idempotencyKey: "r2" }),
      Code.FailedPrecondition,
      "REFUND_EXCEEDS_CHARGE",
    );
    expect(over.rawMessage).toContain(`at most ${s.charged - 100_000n} more`);
    const rest = await admin.accounts.refundSession({ sessionId: s.sid, reason: "the rest", idempotencyKey: "r3" });
    expect(rest.amountMicro).toBe(s.charged - 100_000n);
    expect(rest.refundedTotalMicro).toBe(s.charged);
    expect(await d.available(s.agent)).toBe(before + s.charged);
    // Each refund is audited once (the retried key added nothing): actor, reason, before/after (ADR 0109).
    const entries = await auditEntriesAbout(d, "ops", `session:${s.sid}`);
    expect(entries.map((e) => [e.action, e.actorKind, e.reason])).toEqual([
      ["session.refund", "admin", "bad answer"],
      ["session.refund", "admin", "the rest"],
    ]);
    expect(entries.every((e) => e.requestId !== "")).toBe(true);
    expect(JSON.parse(entries[1]!.afterJson)).toMatchObject({ amount_micro: String(s.charged - 100_000n), refundable_micro: "0" });
    expect(JSON.parse(entries[1]!.beforeJson)).toMatchObject({ charge_micro: String(s.charged), refundable_micro: String(s.charged - 100_000n) });
    // The agent's statement shows both refund parts.
    const st = await s.c.accounts.listTransfers({ account: { ref: { case: "agentWallet", value: s.agent } } });
    const kinds = st.entries.map((e) => e.transfer!.kind);
    expect(kinds.filter((k) => k === TransferKind.REFUND_AUTHOR)).toHaveLength(2);
    expect(kinds.filter((k) => k === TransferKind.REFUND_PLATFORM)).toHaveLength(2);
  });

  it("the author may refund within the window only; others never", async () => {
    const s = await settledSession();
    const author = await d.as("author", "author-grace");
    const stranger = await d.as("author", "someone-else");
    await expectStatus(stranger.accounts.refundSession({ sessionId: s.sid, amountMicro: 1n, reason: "no", idempotencyKey: "s" }), Code.PermissionDenied, "PERMISSION_DENIED");
    await expectStatus(s.c.accounts.refundSession({ sessionId: s.sid, amountMicro: 1n, reason: "no", idempotencyKey: "s" }), Code.PermissionDenied, "PERMISSION_DENIED");
    const r = await author.accounts.refundSession({ sessionId: s.sid, amountMicro: 10n, reason: "sorry", idempotencyKey: "a1" });
    expect(r.amountMicro).toBe(10n);
    d.advance(3601);
    const late = await expectStatus(author.accounts.refundSession({ sessionId: s.sid, amountMicro: 10n, reason: "late", idempotencyKey: "a2" }), Code.PermissionDenied, "PERMISSION_DENIED");
    expect(late.rawMessage).toContain("within 3600 s");
    await admin.accounts.refundSession({ sessionId: s.sid, amountMicro: 10n, reason: "admin may", idempotencyKey: "a3" });
  });

  it("an open session cannot be refunded", async () => {
    const agent = `open-${Date.now()}`;
    const c = await d.fundedAgent(agent, 5n * USD);
    const sid = newSessionId();
    await c.sessions.don({ sessionId: sid, masque: "researcher" });
    await expectStatus(admin.accounts.refundSession({ sessionId: sid, amountMicro: 1n, reason: "x", idempotencyKey: "o" }), Code.FailedPrecondition, "SESSION_NOT_SETTLED");
  });
});
