/**
 * A session's revenue-rule pin as the ledger carries it (issue 20, ADR 0124): on the session's
 * usage meter accounts, which Don creates before the hold (so a session the ledger has always
 * has its pin, and the pin costs no control-plane write). Pure: encoding only.
 *
 * - `user_data_32` = scope code << 16 | (platform_fee_bps + 1): 0 means "no pin here" (meters
 *   created before ADR 0124, or by a path that only needs the account to exist);
 * - `user_data_64` = the pinned rule's `activate_time_ns`.
 * The rule itself is the rule of that scope (the masque's name, its author, or the platform,
 * from the session's price book) that was activated at `activate_time_ns`: one rule per scope is
 * active at a time (ADR 0100), so the pair names it.
 */
import type { ScopeKind } from "./revenue-rules.js";

/** The money-relevant part of a pinned rule, and what identifies the rule. */
export interface LedgerRulePin {
  scope_kind: ScopeKind;
  /** The platform's share, basis points (0..10000). */
  platform_fee_bps: number;
  /** When the pinned rule became active (ns since the epoch, the activating daemon's clock). */
  activate_time_ns: bigint;
}

const SCOPE_CODE: Record<ScopeKind, number> = { masque: 1, author: 2, platform: 3 };
const SCOPE_BY_CODE: Record<number, ScopeKind> = { 1: "masque", 2: "author", 3: "platform" };
const FEE_MASK = 0xffff;
const U64_MAX = (1n << 64n) - 1n;

/** The user_data fields that carry `pin`. Throws RangeError on a fee outside 0..10000 or a time outside u64. */
export function encodeRulePin(pin: LedgerRulePin): { user_data_32: number; user_data_64: bigint } {
  if (!Number.isInteger(pin.platform_fee_bps) || pin.platform_fee_bps < 0 || pin.platform_fee_bps > 10_000) {
    throw new RangeError(`platform_fee_bps ${pin.platform_fee_bps} outside 0..10000`);
  }
  if (pin.activate_time_ns < 0n || pin.activate_time_ns > U64_MAX) throw new RangeError(`activate_time_ns ${pin.activate_time_ns} outside u64`);
  return { user_data_32: ((SCOPE_CODE[pin.scope_kind] << 16) | (pin.platform_fee_bps + 1)) >>> 0, user_data_64: pin.activate_time_ns };
}

/** The pin an account carries, or null when it carries none (user_data_32 = 0). Throws on a malformed tag. */
export function decodeRulePin(a: { user_data_32: number; user_data_64: bigint }): LedgerRulePin | null {
  if (a.user_data_32 === 0) return null;
  const scope_kind = SCOPE_BY_CODE[a.user_data_32 >>> 16];
  const fee = (a.user_data_32 & FEE_MASK) - 1;
  if (scope_kind === undefined || fee < 0 || fee > 10_000) throw new RangeError(`malformed rule pin tag ${a.user_data_32}`);
  return { scope_kind, platform_fee_bps: fee, activate_time_ns: a.user_data_64 };
}
