import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { formatMicroAsUsd, formatUsd, MoneyParseError, parseUsdInput, parseUsdToMicro, toMicro } from "../../clients/sdk/money.js";

describe("SDK money helpers", () => {
  it("parses what people type, exactly", () => {
    expect(parseUsdInput("5")).toBe(5_000_000n);
    expect(parseUsdInput("$5.25")).toBe(5_250_000n);
    expect(parseUsdInput(" 0.000001 USD ")).toBe(1n);
    expect(parseUsdInput("1,000.50")).toBe(1_000_500_000n);
    expect(parseUsdInput("12.345678")).toBe(12_345_678n);
  });

  it("refuses amounts that would need rounding or are not money, saying what is accepted", () => {
    for (const bad of ["0.0000001", "-1", "1e3", "abc", "", "1.2.3", "NaN", "1,00"]) {
      expect(() => parseUsdInput(bad)).toThrow(MoneyParseError);
    }
    expect(() => parseUsdInput("0.0000001")).toThrow(/at most 6 fractional digits/);
  });

  it("formats for people without ever rounding", () => {
    expect(formatUsd(1_500_000n)).toBe("$1.50");
    expect(formatUsd(125n)).toBe("$0.000125");
    expect(formatUsd(0n)).toBe("$0.00");
    expect(formatUsd(-2_000_000n)).toBe("-$2.00");
    expect(formatUsd(12_345_678n)).toBe("$12.345678");
  });

  it("round-trips every amount through both formats", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 20n }), (micro) => {
        expect(parseUsdToMicro(formatMicroAsUsd(micro))).toBe(micro);
        expect(parseUsdInput(formatUsd(micro))).toBe(micro);
      }),
    );
  });

  it("takes wire values (bigint, safe number, decimal string) and refuses lossy ones", () => {
    expect(toMicro(5n)).toBe(5n);
    expect(toMicro(5)).toBe(5n);
    expect(toMicro("9223372036854775807")).toBe(9223372036854775807n);
    expect(() => toMicro(2 ** 60)).toThrow(RangeError);
    expect(() => toMicro("1.5")).toThrow(RangeError);
  });
});
