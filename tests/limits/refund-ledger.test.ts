/**
 * Refunds and author debt against the embedded engine with the daemon's own plans (ADR 0112):
 * sessions settled with planDoff + the repayment event settle.ts appends, refunds with
 * planRefund, payouts with the settlement plans. A refund of a paid-out author creates exactly
 * the shortfall as debt, the next session's earnings repay it first, and no payout is possible
 * while any of it is outstanding.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CreateTransferStatus as CT, type Transfer } from "tigerbeetle-node";
import { authorEarningsId, availableMicro, platformAccount, platformAccountId } from "../../src/domain/accounts.js";
import { deterministicId } from "../../src/domain/ids.js";
import { platformLimitAccounts } from "../../src/domain/limits.js";
import { authorDebtAccount, authorDebtId, planDebtRepayment, planRefund, refundId, refundableAccount, refundableFunding, splitRefund } from "../../src/domain/refunds.js";
import { sessionAccountIds } from "../../src/domain/session-accounts.js";
import { planDoff, planDon, sessionTransferIds } from "../../src/domain/sessions.js";
import { settle } from "../../src/domain/split.js";
import { payoutHoldPlan, payoutPostPlan, payoutVoidPlan, settleOutcome } from "../../src/domain/settlement/index.js";
import { appendTail } from "../../src/services/sessions/limits.js";
import { debtMicro } from "../../src/services/accounts/refunds.js";
import { account, fundAuthor, openAgentWallet, openSettlementLedger, type SettlementLedger } from "../settlement/fixture.js";
import { newTransfer } from "../../src/domain/records.js";
import { Ledger, TransferCode } from "../../src/domain/codes.js";

let l: SettlementLedger;
beforeEach(async () => {
  l = await openSettlementLedger();
  await l.client.createAccounts([platformAccount("session_escrow"), ...platformLimitAccounts()]);
});
afterEach(async () => l.close());

const AUTHOR = "author-r";
const AGENT = "agent-r";
const FEE_BPS = 1500;
let sessions = 0;

async function ok(events: Transfer[]): Promise<void> {
  const res = await l.client.createTransfers(events);
  expect(res.map((r) => CT[r.status])).toEqual(events.map(() => "created"));
}

/** Don + Doff of a live session charging `price` (the daemon's chain, repayment included). */
async function session(price: bigint): Promise<{ sid: bigint; author: bigint; platform: bigint }> {
  const sid = deterministicId("session", String(++sessions));
  await ok([planDon(sessionAccountIds, { session_id: sid, agent_id: AGENT, masque_index: 0, price_version: 1, mode: "live", hold_micro: price, timeout_s: 3600 })]);
  const st = settle("live", price, price, BigInt(FEE_BPS));
  const doff = planDoff(sessionAccountIds, { session_id: sid, agent_id: AGENT, author_id: AUTHOR, masque_index: 0, settlement: st, billed_duration_ms: 1n, fee_bps: FEE_BPS, reason: "doff" });
  await ok(appendTail(doff, [planDebtRepayment(sessionTransferIds(sid).hold, authorEarningsId(AUTHOR), sid)]));
  return { sid, author: st.author_micro, platform: st.platform_micro };
}

async function refund(s: { sid: bigint; author: bigint; platform: bigint }, amount: bigint, key: string): Promise<CT[]> {
  await l.client.createAccounts([refundableAccount(s.sid)]);
  await l.client.createTransfers([refundableFunding(s.sid, s.author + s.platform)]);
  const chain = planRefund({
    id: refundId(s.sid, key),
    session_id: s.sid,
    wallet_id: sessionAccountIds.agentWallet(AGENT),
    earnings_id: authorEarningsId(AUTHOR),
    platform_revenue_id: platformAccountId("platform_revenue"),
    amount_micro: amount,
    split: splitRefund(amount, s.author, s.platform),
  });
  return (await l.client.createTransfers(chain)).map((r) => r.status);
}

async function payout(key: string, net: bigint): Promise<CT[]> {
  const plan = payoutHoldPlan({ author_id: AUTHOR, idempotency_key: key, rail: "base", net_micro: net, fee_micro: 0n });
  const held = await l.client.createTransfers(plan.transfers);
  if (held.some((r) => r.status !== CT.created)) return held.map((r) => r.status);
  await ok(payoutPostPlan(plan.hold));
  return held.map((r) => r.status);
}

const earnings = () => account(l, authorEarningsId(AUTHOR));
const debt = async () => debtMicro(await account(l, authorDebtId(authorEarningsId(AUTHOR))));

