/**
 * The msat ledger and USD⇄msat conversion (issue 15 "Money", ADR 0094) against the real embedded
 * engine: exact rate arithmetic with one named rounding step, quotes that expire, and the payout
 * post / deposit credit chains across the two ledgers — all or nothing, balances exact on both,
 * a retry answers `exists`, and the exchange accounts' open position.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CreateTransferStatus } from "tigerbeetle-node";
import { authorEarningsId, railAccountId } from "../../src/domain/accounts.js";
import { Ledger } from "../../src/domain/codes.js";
import {
  conversionAccounts,
  exchangeAccountId,
  exchangePosition,
  formatRateE6,
  isConversionQuoteUsable,
  lightningDepositCreditPlan,
  lightningPayoutPostPlan,
  linkedChainOutcome,
  microToMsat,
  msatRailAccountId,
  msatToMicro,
  operatorRateProvider,
  parseRateE6,
  quoteConversion,
  RateFormatError,
  routingFeeMicro,
} from "../../src/domain/settlement/conversion.js";
import { canonicalDepositKey, holdOutcome, payoutHoldPlan, railFeesAccountId } from "../../src/domain/settlement/index.js";
import { accountStatuses } from "../support/ledger-backend.js";
import { account, fundAuthor, openAgentWallet, openSettlementLedger, submit, transferStatuses, type SettlementLedger } from "./fixture.js";

const NAMES = CreateTransferStatus as unknown as Record<number, string>;
let l: SettlementLedger;

beforeAll(async () => {
  l = await openSettlementLedger();
  const accts = conversionAccounts();
  expect(accountStatuses(await l.client.createAccounts(accts))).toEqual(accts.map(() => "created"));
});
afterAll(async () => {
  await l?.close();
});

describe("rates", () => {
  it("parses exact decimals, refuses anything else with the rule", () => {
    expect(parseRateE6("1052631.578947")).toBe(1_052_631_578_947n);
    expect(parseRateE6("1000000")).toBe(1_000_000_000_000n);
    expect(formatRateE6(1_052_631_578_947n)).toBe("1052631.578947");
    expect(formatRateE6(parseRateE6("2500.5"))).toBe("2500.5");
    for (const bad of ["", "0", "1e6", "-5", "1.1234567", "abc", "1,5"]) expect(() => parseRateE6(bad), bad).toThrow(RateFormatError);
  });

  it("converts with one rounding step on the named side", () => {
    const r = parseRateE6("1052631.578947"); // ~95,000 USD per BTC
    expect(microToMsat(1_000_000n, r, "floor")).toBe(1_052_631n); // 1 USD
    expect(microToMsat(1_000_000n, r, "ceil")).toBe(1_052_632n);
    expect(microToMsat(3n, parseRateE6("1000000"), "floor")).toBe(3n); // 1 micro = 1 msat at 100k USD/BTC
    expect(msatToMicro(1_052_632n, r, "floor")).toBe(1_000_000n);
    expect(msatToMicro(1n, r, "ceil")).toBe(1n);
    expect(msatToMicro(0n, r, "ceil")).toBe(0n);
  });

  it("the operator provider records its rate, source and the time asked; quotes expire and are never used after", async () => {
    const p = operatorRateProvider(parseRateE6("1000000"), "operator");
    const rate = await p.currentRate(5_000_000_000n);
    expect(rate).toEqual({ rate_e6: 1_000_000_000_000n, source: "operator", observed_at_ns: 5_000_000_000n });
    const q = quoteConversion({ amount_micro: 250_000n, rate, now_ns: 5_000_000_000n, ttl_s: 60, direction: "deposit" });
    expect(q).toMatchObject({ ok: true, quote: { amount_msat: 250_000n, expire_time_ns: 65_000_000_000n } });
    if (!q.ok) throw new Error("quote refused");
    expect(isConversionQuoteUsable(q.quote, 64_999_999_999n)).toBe(true);
    expect(isConversionQuoteUsable(q.quote, 65_000_000_000n)).toBe(false);
    const tiny = quoteConversion({ amount_micro: 1n, rate: { ...rate, rate_e6: parseRateE6("0.5") }, now_ns: 0n, ttl_s: 60, direction: "payout" });
    expect(tiny).toMatchObject({ ok: false, field: "amount_micro" });
  });

  it("routing fee: converted up, capped at the held fee", () => {
    const r = parseRateE6("1000000");
    expect(routingFeeMicro(1_500n, r, 2_000n)).toEqual({ fee_posted_micro: 1_500n, within_cap: true });
    expect(routingFeeMicro(2_500n, r, 2_000n)).toEqual({ fee_posted_micro: 2_000n, within_cap: false });
  });
});

describe("the chains across the two ledgers", () => {
  const rate_e6 = parseRateE6("1052631.578947");

  it("payout post: 6 linked transfers, balances exact on both ledgers, a retry is `exists`, the position moves", async () => {
    const author = "author-ln-1";
    await fundAuthor(l, author, 5_000_000n);
    const plan = payoutHoldPlan({ author_id: author, idempotency_key: "ln-1", rail: "lightning", net_micro: 2_000_000n, fee_micro: 10_000n });
    expect(holdOutcome(await submit(l, plan.transfers)).kind).toBe("held");
    const amount_msat = microToMsat(2_000_000n, rate_e6, "floor");
    const fee_msat = 3_000n;
    const fee = routingFeeMicro(fee_msat, rate_e6, 10_000n);
    const post = lightningPayoutPostPlan(plan.hold, { fee_posted_micro: fee.fee_posted_micro, amount_msat, fee_msat, rate_e6 });
    expect(post.map((t) => t.ledger)).toEqual([Ledger.usd_micro, Ledger.usd_micro, Ledger.usd_micro, Ledger.usd_micro, Ledger.btc_msat, Ledger.btc_msat]);
    expect(linkedChainOutcome(await submit(l, post), 6, NAMES)).toEqual({ kind: "applied" });
    expect(linkedChainOutcome(await submit(l, post), 6, NAMES)).toEqual({ kind: "exists" });

    const earnings = await account(l, authorEarningsId(author));
    expect(earnings.debits_posted).toBe(2_000_000n + fee.fee_posted_micro); // the actual routing fee; the rest of the cap returned
    expect(earnings.debits_pending).toBe(0n);
    expect(fee.fee_posted_micro).toBe(2_851n); // 3,000 msat at 1,052,631.578947 msat/USD, rounded up
    const outUsd = await account(l, railAccountId("rail_outbound", "lightning"));
    expect(outUsd.credits_posted - outUsd.debits_posted).toBe(0n);
    expect((await account(l, msatRailAccountId("rail_outbound"))).credits_posted).toBe(amount_msat);
    expect((await account(l, msatRailAccountId("rail_fees"))).credits_posted).toBe(fee_msat);
    const pos = exchangePosition(await account(l, exchangeAccountId(Ledger.usd_micro)), await account(l, exchangeAccountId(Ledger.btc_msat)));
    expect(pos).toEqual({ usd_micro: 2_002_851n, msat_out: amount_msat + fee_msat });
    const fees = await account(l, railFeesAccountId("lightning"));
    expect(fees.credits_posted - fees.debits_posted).toBe(0n);
  });

  it("payout post is all or nothing: a failing leg (voided hold) moves neither ledger", async () => {
    const author = "author-ln-2";
    await fundAuthor(l, author, 1_000_000n);
    const plan = payoutHoldPlan({ author_id: author, idempotency_key: "ln-2", rail: "lightning", net_micro: 500_000n, fee_micro: 1_000n });
    expect(holdOutcome(await submit(l, plan.transfers)).kind).toBe("held");
    const before = await account(l, exchangeAccountId(Ledger.btc_msat));
    expect(() => lightningPayoutPostPlan(plan.hold, { fee_posted_micro: 0n, amount_msat: 1n << 63n, fee_msat: 0n, rate_e6 })).toThrow(RangeError);
    // A chain whose last leg names a missing account fails as a whole.
    const good = lightningPayoutPostPlan(plan.hold, { fee_posted_micro: 0n, amount_msat: 10n, fee_msat: 0n, rate_e6 });
    good[5] = { ...good[5]!, credit_account_id: 12345n };
    const out = linkedChainOutcome(await submit(l, good), 6, NAMES);
    expect(out.kind).toBe("failed");
    expect((await account(l, exchangeAccountId(Ledger.btc_msat))).debits_posted).toBe(before.debits_posted);
    expect((await account(l, authorEarningsId(author))).debits_pending).toBe(501_000n);
  });

  it("deposit credit: 3 linked transfers, credited once per payment hash, msat arrived recorded", async () => {
    const wallet = await openAgentWallet(l, "agent-ln-1");
    const key = canonicalDepositKey("lightning", { chain_id: "bip122:0f9188f13cb7b2c71f2a335e3a4fc328", tx_ref: "ab".repeat(32), event_index: 0 });
    const pos0 = exchangePosition(await account(l, exchangeAccountId(Ledger.usd_micro)), await account(l, exchangeAccountId(Ledger.btc_msat)));
    const plan = lightningDepositCreditPlan({ key, wallet_id: wallet, amount_micro: 1_000_000n, amount_msat: 1_052_632n, rate_e6 });
    expect(linkedChainOutcome(await submit(l, plan), 3, NAMES)).toEqual({ kind: "applied" });
    expect(linkedChainOutcome(await submit(l, plan), 3, NAMES)).toEqual({ kind: "exists" });
    // The same payment hash with another amount is refused by the ledger, nothing credited twice.
    const other = lightningDepositCreditPlan({ key, wallet_id: wallet, amount_micro: 2_000_000n, amount_msat: 2_105_264n, rate_e6 });
    expect(transferStatuses(await submit(l, other))[0]).toBe("exists_with_different_amount");
    const w = await account(l, wallet);
    expect(w.credits_posted).toBe(1_000_000n);
    expect((await account(l, msatRailAccountId("rail_inbound"))).debits_posted).toBe(1_052_632n);
    const pos = exchangePosition(await account(l, exchangeAccountId(Ledger.usd_micro)), await account(l, exchangeAccountId(Ledger.btc_msat)));
    expect(pos).toEqual({ usd_micro: pos0.usd_micro - 1_000_000n, msat_out: pos0.msat_out - 1_052_632n });
  });
});
