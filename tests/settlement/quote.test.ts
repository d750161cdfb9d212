/**
 * Payout quotes (issue 13: amount, fee, net, expiry; minimum payout; fee shown in the quote;
 * expired quote refused). Exact bigint arithmetic at the edges.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { computePayoutQuote, isQuoteUsable, payoutFeeMicro, type PayoutFeeSchedule } from "../../src/domain/settlement/index.js";

const NOW = 1_800_000_000_000_000_000n;
const base: PayoutFeeSchedule = { fixed_fee_micro: 50_000n, fee_bps: 0, minimum_net_micro: 1_000_000n, quote_ttl_s: 300 };

describe("computePayoutQuote", () => {
  it("quotes amount = fee + net with an expiry ttl seconds ahead", () => {
    expect(computePayoutQuote({ amount_micro: 10_000_000n }, 20_000_000n, base, NOW)).toEqual({
      ok: true,
      quote: { amount_micro: 10_000_000n, fee_micro: 50_000n, net_micro: 9_950_000n, expire_time_ns: NOW + 300_000_000_000n },
    });
  });

  it("all_available takes exactly the available earnings", () => {
    const r = computePayoutQuote({ all_available: true }, 7_654_321n, base, NOW);
    expect(r).toEqual({ ok: true, quote: { amount_micro: 7_654_321n, fee_micro: 50_000n, net_micro: 7_604_321n, expire_time_ns: NOW + 300_000_000_000n } });
  });

  it("all_available with nothing available is insufficient funds", () => {
    expect(computePayoutQuote({ all_available: true }, 0n, base, NOW)).toEqual({
      ok: false,
      refusal: { reason: "INSUFFICIENT_FUNDS", available_micro: 0n, required_micro: 1_000_000n },
    });
  });

  it("all_available below the minimum after fees is refused with the net and the minimum", () => {
    expect(computePayoutQuote({ all_available: true }, 1_049_999n, base, NOW)).toEqual({
      ok: false,
      refusal: { reason: "AMOUNT_BELOW_MINIMUM", net_micro: 999_999n, minimum_net_micro: 1_000_000n },
    });
  });

  it("the minimum is inclusive: net exactly the minimum is accepted, one micro less is refused", () => {
    const at = computePayoutQuote({ amount_micro: 1_050_000n }, 5_000_000n, base, NOW);
    expect(at.ok && at.quote.net_micro).toBe(1_000_000n);
    const below = computePayoutQuote({ amount_micro: 1_049_999n }, 5_000_000n, base, NOW);
    expect(below.ok ? "ok" : below.refusal.reason).toBe("AMOUNT_BELOW_MINIMUM");
  });

  it("a fee equal to or above the amount is refused (nothing would be paid)", () => {
    const s = { ...base, minimum_net_micro: 1n };
    expect(computePayoutQuote({ amount_micro: 50_000n }, 1_000_000n, s, NOW)).toEqual({
      ok: false,
      refusal: { reason: "FEE_EXCEEDS_AMOUNT", amount_micro: 50_000n, fee_micro: 50_000n },
    });
    expect(computePayoutQuote({ amount_micro: 49_999n }, 1_000_000n, s, NOW)).toEqual({
      ok: false,
      refusal: { reason: "FEE_EXCEEDS_AMOUNT", amount_micro: 49_999n, fee_micro: 50_000n },
    });
    const just = computePayoutQuote({ amount_micro: 50_001n }, 1_000_000n, s, NOW);
    expect(just.ok && just.quote.net_micro).toBe(1n);
  });

  it("more than available is insufficient funds naming both amounts; zero and > 2^63-1 are invalid", () => {
    expect(computePayoutQuote({ amount_micro: 3_000_001n }, 3_000_000n, base, NOW)).toEqual({
      ok: false,
      refusal: { reason: "INSUFFICIENT_FUNDS", available_micro: 3_000_000n, required_micro: 3_000_001n },
    });
    for (const amount_micro of [0n, -1n, 1n << 63n]) {
      expect(computePayoutQuote({ amount_micro }, 1n << 64n, base, NOW)).toEqual({
        ok: false,
        refusal: { reason: "INVALID_ARGUMENT", field: "amount_micro", rule: "must be > 0 and <= 2^63-1" },
      });
    }
  });

  it("the proportional fee rounds up to a whole micro-USD (the platform never under-collects)", () => {
    const s = { ...base, fixed_fee_micro: 0n, fee_bps: 25 }; // 0.25 %
    expect(payoutFeeMicro(10_000_000n, s)).toBe(25_000n);
    expect(payoutFeeMicro(10_000_001n, s)).toBe(25_001n);
    expect(payoutFeeMicro(1n, s)).toBe(1n);
  });

  it("for every amount, available and schedule: accepted quotes satisfy amount = fee + net, minimum <= net, amount <= available", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 1n << 50n }),
        fc.bigInt({ min: 0n, max: 1n << 50n }),
        fc.bigInt({ min: 0n, max: 1n << 30n }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.bigInt({ min: 1n, max: 1n << 30n }),
        fc.boolean(),
        (amount, available, fixed, bps, minimum, all) => {
          const s: PayoutFeeSchedule = { fixed_fee_micro: fixed, fee_bps: bps, minimum_net_micro: minimum, quote_ttl_s: 60 };
          const r = computePayoutQuote(all ? { all_available: true } : { amount_micro: amount }, available, s, NOW);
          if (!r.ok) return;
          const q = r.quote;
          expect(q.fee_micro + q.net_micro).toBe(q.amount_micro);
          expect(q.net_micro >= minimum && q.net_micro > 0n).toBe(true);
          expect(q.amount_micro <= available).toBe(true);
          expect(q.fee_micro).toBe(payoutFeeMicro(q.amount_micro, s));
        },
      ),
    );
  });

  it("refuses a schedule outside its ranges", () => {
    expect(() => computePayoutQuote({ amount_micro: 1n }, 1n, { ...base, fee_bps: 10_001 }, NOW)).toThrow(/fee_bps/);
    expect(() => computePayoutQuote({ amount_micro: 1n }, 1n, { ...base, minimum_net_micro: 0n }, NOW)).toThrow(/minimum_net_micro/);
    expect(() => computePayoutQuote({ amount_micro: 1n }, 1n, { ...base, quote_ttl_s: 0 }, NOW)).toThrow(/quote_ttl_s/);
  });
});

describe("quote expiry", () => {
  it("a quote is usable strictly before its expire time, refused at and after it", () => {
    const r = computePayoutQuote({ amount_micro: 2_000_000n }, 2_000_000n, base, NOW);
    if (!r.ok) throw new Error("expected a quote");
    expect(isQuoteUsable(r.quote, NOW)).toBe(true);
    expect(isQuoteUsable(r.quote, r.quote.expire_time_ns - 1n)).toBe(true);
    expect(isQuoteUsable(r.quote, r.quote.expire_time_ns)).toBe(false);
    expect(isQuoteUsable(r.quote, r.quote.expire_time_ns + 1n)).toBe(false);
  });
});
