/**
 * Money in the SDK is `bigint` micro-USD (1 micro = 10^-6 USD = 1 USDC base unit), exactly as on
 * the ledger. Decimal USD strings exist only at the edges (flags, human output).
 *
 * The exact conversions are the daemon's own (src/domain/money.ts), re-exported rather than copied
 * so the CLI, the SDK and the daemon can never disagree about a rounding rule (see ADR 0060).
 */
import { formatMicroAsUsd, MICRO_PER_USD, MoneyParseError, parseUsdToMicro } from "../../../src/domain/money.js";

export { formatMicroAsUsd, MICRO_PER_USD, MoneyParseError, parseUsdToMicro };

/**
 * Parse what a person types for an amount: "5", "5.25", "$5.25", "5.25 USD", "1,000.50".
 * Still exact: at most 6 fractional digits, never negative, never a float.
 */
export function parseUsdInput(text: string): bigint {
  let t = text.trim();
  if (t.startsWith("$")) t = t.slice(1);
  t = t.replace(/\s*usd[c]?$/i, "");
  if (/^\d{1,3}(,\d{3})+(\.\d+)?$/.test(t)) t = t.replace(/,/g, "");
  try {
    return parseUsdToMicro(t);
  } catch {
    throw new MoneyParseError(
      `"${text}" is not an amount in USD: use a non-negative decimal with at most 6 fractional digits, e.g. 5, 5.25 or 0.000001`,
    );
  }
}

/**
 * Format micro-USD for people: "$1.50", "$0.000125", "-$2.00". Keeps at least 2 fractional
 * digits and every significant one (never rounds: the ledger is exact, so is what we show).
 */
export function formatUsd(micro: bigint): string {
  const full = formatMicroAsUsd(micro); // "-1.500000"
  const neg = full.startsWith("-");
  const body = neg ? full.slice(1) : full;
  const [whole, frac = ""] = body.split(".");
  let f = frac.replace(/0+$/, "");
  if (f.length < 2) f = f.padEnd(2, "0");
  return `${neg ? "-" : ""}$${whole}.${f}`;
}

/** Convert a wire value (bigint, number or decimal string of micro-units) into bigint micro-USD. */
export function toMicro(v: bigint | number | string): bigint {
  if (typeof v === "bigint") return v;
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) throw new RangeError(`micro-USD amount ${v} is not a safe integer`);
    return BigInt(v);
  }
  if (!/^-?\d+$/.test(v)) throw new RangeError(`micro-USD amount ${JSON.stringify(v)} is not an integer`);
  return BigInt(v);
}
