/**
 * Settlement of a session at Doff and the author / platform revenue split (ADR 0030).
 *
 * Split rule: platform fee = floor(base x fee_bps / 10,000); the author gets base - fee. So the
 * split's rounding remainder (< 1 micro-USD) always goes to the AUTHOR. Zero-sum by construction.
 *
 * Billing modes (seed 003):
 * - live:   charged = min(price, hold); anything above the hold is NOT charged (`unbilled`).
 * - soft:   posted = min(price, hold); the overrun price - hold is charged as agent DEBT, and the
 *           author and platform are paid on the full price.
 * - shadow: nothing is held and nothing moves; the would-be split is computed and reported.
 * Always: author + platform + refund = hold + debt; in live mode (debt = 0) exactly the hold.
 */
import type { BillingMode } from "./pricing.js";

export const BPS_DENOMINATOR = 10_000n;

export interface RevenueSplit {
  author_micro: bigint;
  platform_micro: bigint;
}

export function splitRevenue(base_micro: bigint, fee_bps: bigint): RevenueSplit {
  if (base_micro < 0n) throw new RangeError("split base must be non-negative");
  if (fee_bps < 0n || fee_bps > BPS_DENOMINATOR) throw new RangeError("fee_bps must be within 0..10000");
  const platform_micro = (base_micro * fee_bps) / BPS_DENOMINATOR;
  return { author_micro: base_micro - platform_micro, platform_micro };
}

export interface Settlement {
  mode: BillingMode;
  /** The session's price (after cap), whatever the mode. */
  price_micro: bigint;
  /** Held at Don (0 in shadow mode). */
  hold_micro: bigint;
  /** Amount the pending hold is posted for (agent wallet -> escrow). */
  posted_micro: bigint;
  /** Soft mode overrun charged as agent debt (agent debt -> escrow). */
  debt_micro: bigint;
  /** Returned to the agent: hold - posted. */
  refund_micro: bigint;
  /** Price not charged to anyone (live mode above the hold; everything in shadow mode). */
  unbilled_micro: bigint;
  /** Money actually moved to the author and the platform. */
  author_micro: bigint;
  platform_micro: bigint;
  /** The split that WOULD apply to the full price (equals the moved split except in shadow/live overrun). */
  notional_author_micro: bigint;
  notional_platform_micro: bigint;
}

export function settle(mode: BillingMode, price_micro: bigint, hold_micro: bigint, fee_bps: bigint): Settlement {
  if (price_micro < 0n || hold_micro < 0n) throw new RangeError("price and hold must be non-negative");
  const notional = splitRevenue(price_micro, fee_bps);
  if (mode === "shadow") {
    return {
      mode,
      price_micro,
      hold_micro,
      posted_micro: 0n,
      debt_micro: 0n,
      refund_micro: hold_micro,
      unbilled_micro: price_micro,
      author_micro: 0n,
      platform_micro: 0n,
      notional_author_micro: notional.author_micro,
      notional_platform_micro: notional.platform_micro,
    };
  }
  const posted_micro = price_micro < hold_micro ? price_micro : hold_micro;
  const debt_micro = mode === "soft" ? price_micro - posted_micro : 0n;
  const moved = splitRevenue(posted_micro + debt_micro, fee_bps);
  return {
    mode,
    price_micro,
    hold_micro,
    posted_micro,
    debt_micro,
    refund_micro: hold_micro - posted_micro,
    unbilled_micro: price_micro - posted_micro - debt_micro,
    author_micro: moved.author_micro,
    platform_micro: moved.platform_micro,
    notional_author_micro: notional.author_micro,
    notional_platform_micro: notional.platform_micro,
  };
}
