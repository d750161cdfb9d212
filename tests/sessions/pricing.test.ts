import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  accrue,
  formatPicoAsUsd,
  parseRateToPico,
  priceBookFromText,
  reservationMicro,
  type BillingMode,
  type PriceBook,
  type UsageTotals,
} from "../../src/domain/pricing.js";
import { settle, splitRevenue } from "../../src/domain/split.js";

const micro = fc.bigInt({ min: 0n, max: 5_000_000_000n });
const pico = fc.bigInt({ min: 0n, max: 50_000_000_000_000n });
const priceBook: fc.Arbitrary<PriceBook> = fc.record({
  flat_per_session_micro: micro,
  per_minute_pico: pico,
  per_1k_input_tokens_pico: pico,
  per_1k_output_tokens_pico: pico,
  per_tool_call_pico: pico,
  cap_per_session_micro: fc.option(micro, { nil: null }),
  reserve_micro: micro,
});
const usage: fc.Arbitrary<UsageTotals> = fc.record({
  input_tokens: fc.bigInt({ min: 0n, max: 10_000_000_000n }),
  output_tokens: fc.bigInt({ min: 0n, max: 10_000_000_000n }),
  tool_calls: fc.bigInt({ min: 0n, max: 1_000_000n }),
});
const duration = fc.bigInt({ min: 0n, max: 7n * 24n * 3_600_000n });
const mode = fc.constantFrom<BillingMode>("shadow", "soft", "live");
const bps = fc.bigInt({ min: 0n, max: 10_000n });

describe("pricing: exact decimal rates", () => {
  it("parses rates finer than a micro-USD exactly and renders them back", () => {
    expect(parseRateToPico("0.0000015")).toBe(1_500_000n);
    expect(parseRateToPico("3")).toBe(3_000_000_000_000n);
    expect(formatPicoAsUsd(parseRateToPico("0.000000000001"))).toBe("0.000000000001");
    expect(() => parseRateToPico("0.0000000000001")).toThrow(/at most 12 fractional digits/);
    expect(() => parseRateToPico("-1")).toThrow();
    expect(() => parseRateToPico("1e-6")).toThrow();
  });

  it("prices a worked example with one floor rounding step", () => {
    const pb = priceBookFromText({
      flat_per_session: "0.01",
      per_minute: "0.002",
      per_1k_input_tokens: "0.0003",
      per_1k_output_tokens: "0.0015",
      per_tool_call: "0.0001",
      cap_per_session: "5",
      reserve: "2",
    });
    // 10,000 + 2,000*90,500/60,000 (=3,016.67) + 0.3*1,234 (=370.2) + 1.5*567 (=850.5) + 100*3
    // = 14,537.366... micro -> 14,537 (the 0.366 micro stays with the agent)
    const a = accrue(pb, { input_tokens: 1234n, output_tokens: 567n, tool_calls: 3n }, 90_500n);
    expect(a.rounded_micro).toBe(14_537n);
    expect(a.price_micro).toBe(14_537n);
  });

  it("caps at the per-session cap", () => {
    const pb = priceBookFromText({ per_tool_call: "1", cap_per_session: "2.5", reserve: "1" });
    expect(accrue(pb, { input_tokens: 0n, output_tokens: 0n, tool_calls: 10n }, 0n).price_micro).toBe(2_500_000n);
  });

  it("reservation is the masque reserve capped by the agent's max_spend", () => {
    const pb = priceBookFromText({ reserve: "3" });
    expect(reservationMicro(pb, 0n)).toBe(3_000_000n);
    expect(reservationMicro(pb, 1_000_000n)).toBe(1_000_000n);
    expect(reservationMicro(pb, 9_000_000n)).toBe(3_000_000n);
  });

  it("never negative, never above the cap, one rounding step of less than one micro", () => {
    fc.assert(
      fc.property(priceBook, usage, duration, (pb, u, d) => {
        const a = accrue(pb, u, d);
        expect(a.price_micro >= 0n).toBe(true);
        if (pb.cap_per_session_micro !== null) expect(a.price_micro <= pb.cap_per_session_micro).toBe(true);
        // exact = rounded + remainder with 0 <= remainder < 1 micro
        const rem = a.exact_units - a.rounded_micro * 60_000_000_000n;
        expect(rem >= 0n && rem < 60_000_000_000n).toBe(true);
      }),
    );
  });

  it("is monotone in usage and duration", () => {
    fc.assert(
      fc.property(priceBook, usage, usage, duration, duration, (pb, u1, du, d1, dd) => {
        const u2 = {
          input_tokens: u1.input_tokens + du.input_tokens,
          output_tokens: u1.output_tokens + du.output_tokens,
          tool_calls: u1.tool_calls + du.tool_calls,
        };
        expect(accrue(pb, u2, d1 + dd).price_micro >= accrue(pb, u1, d1).price_micro).toBe(true);
      }),
    );
  });
});

