/**
 * Spending limits and peer transfers through the real daemon (issue 17, ADR 0110/0111), with an
 * injected clock for the UTC-day boundary. One daemon for the file.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { PeerTransferDirection, WalletMode } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { startClockDaemon, type ClockDaemon } from "../support/clock-daemon.js";
import { newSessionId, type Clients } from "../sessions/harness.js";
import { expectStatus, keyReusedOf, rpcError } from "../accounts/errors.js";
import { auditEntriesAbout } from "../wiring/audit-reader.js";

const USD = 1_000_000n;
let d: ClockDaemon;
let admin: Clients;
beforeAll(async () => {
  d = await startClockDaemon({ PEER_TRANSFER_MAX_MICRO: String(100n * USD), PEER_DAILY_VOLUME_MICRO: String(500n * USD) });
  admin = await d.as("admin", "ops");
}, 120_000);
afterAll(async () => d?.stop());

const ref = (agent: string) => ({ account: { ref: { case: "agentWallet" as const, value: agent } } });
/** An agent with an empty prepaid wallet. */
async function openWallet(agent: string): Promise<Clients> {
  const c = await d.as("agent", agent);
  await c.accounts.openAgentWallet({ mode: WalletMode.PREPAID });
  return c;
}
const limitsOf = (agent: string) => admin.accounts.getSpendingLimits({ agentId: agent });
function infoOf(err: Awaited<ReturnType<typeof rpcError>>): Record<string, string> {
  return err.findDetails(ErrorInfoSchema)[0]?.metadata ?? {};
}
let n = 0;
/** Seconds this file moved the daemon's clock. */
let advanced = 0;
const uniq = (p: string) => `${p}-${++n}-${Date.now()}`;

