/**
 * Session pricing: exact, integer-only, ONE rounding step per session (ADR 0030).
 *
 * Rates are decimal USD strings with up to 12 fractional digits, held as bigint pico-USD
 * (1 pico = 10^-12 USD = 10^-6 micro-USD), because per-token and per-minute prices are routinely
 * finer than one micro-USD. Everything accrues as an exact rational with the fixed denominator
 * `PRICE_DENOMINATOR` (pico-USD per 60,000 ms-minute per 1,000 tokens folded together), and is
 * rounded once, DOWN (floor), to whole micro-USD: the sub-micro remainder is never charged, it
 * stays with the agent. Then, in this order: per-session cap, then (live mode) the reservation.
 *
 * Flat fee and cap/reserve are in micro-USD (6 digits max): they are amounts that move, not rates.
 */
import { MICRO_PER_USD, MoneyParseError, parseUsdToMicro } from "./money.js";

export const PICO_PER_MICRO = 1_000_000n;
export const MS_PER_MINUTE = 60_000n;
export const TOKENS_PER_RATE_UNIT = 1_000n;
/** One micro-USD expressed in accrual units: pico per micro x ms per minute. */
export const PRICE_DENOMINATOR = PICO_PER_MICRO * MS_PER_MINUTE;

/** Parse a non-negative decimal USD rate with up to 12 fractional digits into pico-USD. */
export function parseRateToPico(text: string): bigint {
  const m = /^(\d{1,18})(?:\.(\d{1,12}))?$/.exec(text.trim());
  if (!m) {
    throw new MoneyParseError(
      `"${text}" is not a non-negative decimal USD rate with at most 12 fractional digits`,
    );
  }
  return BigInt(m[1]!) * MICRO_PER_USD * PICO_PER_MICRO + BigInt((m[2] ?? "").padEnd(12, "0"));
}

/** Render pico-USD as the shortest exact decimal USD string ("0.0000015"). */
export function formatPicoAsUsd(pico: bigint): string {
  const unit = MICRO_PER_USD * PICO_PER_MICRO;
  const whole = pico / unit;
  const frac = (pico % unit).toString().padStart(12, "0").replace(/0+$/, "");
  return frac ? `${whole}.${frac}` : `${whole}`;
}

/** A masque's pricing, exact. This (plus masque index and author) is what a price-book version pins. */
export interface PriceBook {
  flat_per_session_micro: bigint;
  per_minute_pico: bigint;
  per_1k_input_tokens_pico: bigint;
  per_1k_output_tokens_pico: bigint;
  per_tool_call_pico: bigint;
  /** Maximum charge per session (null = uncapped). */
  cap_per_session_micro: bigint | null;
  /** Amount held at Don (before the agent's own max_spend cap). */
  reserve_micro: bigint;
}

/** Decimal-string form, as written in masque YAML and the API. */
export interface PriceBookText {
  flat_per_session?: string | undefined;
  per_minute?: string | undefined;
  per_1k_input_tokens?: string | undefined;
  per_1k_output_tokens?: string | undefined;
  per_tool_call?: string | undefined;
  cap_per_session?: string | undefined;
  reserve: string;
}

export function priceBookFromText(t: PriceBookText): PriceBook {
  return {
    flat_per_session_micro: parseUsdToMicro(t.flat_per_session ?? "0"),
    per_minute_pico: parseRateToPico(t.per_minute ?? "0"),
    per_1k_input_tokens_pico: parseRateToPico(t.per_1k_input_tokens ?? "0"),
    per_1k_output_tokens_pico: parseRateToPico(t.per_1k_output_tokens ?? "0"),
    per_tool_call_pico: parseRateToPico(t.per_tool_call ?? "0"),
    cap_per_session_micro: t.cap_per_session === undefined ? null : parseUsdToMicro(t.cap_per_session),
    reserve_micro: parseUsdToMicro(t.reserve),
  };
}