describe("split and settlement", () => {
  it("platform fee rounds down, the split remainder goes to the author", () => {
    expect(splitRevenue(999n, 1_500n)).toEqual({ author_micro: 850n, platform_micro: 149n });
    expect(splitRevenue(0n, 1_500n)).toEqual({ author_micro: 0n, platform_micro: 0n });
    expect(splitRevenue(10n, 10_000n)).toEqual({ author_micro: 0n, platform_micro: 10n });
  });

  it("author + platform + refund = hold (+ debt) exactly, never negative, live never above the hold", () => {
    fc.assert(
      fc.property(mode, micro, micro, bps, (m, price, hold0, fee) => {
        const hold = m === "shadow" ? 0n : hold0;
        const s = settle(m, price, hold, fee);
        for (const v of [s.posted_micro, s.debt_micro, s.refund_micro, s.unbilled_micro, s.author_micro, s.platform_micro]) {
          expect(v >= 0n).toBe(true);
        }
        expect(s.author_micro + s.platform_micro + s.refund_micro).toBe(s.hold_micro + s.debt_micro);
        expect(s.author_micro + s.platform_micro).toBe(s.posted_micro + s.debt_micro);
        expect(s.posted_micro + s.debt_micro + s.unbilled_micro).toBe(m === "shadow" ? s.unbilled_micro : price);
        if (m === "live") {
          expect(s.debt_micro).toBe(0n);
          expect(s.posted_micro <= hold).toBe(true);
          expect(s.author_micro + s.platform_micro + s.refund_micro).toBe(hold);
        }
        if (m === "soft") expect(s.posted_micro + s.debt_micro).toBe(price);
        if (m === "shadow") expect(s.posted_micro + s.author_micro + s.platform_micro + s.debt_micro).toBe(0n);
        expect(s.platform_micro).toBe(((s.posted_micro + s.debt_micro) * fee) / 10_000n);
      }),
    );
  });

  it("end to end: price then settle stays within the reservation in live mode and is monotone", () => {
    fc.assert(
      fc.property(priceBook, usage, usage, duration, bps, (pb, u1, du, d, fee) => {
        const hold = reservationMicro(pb, 0n);
        const u2 = {
          input_tokens: u1.input_tokens + du.input_tokens,
          output_tokens: u1.output_tokens + du.output_tokens,
          tool_calls: u1.tool_calls + du.tool_calls,
        };
        const s1 = settle("live", accrue(pb, u1, d).price_micro, hold, fee);
        const s2 = settle("live", accrue(pb, u2, d).price_micro, hold, fee);
        expect(s2.posted_micro <= hold).toBe(true);
        expect(s2.posted_micro >= s1.posted_micro).toBe(true);
        expect(s2.author_micro + s2.platform_micro + s2.refund_micro).toBe(hold);
      }),
    );
  });

  it("soft mode records the overrun as debt and pays the full price out", () => {
    const s = settle("soft", 1_500n, 1_000n, 1_000n);
    expect(s).toMatchObject({ posted_micro: 1_000n, debt_micro: 500n, refund_micro: 0n, author_micro: 1_350n, platform_micro: 150n });
    const l = settle("live", 1_500n, 1_000n, 1_000n);
    expect(l).toMatchObject({ posted_micro: 1_000n, debt_micro: 0n, unbilled_micro: 500n, author_micro: 900n, platform_micro: 100n });
    const sh = settle("shadow", 1_500n, 0n, 1_000n);
    expect(sh).toMatchObject({ posted_micro: 0n, unbilled_micro: 1_500n, notional_author_micro: 1_350n, notional_platform_micro: 150n });
  });
});
