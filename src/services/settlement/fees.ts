/**
 * The payout fee schedule of the settlement rails (ADR 0085 "Fees"): configuration read once per
 * request, shared by the generic handlers (service.ts) and the Lightning rail's (lightning.ts).
 */
import type { Config } from "../../config.js";
import type { PayoutFeeSchedule } from "../../domain/settlement/quote.js";

/** The fee schedule of a rail (configuration; one schedule for every enabled rail today). */
export function feeSchedule(config: Config): PayoutFeeSchedule {
  return {
    fixed_fee_micro: config.PAYOUT_FIXED_FEE_MICRO,
    fee_bps: config.PAYOUT_FEE_BPS,
    minimum_net_micro: config.PAYOUT_MIN_NET_MICRO,
    quote_ttl_s: config.PAYOUT_QUOTE_TTL_S,
  };
}