describe("daily spending cap", () => {
  it("100 concurrent Dons and peer transfers never pass the cap by one micro-USD", async () => {
    const a = uniq("spender");
    const b = uniq("payee");
    const ca = await d.fundedAgent(a, 1_000n * USD);
    await openWallet(b);
    const cap = 20n * USD + 123_457n;
    await admin.accounts.setSpendingLimits({ agentId: a, dailyCapMicro: cap });
    // researcher reserves 0.5 USD; transfers of 0.7 USD.
    const calls = Array.from({ length: 100 }, (_, i) =>
      i % 2 === 0
        ? ca.sessions.don({ sessionId: newSessionId(), masque: "researcher" }).then(() => 500_000n)
        : ca.accounts.transferFunds({ toAgentId: b, amountMicro: 700_000n, idempotencyKey: `t-${i}` }).then(() => 700_000n),
    );
    const settled = await Promise.allSettled(calls);
    const accepted = settled.reduce((s, r) => (r.status === "fulfilled" ? s + r.value : s), 0n);
    for (const r of settled) {
      if (r.status === "rejected") expect(String(r.reason)).toContain("daily spending cap");
    }
    expect(accepted).toBeLessThanOrEqual(cap);
    expect(cap - accepted).toBeLessThan(700_000n); // refusals only once the next one could not fit
    const l = await limitsOf(a);
    expect(l.daily!.usedMicro).toBe(accepted);
    expect(l.daily!.remainingMicro).toBe(cap - accepted);
    // What left the wallet (holds + transfers) is exactly what the cap counted.
    expect(await d.available(a)).toBe(1_000n * USD - accepted);
  }, 120_000);

  it("a refused Don names the limit, its value, what is left and the reset time, and holds nothing", async () => {
    const a = uniq("capped");
    const c = await d.fundedAgent(a, 10n * USD);
    await admin.accounts.setSpendingLimits({ agentId: a, dailyCapMicro: 600_000n });
    await c.sessions.don({ sessionId: newSessionId(), masque: "researcher" });
    const err = await expectStatus(c.sessions.don({ sessionId: newSessionId(), masque: "researcher" }), Code.FailedPrecondition, "SPENDING_LIMIT_EXCEEDED");
    const info = infoOf(err);
    expect(info).toMatchObject({ limit: "daily_cap", limit_micro: "600000", remaining_micro: "100000", required_micro: "500000" });
    const reset = new Date(info.resets_at!);
    expect(reset.getUTCHours()).toBe(0);
    expect(reset.getTime()).toBeGreaterThan(Date.now());
    expect(err.rawMessage).toContain("daily spending cap");
    expect(err.rawMessage).toContain("limit 0.600000 USD, 0.100000 USD left today, resets at ");
    expect(await d.available(a)).toBe(10n * USD - 500_000n);
  });

  it("Doff gives the unused hold back to the day; Cancel gives all of it back", async () => {
    const a = uniq("doffer");
    const c = await d.fundedAgent(a, 10n * USD);
    await admin.accounts.setSpendingLimits({ agentId: a, dailyCapMicro: 2n * USD });
    const s1 = newSessionId();
    await c.sessions.don({ sessionId: s1, masque: "researcher" });
    await c.sessions.recordUsage({ events: [{ sessionId: s1, seq: 1n, inputTokens: 1000n, outputTokens: 1000n, toolCalls: 2n }] });
    const doff = (await c.sessions.doff({ sessionId: s1 })).session!;
    const charged = doff.chargedMicro ?? 0n;
    expect(charged).toBeGreaterThan(0n);
    expect((await limitsOf(a)).daily!.usedMicro).toBe(charged);
    const s2 = newSessionId();
    await c.sessions.don({ sessionId: s2, masque: "researcher" });
    expect((await limitsOf(a)).daily!.usedMicro).toBe(charged + 500_000n);
    await c.sessions.cancel({ sessionId: s2 });
    expect((await limitsOf(a)).daily!.usedMicro).toBe(charged);
  });

  it("an agent may lower its own cap but not raise it; an admin may raise it", async () => {
    const a = uniq("self");
    const c = await d.fundedAgent(a, 10n * USD);
    await c.accounts.setSpendingLimits({ dailyCapMicro: 5n * USD, sessionCapMicro: 300_000n });
    const l = (await c.accounts.getSpendingLimits({})).daily!;
    expect(l.limitMicro).toBe(5n * USD);
    const err = await expectStatus(c.accounts.setSpendingLimits({ dailyCapMicro: 6n * USD }), Code.PermissionDenied, "PERMISSION_DENIED");
    expect(err.rawMessage).toContain("only lower");
    expect((await c.accounts.getSpendingLimits({})).daily!.limitMicro).toBe(5n * USD);
    // The per-session cap shrinks the reservation: 0.3 USD instead of 0.5.
    await c.sessions.don({ sessionId: newSessionId(), masque: "researcher" });
    expect(await d.available(a)).toBe(10n * USD - 300_000n);
    await admin.accounts.setSpendingLimits({ agentId: a, dailyCapMicro: 9n * USD });
    expect((await c.accounts.getSpendingLimits({})).daily!.limitMicro).toBe(9n * USD);
    // The admin's change is audited with the caps before and after; the agent's own are not (ADR 0109).
    const entries = await auditEntriesAbout(d, "ops", `agent:${a}`);
    expect(entries.map((e) => [e.action, e.actorKind, e.actorId])).toEqual([["account.set_spending_limits", "admin", "ops"]]);
    expect(JSON.parse(entries[0]!.beforeJson)).toMatchObject({ daily_cap_micro: String(5n * USD), session_cap_micro: "300000" });
    expect(JSON.parse(entries[0]!.afterJson)).toMatchObject({ daily_cap_micro: String(9n * USD), session_cap_micro: "300000" });
    expect(await auditEntriesAbout(d, a, `agent:${a}`)).toEqual([]);
    // Another agent may not touch it.
    await expectStatus((await d.as("agent", uniq("other"))).accounts.setSpendingLimits({ agentId: a, dailyCapMicro: 1n }), Code.PermissionDenied, "PERMISSION_DENIED");
  });
});

