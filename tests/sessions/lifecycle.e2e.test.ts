/**
 * SessionService end to end over native gRPC against the real daemon (embedded ledger):
 * lifecycle with balances, retries of every call, funds, concurrency, billing modes, authorization.
 */
import path from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BillingMode,
  CloseReason,
  SessionStatus,
  UsageOutcome,
  type Session,
} from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { WalletMode } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { agentWalletId } from "../../src/domain/accounts.js";
import { loadCatalog } from "../../src/domain/catalog.js";
import { idToHex } from "../../src/domain/ids.js";
import { expectDenied, expectStatus, insufficientFundsOf } from "../accounts/errors.js";
import { newSessionId, startHarness, type Harness } from "./harness.js";
import { expectAnalyticsReconcile } from "../support/reconcile.js";

const FEE_BPS = 1500n;
const catalog = loadCatalog(path.resolve("masques"));
const reviewer = catalog.byName.get("code-reviewer")!;
const researcher = catalog.byName.get("researcher")!;

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { PLATFORM_FEE_BPS: String(FEE_BPS), BILLING_MODE: "live" } });
});
afterAll(async () => {
  await h?.stop();
});

let n = 0;
const fresh = (p: string) => `${p}-${++n}`;

/**
 * The settled amounts of the first scenario, worked by hand from masques/code-reviewer.yaml (not
 * with src/domain): flat 0.01 USD, 0.002 USD/min, 0.0003 USD per 1k input tokens, 0.0015 USD per
 * 1k output tokens, 0.0001 USD per tool call, hold 2 USD; usage 20,000 in, 4,000 out, 2 calls.
 *   flat                      10,000 µ
 *   input  20,000 / 1k x 300 =  6,000 µ
 *   output  4,000 / 1k x 1500 = 6,000 µ
 *   tools   2 x 100           =    200 µ
 *   = 22,200 µ, plus time: 2,000 µ/min x billed ms / 60,000 = billed ms / 30, one floor for the
 *   whole price (ADR 0030). The session lasts seconds, far below the 5 USD cap and the 2 USD hold.
 * Split at 1500 bps: platform = floor(price x 15 / 100), the remainder (and rounding) to the author.
 */
function expectReviewerSettlement(s: Session) {
  const price = 22_200n + s.billedDurationMs / 30n;
  expect(s.billedDurationMs).toBeLessThan(60_000n * 60n); // sanity: under an hour, so below the cap
  expect(s.priceMicro).toBe(price);
  expect(s.holdMicro).toBe(2_000_000n);
  expect(s.postedMicro).toBe(price);
  expect(s.refundMicro).toBe(2_000_000n - price);
  expect(s.platformFeeMicro).toBe((price * 15n) / 100n);
  expect(s.authorShareMicro).toBe(price - (price * 15n) / 100n);
  // e.g. a 0 ms session: 22,200 charged, platform 3,330, author 18,870, refund 1,977,800
  if (s.billedDurationMs === 0n) {
    expect([s.platformFeeMicro, s.authorShareMicro, s.refundMicro]).toEqual([3_330n, 18_870n, 1_977_800n]);
  }
}

