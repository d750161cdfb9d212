/**
 * Money is `bigint` micro-USD everywhere (1 micro = 10^-6 USD = 1 USDC base unit), exactly as on
 * the ledger. Decimal USD strings exist only at the edges (flags, human output, the session file);
 * these functions convert exactly and never touch floating point.
 *
 * This module is the one copy of the rules: the daemon imports it (src/domain/money.ts re-exports
 * it), so the CLI, the SDK and the daemon can never disagree about a rounding rule (ADR 0060,
 * ADR 0062). It imports nothing, so the daemon pulls in nothing else of the client package.
 */

export const MICRO_PER_USD = 1_000_000n;

export class MoneyParseError extends Error {}

/**
 * Parse a non-negative decimal USD string ("1", "0.25", "12.345678") into micro-USD.
 * More than 6 fractional digits is an error (it would need rounding).
 */
export function parseUsdToMicro(text: string): bigint {
  const m = /^(\d{1,24})(?:\.(\d{1,6}))?$/.exec(text.trim());
  if (!m) {
    throw new MoneyParseError(
      `"${text}" is not a non-negative decimal USD amount with at most 6 fractional digits`,
    );
  }
  const whole = BigInt(m[1]!);
  const frac = BigInt((m[2] ?? "").padEnd(6, "0"));
  return whole * MICRO_PER_USD + frac;
}

/** Format micro-USD as a decimal USD string with 6 fractional digits, e.g. 1500000n -> "1.500000". */
export function formatMicroAsUsd(micro: bigint): string {
  const neg = micro < 0n;
  const abs = neg ? -micro : micro;
  const whole = abs / MICRO_PER_USD;
  const frac = (abs % MICRO_PER_USD).toString().padStart(6, "0");
  return `${neg ? "-" : ""}${whole}.${frac}`;
}


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