describe("peer transfers", () => {
  it("moves money once per key: 20 concurrent retries give one transfer; another request on the key is refused", async () => {
    const a = uniq("alice");
    const b = uniq("bob");
    const ca = await d.fundedAgent(a, 50n * USD);
    const cb = await openWallet(b);
    const req = { toAgentId: b, amountMicro: 3n * USD, memo: "lunch", idempotencyKey: "k-1" };
    const results = await Promise.all(Array.from({ length: 20 }, () => ca.accounts.transferFunds(req)));
    expect(new Set(results.map((r) => r.transfer!.transfer!.transferId)).size).toBe(1);
    expect(await d.available(a)).toBe(47n * USD);
    expect(await d.available(b)).toBe(3n * USD);
    const err = await expectStatus(ca.accounts.transferFunds({ ...req, amountMicro: 4n * USD }), Code.AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
    expect(keyReusedOf(err)?.idempotencyKey).toBe("k-1");
    await expectStatus(ca.accounts.transferFunds({ ...req, memo: "dinner" }), Code.AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
    expect(await d.available(a)).toBe(47n * USD);
    // Both sides list it, with the memo.
    const sent = await ca.accounts.listPeerTransfers({ direction: PeerTransferDirection.SENT });
    expect(sent.transfers.map((t) => [t.fromAgentId, t.toAgentId, t.memo, t.transfer!.amountMicro])).toEqual([[a, b, "lunch", 3n * USD]]);
    const received = await cb.accounts.listPeerTransfers({ direction: PeerTransferDirection.RECEIVED });
    expect(received.transfers.map((t) => t.memo)).toEqual(["lunch"]);
    expect((await cb.accounts.listPeerTransfers({ direction: PeerTransferDirection.SENT })).transfers).toEqual([]);
  });

  it("refuses a transfer over the single or the daily limit, naming it, and moves nothing", async () => {
    const a = uniq("big");
    const b = uniq("small");
    const ca = await d.fundedAgent(a, 1_000n * USD);
    await openWallet(b);
    const over = await expectStatus(ca.accounts.transferFunds({ toAgentId: b, amountMicro: 100n * USD + 1n, idempotencyKey: "over" }), Code.FailedPrecondition, "SPENDING_LIMIT_EXCEEDED");
    expect(infoOf(over)).toMatchObject({ limit: "peer_transfer_max", limit_micro: String(100n * USD) });
    expect(over.rawMessage).toContain("largest single peer transfer");
    for (let i = 0; i < 5; i++) await ca.accounts.transferFunds({ toAgentId: b, amountMicro: 100n * USD, idempotencyKey: `day-${i}` });
    const daily = await expectStatus(ca.accounts.transferFunds({ toAgentId: b, amountMicro: 1n, idempotencyKey: "day-x" }), Code.FailedPrecondition, "SPENDING_LIMIT_EXCEEDED");
    expect(infoOf(daily)).toMatchObject({ limit: "peer_daily_volume", limit_micro: String(500n * USD), remaining_micro: "0" });
    expect(await d.available(a)).toBe(500n * USD);
    expect(await d.available(b)).toBe(500n * USD);
    await expectStatus(ca.accounts.transferFunds({ toAgentId: a, amountMicro: 1n, idempotencyKey: "self" }), Code.InvalidArgument, "INVALID_ARGUMENT");
  });
});

describe("the UTC day boundary (injected clock)", () => {
  it("resets the daily cap and the peer volume at the next UTC midnight", async () => {
    const a = uniq("night");
    const b = uniq("owl");
    const ca = await d.fundedAgent(a, 100n * USD);
    await openWallet(b);
    await admin.accounts.setSpendingLimits({ agentId: a, dailyCapMicro: 1n * USD });
    await ca.accounts.transferFunds({ toAgentId: b, amountMicro: 1n * USD, idempotencyKey: "n1" });
    await expectStatus(ca.accounts.transferFunds({ toAgentId: b, amountMicro: 1n, idempotencyKey: "n2" }), Code.FailedPrecondition, "SPENDING_LIMIT_EXCEEDED");
    const before = (await limitsOf(a)).daily!;
    expect(before.remainingMicro).toBe(0n);
    const reset_s = Number(before.resetTime!.seconds);
    // The daemon's clock is the wall clock moved by what the tests advanced: move it to 10 minutes
    // before that midnight (still the same day), then past it.
    const daemonNowS = (await limitsOf(a)).daily!.resetTime!.seconds === before.resetTime!.seconds ? Date.now() / 1000 + advanced : 0;
    d.advance(reset_s - daemonNowS - 600);
    advanced += reset_s - daemonNowS - 600;
    expect(Number((await limitsOf(a)).daily!.resetTime!.seconds)).toBe(reset_s);
    await expectStatus(ca.accounts.transferFunds({ toAgentId: b, amountMicro: 1n, idempotencyKey: "n3" }), Code.FailedPrecondition, "SPENDING_LIMIT_EXCEEDED");
    d.advance(1200);
    advanced += 1200;
    const after = (await limitsOf(a)).daily!;
    expect(Number(after.resetTime!.seconds)).toBe(reset_s + 86_400);
    expect(after.usedMicro).toBe(0n);
    expect(after.remainingMicro).toBe(1n * USD);
    await ca.accounts.transferFunds({ toAgentId: b, amountMicro: 1n * USD, idempotencyKey: "n4" });
    expect(await d.available(b)).toBe(2n * USD);
  });
});