describe("session lifecycle", () => {
  it("don holds the reservation, usage is recorded once, doff charges the price and pays the author atomically", async () => {
    const agent = fresh("agent");
    const c = await h.fundedAgent(agent, 10_000_000n);
    const before = await h.earnings("author-ada").catch(() => 0n);
    const sid = newSessionId();

    const don = await c.sessions.don({ sessionId: sid, masque: "code-reviewer" });
    expect(don.created).toBe(true);
    expect(don.session).toMatchObject({
      sessionId: sid,
      agentWalletId: idToHex(agentWalletId(agent)),
      masqueName: "code-reviewer",
      author: "author-ada",
      priceVersion: reviewer.price_version,
      billingMode: BillingMode.LIVE,
      status: SessionStatus.OPEN,
      holdMicro: 2_000_000n,
    });
    expect(await h.available(agent)).toBe(8_000_000n);

    // Don retried with the same id: the same session, nothing held twice.
    const again = await c.sessions.don({ sessionId: sid, masque: "code-reviewer" });
    expect(again.created).toBe(false);
    expect(again.session!.donTime).toEqual(don.session!.donTime);
    expect(await h.available(agent)).toBe(8_000_000n);

    const events = [
      { sessionId: sid, seq: 1n, inputTokens: 12_000n, outputTokens: 3_000n, toolCalls: 2n },
      { sessionId: sid, seq: 2n, inputTokens: 8_000n, outputTokens: 1_000n, toolCalls: 0n },
    ];
    const u1 = await c.sessions.recordUsage({ events });
    expect({ applied: u1.applied, duplicates: u1.duplicates, rejected: u1.rejected }).toEqual({ applied: 2, duplicates: 0, rejected: 0 });
    // Retried batch (e.g. lost reply): every event is a duplicate; a reused seq with other numbers is refused.
    const u2 = await c.sessions.recordUsage({
      events: [...events, { sessionId: sid, seq: 2n, inputTokens: 9_999n, outputTokens: 0n, toolCalls: 0n }],
    });
    expect(u2.results.map((r) => [r.outcome, r.reason])).toEqual([
      [UsageOutcome.DUPLICATE, ""],
      [UsageOutcome.DUPLICATE, ""],
      [UsageOutcome.REJECTED, "SEQ_REUSED"],
    ]);
    const hb = await c.sessions.heartbeat({ sessionId: sid });
    expect(hb.status).toBe(SessionStatus.OPEN);

    const open = (await c.sessions.getSession({ sessionId: sid })).session!;
    expect(open.usage).toMatchObject({ inputTokens: 20_000n, outputTokens: 4_000n, toolCalls: 2n });
    expect(open.usageEvents).toBe(2n);

    const doff = (await c.sessions.doff({ sessionId: sid })).session!;
    expect(doff.status).toBe(SessionStatus.DOFFED);
    expect(doff.closeReason).toBe(CloseReason.DOFF);
    expectReviewerSettlement(doff);
    expect(doff.chargedMicro).toBeGreaterThan(10_000n); // flat fee at least
    expect(await h.available(agent)).toBe(10_000_000n - doff.chargedMicro);
    expect(await h.earnings("author-ada")).toBe(before + doff.authorShareMicro);

    // Doff twice: the same result, nothing moves again.
    const doff2 = (await c.sessions.doff({ sessionId: sid })).session!;
    expect(doff2).toEqual(doff);
    expect(await h.available(agent)).toBe(10_000_000n - doff.chargedMicro);
    // GetSession rebuilds the same settled session from the ledger.
    expect((await c.sessions.getSession({ sessionId: sid })).session).toEqual(doff);
    // Settled sessions cannot be cancelled; usage after the doff is refused.
    await expectStatus(c.sessions.cancel({ sessionId: sid }), Code.FailedPrecondition, "SESSION_SETTLED");
    const late = await c.sessions.recordUsage({ events: [{ sessionId: sid, seq: 3n, inputTokens: 1n, outputTokens: 0n, toolCalls: 0n }] });
    expect(late.results[0]).toMatchObject({ outcome: UsageOutcome.REJECTED, reason: "SESSION_NOT_OPEN" });
  });

  it("no funds: FAILED_PRECONDITION with the available balance and nothing held", async () => {
    const agent = fresh("poor");
    const c = await h.fundedAgent(agent, 1_500_000n);
    const err = await expectStatus(c.sessions.don({ sessionId: newSessionId(), masque: "code-reviewer" }), Code.FailedPrecondition, "INSUFFICIENT_FUNDS");
    expect(insufficientFundsOf(err)).toMatchObject({ availableMicro: 1_500_000n, requiredMicro: 2_000_000n });
    expect(await h.available(agent)).toBe(1_500_000n);
    // The agent's own max_spend caps the hold: 1 USD fits.
    const ok = await c.sessions.don({ sessionId: newSessionId(), masque: "code-reviewer", maxSpendMicro: 1_000_000n });
    expect(ok.session!.holdMicro).toBe(1_000_000n);
    expect(await h.available(agent)).toBe(500_000n);
  });

  it("a postpaid wallet dons against its credit line, never beyond it", async () => {
    const admin = await h.as("admin", "ops");
    const agent = fresh("postpaid");
    await admin.accounts.openAgentWallet({ agentId: agent, mode: WalletMode.POSTPAID, creditLimitMicro: 1_000_000n });
    const c = await h.as("agent", agent);
    await c.sessions.don({ sessionId: newSessionId(), masque: "researcher" });
    const sid = newSessionId();
    await c.sessions.don({ sessionId: sid, masque: "researcher" });
    await expectStatus(c.sessions.don({ sessionId: newSessionId(), masque: "researcher" }), Code.FailedPrecondition, "INSUFFICIENT_FUNDS");
    await c.sessions.recordUsage({ events: [{ sessionId: sid, seq: 1n, inputTokens: 0n, outputTokens: 10_000n, toolCalls: 0n }] });
    const s = (await c.sessions.doff({ sessionId: sid })).session!;
    expect(s.chargedMicro).toBe(8_000n);
    expect(await h.available(agent)).toBe(1_000_000n - 500_000n - 8_000n);
  });

  it("unknown masque, bad ids and a session id reused for another masque are refused", async () => {
    const c = await h.fundedAgent(fresh("agent"), 5_000_000n);
    await expectStatus(c.sessions.don({ sessionId: newSessionId(), masque: "nope" }), Code.NotFound, "MASQUE_NOT_FOUND");
    await expectStatus(c.sessions.don({ sessionId: "xyz", masque: "researcher" }), Code.InvalidArgument, "INVALID_ARGUMENT");
    const sid = newSessionId();
    await c.sessions.don({ sessionId: sid, masque: "researcher" });
    await expectStatus(c.sessions.don({ sessionId: sid, masque: "code-reviewer" }), Code.AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
    await expectStatus(c.sessions.getSession({ sessionId: newSessionId() }), Code.NotFound, "SESSION_NOT_FOUND");
  });

  it("cancel voids the hold; cancel twice is the same; doff after cancel is refused", async () => {
    const agent = fresh("agent");
    const c = await h.fundedAgent(agent, 3_000_000n);
    const sid = newSessionId();
    await c.sessions.don({ sessionId: sid, masque: "researcher" });
    expect(await h.available(agent)).toBe(2_500_000n);
    const x = (await c.sessions.cancel({ sessionId: sid })).session!;
    expect(x).toMatchObject({ status: SessionStatus.CANCELLED, chargedMicro: 0n, refundMicro: 500_000n, authorShareMicro: 0n });
    expect((await c.sessions.cancel({ sessionId: sid })).session).toEqual(x);
    expect(await h.available(agent)).toBe(3_000_000n);
    await expectStatus(c.sessions.doff({ sessionId: sid }), Code.FailedPrecondition, "SESSION_CANCELLED");
  });

  it("concurrent dons draining one wallet never overdraw it", async () => {
    const agent = fresh("drain");
    const c = await h.fundedAgent(agent, 5_000_000n); // 10 researcher reservations of 0.5 USD
    const results = await Promise.allSettled(
      Array.from({ length: 25 }, () => c.sessions.don({ sessionId: newSessionId(), masque: "researcher" })),
    );
    const ok = results.filter((r) => r.status === "fulfilled");
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(ok.length).toBe(10);
    for (const f of failed) expect(String(f.reason)).toMatch(/insufficient funds/);
    expect(await h.available(agent)).toBe(0n);
    const listed = await c.sessions.listSessions({ owner: { case: "agentId", value: agent }, statuses: [SessionStatus.OPEN] });
    expect(listed.sessions.length).toBe(10);
  });

  it("racing Doffs and Cancels of one session settle it exactly once", async () => {
    const agent = fresh("racer");
    const c = await h.fundedAgent(agent, 5_000_000n);
    const sid = newSessionId();
    await c.sessions.don({ sessionId: sid, masque: "code-reviewer" });
    await c.sessions.recordUsage({ events: [{ sessionId: sid, seq: 1n, inputTokens: 1_000n, outputTokens: 1_000n, toolCalls: 1n }] });
    const calls = Array.from({ length: 12 }, (_, i) =>
      i % 3 === 2 ? c.sessions.cancel({ sessionId: sid }).then((r) => r.session!) : c.sessions.doff({ sessionId: sid }).then((r) => r.session!),
    );
    const settled = await Promise.allSettled(calls);
    const ok = settled.filter((r): r is PromiseFulfilledResult<Session> => r.status === "fulfilled").map((r) => r.value);
    expect(ok.length).toBeGreaterThan(0);
    const final = (await c.sessions.getSession({ sessionId: sid })).session!;
    // every successful answer is the one recorded outcome; the losers got FAILED_PRECONDITION
    for (const s of ok) expect(s).toEqual(final);
    for (const r of settled) if (r.status === "rejected") expect(String(r.reason)).toMatch(/SESSION_(SETTLED|CANCELLED)|already settled|was cancelled/);
    expect(await h.available(agent)).toBe(5_000_000n - final.chargedMicro);
  });

  it("soft mode charges the overrun as debt; shadow mode holds and moves nothing but prices the session", async () => {
    const admin = await h.as("admin", "ops");
    const agent = fresh("soft");
    const c = await h.fundedAgent(agent, 1_000_000n);
    const soft = newSessionId();
    await admin.sessions.don({ sessionId: soft, masque: "researcher", agentId: agent, maxSpendMicro: 100n, billingMode: BillingMode.SOFT });
    await c.sessions.recordUsage({ events: [{ sessionId: soft, seq: 1n, inputTokens: 0n, outputTokens: 1_000_000n, toolCalls: 0n }] });
    const s = (await c.sessions.doff({ sessionId: soft })).session!;
    // 1M output tokens x 0.0008 / 1k = 0.8 USD, above the 100 micro hold
    expect(s).toMatchObject({ billingMode: BillingMode.SOFT, holdMicro: 100n, priceMicro: 800_000n, postedMicro: 100n, debtMicro: 799_900n, chargedMicro: 800_000n });
    expect(s.authorShareMicro + s.platformFeeMicro).toBe(800_000n);
    expect(await h.available(agent)).toBe(1_000_000n - 100n);

    const live = newSessionId();
    await c.sessions.don({ sessionId: live, masque: "researcher", maxSpendMicro: 100n });
    await c.sessions.recordUsage({ events: [{ sessionId: live, seq: 1n, inputTokens: 0n, outputTokens: 1_000_000n, toolCalls: 0n }] });
    const l = (await c.sessions.doff({ sessionId: live })).session!;
    expect(l).toMatchObject({ billingMode: BillingMode.LIVE, priceMicro: 800_000n, chargedMicro: 100n, debtMicro: 0n, unbilledMicro: 799_900n });

    const shadow = newSessionId();
    await admin.sessions.don({ sessionId: shadow, masque: "researcher", agentId: agent, billingMode: BillingMode.SHADOW });
    expect(await h.available(agent)).toBe(1_000_000n - 200n);
    await c.sessions.recordUsage({ events: [{ sessionId: shadow, seq: 1n, inputTokens: 0n, outputTokens: 1_000n, toolCalls: 0n }] });
    const sh = (await c.sessions.doff({ sessionId: shadow })).session!;
    expect(sh).toMatchObject({ billingMode: BillingMode.SHADOW, holdMicro: 0n, priceMicro: 800n, chargedMicro: 0n, unbilledMicro: 800n, authorShareMicro: 0n });
    expect(await h.available(agent)).toBe(1_000_000n - 200n);
    // Only admins override the billing mode.
    await expectDenied(c.sessions.don({ sessionId: newSessionId(), masque: "researcher", billingMode: BillingMode.SHADOW }));
  });

  it("agents act only on their own sessions; authors read and list their masques' sessions", async () => {
    const alice = fresh("alice");
    const a = await h.fundedAgent(alice, 5_000_000n);
    const b = await h.fundedAgent(fresh("bob"), 5_000_000n);
    const sid = newSessionId();
    await a.sessions.don({ sessionId: sid, masque: "researcher" });
    await expectDenied(b.sessions.doff({ sessionId: sid }));
    await expectDenied(b.sessions.cancel({ sessionId: sid }));
    await expectDenied(b.sessions.heartbeat({ sessionId: sid }));
    await expectDenied(b.sessions.getSession({ sessionId: sid }));
    await expectDenied(b.sessions.listSessions({ owner: { case: "agentId", value: alice } }));
    await expectDenied(b.sessions.don({ sessionId: newSessionId(), masque: "researcher", agentId: alice }));
    const u = await b.sessions.recordUsage({ events: [{ sessionId: sid, seq: 1n, inputTokens: 1n, outputTokens: 0n, toolCalls: 0n }] });
    expect(u.results[0]).toMatchObject({ outcome: UsageOutcome.REJECTED, reason: "PERMISSION_DENIED" });
    expect(await h.available(alice)).toBe(4_500_000n);

    const grace = await h.as("author", "author-grace");
    const ada = await h.as("author", "author-ada");
    expect((await grace.sessions.getSession({ sessionId: sid })).session!.status).toBe(SessionStatus.OPEN);
    await expectDenied(ada.sessions.getSession({ sessionId: sid }));
    const mine = await grace.sessions.listSessions({ owner: { case: "masque", value: "researcher" }, pageSize: 500 });
    expect(mine.sessions.some((s) => s.sessionId === sid)).toBe(true);
    await expectDenied(ada.sessions.listSessions({ owner: { case: "masque", value: "researcher" } }));
    await expectDenied(ada.sessions.listSessions({ owner: { case: "author", value: "author-grace" } }));
    // An author's default listing: every session of every masque of theirs, newest first.
    const byAuthor = await grace.sessions.listSessions({ pageSize: 500 });
    expect(byAuthor.sessions.length).toBeGreaterThan(0);
    expect(byAuthor.sessions.every((s) => s.author === "author-grace")).toBe(true);
    expect(byAuthor.sessions.some((s) => s.sessionId === sid)).toBe(true);
    await expectDenied(a.sessions.doff({ sessionId: sid }).then(() => b.sessions.getSession({ sessionId: sid })));
  });

  it("lists page newest first with stable tokens and status filters", async () => {
    const agent = fresh("pager");
    const c = await h.fundedAgent(agent, 10_000_000n);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const sid = newSessionId();
      ids.push(sid);
      await c.sessions.don({ sessionId: sid, masque: "researcher" });
    }
    await c.sessions.doff({ sessionId: ids[1]! });
    const seen: string[] = [];
    let token = "";
    do {
      const page = await c.sessions.listSessions({ owner: { case: "agentId", value: agent }, pageSize: 2, pageToken: token });
      expect(page.sessions.length).toBeLessThanOrEqual(2);
      seen.push(...page.sessions.map((s) => s.sessionId));
      token = page.nextPageToken;
    } while (token);
    expect(seen).toEqual([...ids].reverse());
    const doffed = await c.sessions.listSessions({ owner: { case: "agentId", value: agent }, statuses: [SessionStatus.DOFFED] });
    expect(doffed.sessions.map((s) => s.sessionId)).toEqual([ids[1]]);
    const masques = await c.sessions.listMasques({});
    expect(masques.masques.map((m) => m.name)).toEqual(["code-reviewer", "researcher", "pair-programmer"]);
    expect(masques.masques[1]!.pricing).toMatchObject({ per1kOutputTokensUsd: "0.0008", reserveMicro: 500_000n, hasCap: true });
  });
});

describe("analytics copy (issue 5: reconcile after every end-to-end scenario)", () => {
  it("the daemon's ClickHouse copy reconciles with its ledger after every scenario above", async () => {
    await expectAnalyticsReconcile(h.daemon);
  });
});
