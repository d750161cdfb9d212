/**
 * Payout quotes: amount, fee, net and expiry, in bigint micro-USD (issue 13: "A payout request
 * returns a quote (amount, fee, net, expiry) that the author confirms; an expired quote is
 * refused"; "Rail fees: decide who pays gas ... show it in the quote. Minimum payout amount
 * configurable"). Fee decision: docs/adr/0085-settlement-framework.md.
 *
 * Pure: the caller passes the author's available earnings (read from the ledger) and the clock.
 * The quote's availability check is advisory; the ledger hold is what refuses an overdraw.
 */
import { AMOUNT_MAX_MICRO } from "../accounts.js";

/** One rail's payout terms (configuration, validated at the edge). */
export interface PayoutFeeSchedule {
  /** Fixed fee per payout, micro-USD, >= 0. */
  fixed_fee_micro: bigint;
  /** Proportional fee, basis points of the amount (0-10000), rounded UP to a whole micro-USD. */
  fee_bps: number;
  /** Smallest net payout accepted, micro-USD, >= 1. */
  minimum_net_micro: bigint;
  /** Quote validity, seconds, >= 1. */
  quote_ttl_s: number;
}

/** What the author asked for: an amount (fee included) or everything available. */
export type PayoutAmountRequest = { amount_micro: bigint } | { all_available: true };

/** A quote: amount_micro leaves earnings, fee_micro to the rail's fees, net_micro is paid out. */
export interface PayoutQuote {
  amount_micro: bigint;
  fee_micro: bigint;
  net_micro: bigint;
  /** Exclusive: the quote is usable while now_ns < expire_time_ns. */
  expire_time_ns: bigint;
}

/** Why a quote was refused; `reason` is the ErrorInfo reason the service returns. */
export type QuoteRefusal =
  | { reason: "INVALID_ARGUMENT"; field: "amount_micro"; rule: string }
  | { reason: "INSUFFICIENT_FUNDS"; available_micro: bigint; required_micro: bigint }
  | { reason: "FEE_EXCEEDS_AMOUNT"; amount_micro: bigint; fee_micro: bigint }
  | { reason: "AMOUNT_BELOW_MINIMUM"; net_micro: bigint; minimum_net_micro: bigint };

export type QuoteResult = { ok: true; quote: PayoutQuote } | { ok: false; refusal: QuoteRefusal };

const NS_PER_S = 1_000_000_000n;
const BPS_PER_UNIT = 10_000n;

/** Throws on a schedule that breaks its documented ranges (a configuration error). */
export function assertFeeSchedule(s: PayoutFeeSchedule): void {
  if (s.fixed_fee_micro < 0n || s.fixed_fee_micro > AMOUNT_MAX_MICRO) throw new RangeError("fixed_fee_micro: must be in [0, 2^63-1]");
  if (!Number.isInteger(s.fee_bps) || s.fee_bps < 0 || s.fee_bps > 10_000) throw new RangeError("fee_bps: must be an integer in [0, 10000]");
  if (s.minimum_net_micro < 1n || s.minimum_net_micro > AMOUNT_MAX_MICRO) throw new RangeError("minimum_net_micro: must be in [1, 2^63-1]");
  if (!Number.isInteger(s.quote_ttl_s) || s.quote_ttl_s < 1) throw new RangeError("quote_ttl_s: must be an integer >= 1");
}

/** The fee for a gross amount: fixed + ceil(amount × bps / 10000). */
export function payoutFeeMicro(amount_micro: bigint, s: PayoutFeeSchedule): bigint {
  const proportional = (amount_micro * BigInt(s.fee_bps) + BPS_PER_UNIT - 1n) / BPS_PER_UNIT;
  return s.fixed_fee_micro + proportional;
}

/**
 * Quotes a payout. Checks, in order: the amount is in (0, 2^63-1]; it is covered by
 * `available_micro` (all_available takes exactly `available_micro`, refused when that is <= 0);
 * the fee is smaller than the amount (FEE_EXCEEDS_AMOUNT otherwise); the net reaches the
 * minimum (AMOUNT_BELOW_MINIMUM). Invariant: amount = fee + net, 0 < net <= amount.
 */
export function computePayoutQuote(
  request: PayoutAmountRequest,
  available_micro: bigint,
  schedule: PayoutFeeSchedule,
  now_ns: bigint,
): QuoteResult {
  assertFeeSchedule(schedule);
  let amount_micro: bigint;
  if ("all_available" in request) {
    if (available_micro <= 0n) {
      return { ok: false, refusal: { reason: "INSUFFICIENT_FUNDS", available_micro, required_micro: schedule.minimum_net_micro } };
    }
    amount_micro = available_micro > AMOUNT_MAX_MICRO ? AMOUNT_MAX_MICRO : available_micro;
  } else {
    amount_micro = request.amount_micro;
    if (amount_micro <= 0n || amount_micro > AMOUNT_MAX_MICRO) {
      return { ok: false, refusal: { reason: "INVALID_ARGUMENT", field: "amount_micro", rule: "must be > 0 and <= 2^63-1" } };
    }
    if (amount_micro > available_micro) {
      return { ok: false, refusal: { reason: "INSUFFICIENT_FUNDS", available_micro, required_micro: amount_micro } };
    }
  }
  const fee_micro = payoutFeeMicro(amount_micro, schedule);
  if (fee_micro >= amount_micro) {
    return { ok: false, refusal: { reason: "FEE_EXCEEDS_AMOUNT", amount_micro, fee_micro } };
  }
  const net_micro = amount_micro - fee_micro;
  if (net_micro < schedule.minimum_net_micro) {
    return { ok: false, refusal: { reason: "AMOUNT_BELOW_MINIMUM", net_micro, minimum_net_micro: schedule.minimum_net_micro } };
  }
  if (fee_micro + net_micro !== amount_micro || net_micro <= 0n) throw new Error("quote invariant broken: amount = fee + net, net > 0");
  return {
    ok: true,
    quote: { amount_micro, fee_micro, net_micro, expire_time_ns: now_ns + BigInt(schedule.quote_ttl_s) * NS_PER_S },
  };
}

/** Whether a quote can still be confirmed at `now_ns` (ConfirmPayout refuses QUOTE_EXPIRED otherwise). */
export function isQuoteUsable(quote: Pick<PayoutQuote, "expire_time_ns">, now_ns: bigint): boolean {
  return now_ns < quote.expire_time_ns;
}