/** Canonical text of a price book: fixed key order, exact decimals (input to the version hash). */
export function canonicalPriceBook(pb: PriceBook): string {
  return JSON.stringify([
    ["flat_per_session_micro", pb.flat_per_session_micro.toString()],
    ["per_minute_pico", pb.per_minute_pico.toString()],
    ["per_1k_input_tokens_pico", pb.per_1k_input_tokens_pico.toString()],
    ["per_1k_output_tokens_pico", pb.per_1k_output_tokens_pico.toString()],
    ["per_tool_call_pico", pb.per_tool_call_pico.toString()],
    ["cap_per_session_micro", pb.cap_per_session_micro === null ? null : pb.cap_per_session_micro.toString()],
    ["reserve_micro", pb.reserve_micro.toString()],
  ]);
}

export function priceBookFromCanonical(text: string): PriceBook {
  const entries = new Map(JSON.parse(text) as [string, string | null][]);
  const big = (k: string): bigint => {
    const v = entries.get(k);
    if (typeof v !== "string") throw new Error(`price book: missing ${k}`);
    return BigInt(v);
  };
  const cap = entries.get("cap_per_session_micro");
  return {
    flat_per_session_micro: big("flat_per_session_micro"),
    per_minute_pico: big("per_minute_pico"),
    per_1k_input_tokens_pico: big("per_1k_input_tokens_pico"),
    per_1k_output_tokens_pico: big("per_1k_output_tokens_pico"),
    per_tool_call_pico: big("per_tool_call_pico"),
    cap_per_session_micro: cap === null || cap === undefined ? null : BigInt(cap),
    reserve_micro: big("reserve_micro"),
  };
}

export interface UsageTotals {
  input_tokens: bigint;
  output_tokens: bigint;
  tool_calls: bigint;
}

export const ZERO_USAGE: UsageTotals = { input_tokens: 0n, output_tokens: 0n, tool_calls: 0n };

export type BillingMode = "shadow" | "soft" | "live";
export const BILLING_MODES: readonly BillingMode[] = ["shadow", "soft", "live"];

export interface Accrual {
  /** Exact accrued price in units of 1/PRICE_DENOMINATOR micro-USD (before the one rounding). */
  exact_units: bigint;
  /** floor(exact_units / PRICE_DENOMINATOR): the one rounding step. */
  rounded_micro: bigint;
  /** After the per-session cap: the session's price. */
  price_micro: bigint;
}

/** Price a session: f(price book, usage, billed duration). Pure, exact, monotone in every input. */
export function accrue(pb: PriceBook, usage: UsageTotals, duration_ms: bigint): Accrual {
  if (duration_ms < 0n) duration_ms = 0n;
  const perKilo = MS_PER_MINUTE / TOKENS_PER_RATE_UNIT; // 60: scales pico/1k-tokens to the common denominator
  const exact_units =
    pb.flat_per_session_micro * PICO_PER_MICRO * MS_PER_MINUTE +
    pb.per_minute_pico * duration_ms +
    pb.per_1k_input_tokens_pico * usage.input_tokens * perKilo +
    pb.per_1k_output_tokens_pico * usage.output_tokens * perKilo +
    pb.per_tool_call_pico * usage.tool_calls * MS_PER_MINUTE;
  const rounded_micro = exact_units / PRICE_DENOMINATOR; // bigint division of non-negatives = floor
  const price_micro =
    pb.cap_per_session_micro !== null && rounded_micro > pb.cap_per_session_micro
      ? pb.cap_per_session_micro
      : rounded_micro;
  return { exact_units, rounded_micro, price_micro };
}

/** The reservation held at Don: the masque's reserve, capped by the agent's own max_spend (0 = none). */
export function reservationMicro(pb: PriceBook, max_spend_micro: bigint): bigint {
  if (max_spend_micro > 0n && max_spend_micro < pb.reserve_micro) return max_spend_micro;
  return pb.reserve_micro;
}