describe("refunds and author debt", () => {
  beforeEach(async () => {
    const wallet = await openAgentWallet(l, AGENT);
    await fundAuthor(l, AUTHOR, 0n);
    await l.client.createAccounts([authorDebtAccount(authorEarningsId(AUTHOR))]);
    await ok([newTransfer({ id: deterministicId("fund", AGENT), debit_account_id: platformAccountId("platform_operator"), credit_account_id: wallet, amount: 100_000_000n, ledger: Ledger.usd_micro, code: TransferCode.manual_deposit })]);
  });

  it("a refund of an unpaid author comes from earnings and revenue in the split proportions; no debt", async () => {
    const s = await session(10_000_000n); // author 8.5, platform 1.5
    expect(await refund(s, 4_000_000n, "r1")).toEqual([CT.created, CT.created, CT.created, CT.created, CT.created]);
    expect(availableMicro(await earnings())).toBe(8_500_000n - 3_400_000n);
    expect(availableMicro(await account(l, platformAccountId("platform_revenue")))).toBe(1_500_000n - 600_000n);
    expect(availableMicro(await account(l, sessionAccountIds.agentWallet(AGENT)))).toBe(100_000_000n - 10_000_000n + 4_000_000n);
    expect(await debt()).toBe(0n);
  });

  it("partial refunds never add up past the charge (the ledger refuses the one that would)", async () => {
    const s = await session(1_000_000n);
    expect((await refund(s, 600_000n, "a"))[0]).toBe(CT.created);
    expect((await refund(s, 400_001n, "b"))[0]).toBe(CT.exceeds_credits);
    expect((await refund(s, 400_000n, "c"))[0]).toBe(CT.created);
    expect((await refund(s, 1n, "d"))[0]).toBe(CT.exceeds_credits);
    // Retried key: `exists`, nothing moves twice.
    expect((await refund(s, 600_000n, "a"))[0]).toBe(CT.exists);
    expect(availableMicro(await account(l, sessionAccountIds.agentWallet(AGENT)))).toBe(100_000_000n);
  });

  it("a paid-out author: the shortfall is debt, payouts are refused while it is outstanding, the next session's earnings repay it first", async () => {
    const s1 = await session(10_000_000n); // author earns 8.5 USD
    expect(await payout("p1", 8_000_000n)).toEqual([CT.created, CT.created]); // paid out 8, 0.5 left
    expect(availableMicro(await earnings())).toBe(500_000n);
    // Full refund: author part 8.5, earnings cover 0.5 -> debt exactly 8.0.
    expect((await refund(s1, 10_000_000n, "full"))[0]).toBe(CT.created);
    expect(await debt()).toBe(8_000_000n);
    expect(availableMicro(await earnings())).toBe(0n);
    // No payout, not even 1 micro-USD.
    expect((await payout("p2", 1n))[0]).toBe(CT.exceeds_credits);
    // Next session earns 4.25 USD: all of it repays the debt.
    await session(5_000_000n);
    expect(await debt()).toBe(8_000_000n - 4_250_000n);
    expect(availableMicro(await earnings())).toBe(0n);
    expect((await payout("p3", 1n))[0]).toBe(CT.exceeds_credits);
    // Another earns 8.5 USD: 3.75 repays the rest, 4.75 is the author's again.
    await session(10_000_000n);
    expect(await debt()).toBe(0n);
    expect(availableMicro(await earnings())).toBe(4_750_000n);
    expect(await payout("p4", 4_750_000n)).toEqual([CT.created, CT.created]);
    // Every refund nets to zero: what the wallet got = what earnings + revenue + debt gave.
    const e = await earnings();
    expect(e.credits_posted - e.debits_posted - e.debits_pending).toBe(0n);
  });

  it("a payout still pending when a refund creates debt, then voided: the returned money repays the debt first, no new payout can use it", async () => {
    const s1 = await session(10_000_000n); // author earns 8.5 USD
    const p1 = payoutHoldPlan({ author_id: AUTHOR, idempotency_key: "pending", rail: "base", net_micro: 7_900_000n, fee_micro: 100_000n });
    await ok(p1.transfers); // 8.0 held, 0.5 available
    expect(availableMicro(await earnings())).toBe(500_000n);
    // Full refund while the payout is pending: author part 8.5, earnings cover 0.5 -> debt 8.0.
    expect((await refund(s1, 10_000_000n, "full"))[0]).toBe(CT.created);
    expect(await debt()).toBe(8_000_000n);
    // The rail fails the payout: 8.0 returns to the earnings and repays the debt in the same chain.
    expect(settleOutcome(await l.client.createTransfers(payoutVoidPlan(p1.hold.payout_id, "failed", p1.hold.earnings_id)))).toEqual({ kind: "applied" });
    expect(await debt()).toBe(0n);
    expect(availableMicro(await earnings())).toBe(0n);
    expect((await payout("after-void", 1n))[0]).toBe(CT.exceeds_credits);
    // A retried void is `exists` and moves nothing.
    expect(settleOutcome(await l.client.createTransfers(payoutVoidPlan(p1.hold.payout_id, "failed", p1.hold.earnings_id)))).toEqual({ kind: "exists" });
    expect(await debt()).toBe(0n);
  });

  it("a voided payout with a smaller debt outstanding: the debt is repaid and only the rest is the author's again", async () => {
    const s1 = await session(10_000_000n); // author earns 8.5 USD
    const p1 = payoutHoldPlan({ author_id: AUTHOR, idempotency_key: "pending-2", rail: "base", net_micro: 8_000_000n, fee_micro: 0n });
    await ok(p1.transfers); // 0.5 available
    expect((await refund(s1, 2_000_000n, "part"))[0]).toBe(CT.created); // author part 1.7: 0.5 from earnings, debt 1.2
    expect(await debt()).toBe(1_200_000n);
    expect(settleOutcome(await l.client.createTransfers(payoutVoidPlan(p1.hold.payout_id, "cancelled", p1.hold.earnings_id)))).toEqual({ kind: "applied" });
    expect(await debt()).toBe(0n);
    expect(availableMicro(await earnings())).toBe(8_000_000n - 1_200_000n);
    expect(await payout("rest", 6_800_000n)).toEqual([CT.created, CT.created]);
  });
});
