/**
 * Money is bigint micro-USD everywhere (1 micro = 10^-6 USD). Decimal strings exist only at the
 * edges; these functions convert exactly and never touch floating point.
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
