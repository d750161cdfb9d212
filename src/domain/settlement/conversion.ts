/**
 * Currency conversion between the USD ledger (micro-USD) and the bitcoin ledger (msat), for the
 * Lightning rail (issue 15 "Money"; docs/adr/0094-msat-ledger-and-conversion.md).
 *
 * Pure. A rate is millisatoshis per 1 USD as an exact decimal with at most 6 fraction digits,
 * held as `rate_e6` = rate x 10^6 (a bigint; e.g. "1052631.578947" → 1052631578947n), so
 *   msat = micro_usd x rate_e6 / 10^12
 * exactly, with ONE rounding step whose side is named by the caller. A quote fixes the rate, its
 * source and observation time, and an expiry; an expired quote is never used.
 *
 * Ledger layout (both exchange accounts are the platform's desk; their balances are the open
 * position, reported by reconcile):
 *
 *   payout post (6 linked): post, fee_post (ADR 0085), then
 *     ln outbound USD → exchange USD   net_micro          conversion
 *     ln fees USD     → exchange USD   fee_posted_micro   conversion
 *     exchange msat   → ln outbound msat   amount_msat    conversion   (what left the node)
 *     exchange msat   → ln fees msat       fee_msat       conversion   (routing fee paid)
 *   deposit credit (3 linked):
 *     ln inbound USD  → agent wallet   amount_micro   deposit      id = deposit id
 *     exchange USD    → ln inbound USD amount_micro   conversion
 *     ln inbound msat → exchange msat  amount_msat    conversion   (what arrived at the node)
 * Every conversion leg carries user_data_128 = payout / deposit id, user_data_64 = rate_e6,
 * user_data_32 = rail (lightning).
 */
import { AccountFlags, TransferFlags, type Account, type Transfer } from "tigerbeetle-node";
import { AMOUNT_MAX_MICRO, railAccountId } from "../accounts.js";
import { AccountCode, Ledger, Rail, TransferCode } from "../codes.js";
import { deterministicId, ID_MAX } from "../ids.js";
import { newAccount, newTransfer } from "../records.js";
import { depositCreditId, payoutTransferIds, railFeesAccountId, type DepositKey } from "./ids.js";
import { payoutPostPlan, type PayoutHold } from "./plans.js";

const E6 = 1_000_000n;
const E12 = 1_000_000_000_000n;
/** Largest rate accepted: 10^13 msat per USD (1 BTC = 0.01 USD); rate_e6 then fits user_data_64. */
export const RATE_MAX_E6 = 10_000_000_000_000n * E6;
/** Largest msat amount on the bitcoin ledger (2^63-1, as on ledger 1). */
export const AMOUNT_MAX_MSAT = AMOUNT_MAX_MICRO;

// ---- rates ------------------------------------------------------------------------------------

/** A rate as observed: msat per USD (x 10^6), where it came from, when (ns since the epoch). */
export interface RateObservation {
  readonly rate_e6: bigint;
  /** e.g. "operator" (configuration). At most 64 characters. */
  readonly source: string;
  readonly observed_at_ns: bigint;
}

/**
 * The rate-provider port: where conversion rates come from. The default (operatorRateProvider)
 * reads an operator-set rate from configuration and makes no network call; a market feed would
 * implement the same method. Throws when no rate can be given (the caller refuses the quote).
 */
export interface RateProvider {
  currentRate(now_ns: bigint): Promise<RateObservation>;
}

/** Thrown for a rate text that is not an exact positive decimal with <= 6 fraction digits. */
export class RateFormatError extends Error {
  constructor(readonly text: string, rule: string) {
    super(`rate ${JSON.stringify(text)}: ${rule}`);
    this.name = "RateFormatError";
  }
}

/** Parses "1052631.578947" (msat per USD) into rate_e6; throws RateFormatError. */
export function parseRateE6(text: string): bigint {
  const m = /^(\d{1,14})(?:\.(\d{1,6}))?$/.exec(text.trim());
  if (!m) throw new RateFormatError(text, "must be a positive decimal number of msat per USD with at most 6 fraction digits");
  const rate = BigInt(m[1]!) * E6 + BigInt((m[2] ?? "").padEnd(6, "0"));
  if (rate <= 0n) throw new RateFormatError(text, "must be > 0");
  if (rate > RATE_MAX_E6) throw new RateFormatError(text, "must be <= 10000000000000 msat per USD");
  return rate;
}

/** rate_e6 as the exact decimal text shown in the API (trailing fraction zeros dropped). */
export function formatRateE6(rate_e6: bigint): string {
  const int = rate_e6 / E6;
  const frac = (rate_e6 % E6).toString().padStart(6, "0").replace(/0+$/, "");
  return frac === "" ? int.toString() : `${int}.${frac}`;
}

/** The default provider: one operator-set rate from configuration, observed "now". No I/O. */
export function operatorRateProvider(rate_e6: bigint, source = "operator"): RateProvider {
  if (rate_e6 <= 0n || rate_e6 > RATE_MAX_E6) throw new RangeError(`rate_e6 must be in (0, ${RATE_MAX_E6}]`);
  return { currentRate: async (now_ns) => ({ rate_e6, source, observed_at_ns: now_ns }) };
}

/** micro-USD → msat at rate_e6, rounded down ("floor") or up ("ceil"). */
export function microToMsat(amount_micro: bigint, rate_e6: bigint, rounding: "floor" | "ceil"): bigint {
  if (amount_micro < 0n || rate_e6 <= 0n) throw new RangeError("amount_micro must be >= 0 and rate_e6 > 0");
  const n = amount_micro * rate_e6;
  return rounding === "floor" ? n / E12 : (n + E12 - 1n) / E12;
}

/** msat → micro-USD at rate_e6, rounded down or up. */
export function msatToMicro(amount_msat: bigint, rate_e6: bigint, rounding: "floor" | "ceil"): bigint {
  if (amount_msat < 0n || rate_e6 <= 0n) throw new RangeError("amount_msat must be >= 0 and rate_e6 > 0");
  const n = amount_msat * E12;
  return rounding === "floor" ? n / rate_e6 : (n + rate_e6 - 1n) / rate_e6;
}

// ---- quotes -----------------------------------------------------------------------------------

/** A conversion quote: amount_micro ⇄ amount_msat at a recorded rate, usable while now < expire. */
export interface ConversionQuote {
  readonly amount_micro: bigint;
  readonly amount_msat: bigint;
  readonly rate: RateObservation;
  readonly expire_time_ns: bigint;
}

export type ConversionQuoteResult =
  | { ok: true; quote: ConversionQuote }
  | { ok: false; field: "amount_micro"; rule: string };

/**
 * Quotes `amount_micro` in msat. Rounding favours the platform by at most 1 msat and says so:
 * a payout (the platform sends msat) rounds DOWN, a deposit (the platform receives msat) rounds
 * UP. Refuses an amount that converts to 0 msat or above 2^63-1 msat.
 */
export function quoteConversion(args: {
  amount_micro: bigint;
  rate: RateObservation;
  now_ns: bigint;
  ttl_s: number;
  direction: "payout" | "deposit";
}): ConversionQuoteResult {
  if (args.amount_micro <= 0n || args.amount_micro > AMOUNT_MAX_MICRO) return { ok: false, field: "amount_micro", rule: "must be in [1, 2^63-1]" };
  if (!(args.ttl_s >= 1)) throw new RangeError("ttl_s must be >= 1");
  const amount_msat = microToMsat(args.amount_micro, args.rate.rate_e6, args.direction === "payout" ? "floor" : "ceil");
  if (amount_msat <= 0n) return { ok: false, field: "amount_micro", rule: `converts to 0 msat at ${formatRateE6(args.rate.rate_e6)} msat per USD` };
  if (amount_msat > AMOUNT_MAX_MSAT) return { ok: false, field: "amount_micro", rule: "converts to more than 2^63-1 msat" };
  return { ok: true, quote: { amount_micro: args.amount_micro, amount_msat, rate: args.rate, expire_time_ns: args.now_ns + BigInt(args.ttl_s) * 1_000_000_000n } };
}

/** Usable while now_ns < expire_time_ns; an expired quote is never used. */
export function isConversionQuoteUsable(q: { expire_time_ns: bigint }, now_ns: bigint): boolean {
  return now_ns < q.expire_time_ns;
}

// ---- accounts ---------------------------------------------------------------------------------

/** The exchange account of a ledger (code exchange). */
export function exchangeAccountId(ledger: number): bigint {
  return deterministicId("account", "exchange", ledger);
}

export type MsatRailAccountKind = "rail_inbound" | "rail_outbound" | "rail_fees";

/** The Lightning rail's accounts on the msat ledger (inbound, outbound, routing fees). */
export function msatRailAccountId(kind: MsatRailAccountKind): bigint {
  return deterministicId("account", `${kind}_msat`, "lightning");
}

const MSAT_CODES: Record<MsatRailAccountKind, number> = {
  rail_inbound: AccountCode.rail_inbound,
  rail_outbound: AccountCode.rail_outbound,
  rail_fees: AccountCode.rail_fees,
};

/**
 * Accounts conversion needs, created at start-up beside the platform accounts (idempotent): the
 * exchange account on each ledger and the Lightning rail's three msat accounts. All unbounded
 * platform accounts (flags none): an exchange position may be either sign.
 */
export function conversionAccounts(): Account[] {
  return [
    newAccount({ id: exchangeAccountId(Ledger.usd_micro), ledger: Ledger.usd_micro, code: AccountCode.exchange, flags: AccountFlags.none }),
    newAccount({ id: exchangeAccountId(Ledger.btc_msat), ledger: Ledger.btc_msat, code: AccountCode.exchange, flags: AccountFlags.none }),
    ...(Object.keys(MSAT_CODES) as MsatRailAccountKind[]).map((k) =>
      newAccount({ id: msatRailAccountId(k), ledger: Ledger.btc_msat, code: MSAT_CODES[k], flags: AccountFlags.none, user_data_32: Rail.lightning }),
    ),
  ];
}

// ---- plans ------------------------------------------------------------------------------------

/** Top-byte tags XORed into a payout / deposit id for its conversion legs (after ADR 0085's 0x11-0x15). */
export const CONVERSION_ID_TAG = {
  usd: 0x21n << 120n,
  fee_usd: 0x22n << 120n,
  msat: 0x23n << 120n,
  fee_msat: 0x24n << 120n,
} as const;

function tagged(id: bigint, tag: bigint, name: string): bigint {
  const t = id ^ tag;
  return t === 0n || t === ID_MAX ? deterministicId("transfer", name, id) : t;
}

/** Ids of a payout's or deposit's conversion legs. */
export function conversionTransferIds(id: bigint): { usd: bigint; fee_usd: bigint; msat: bigint; fee_msat: bigint } {
  return {
    usd: tagged(id, CONVERSION_ID_TAG.usd, "conversion_usd"),
    fee_usd: tagged(id, CONVERSION_ID_TAG.fee_usd, "conversion_fee_usd"),
    msat: tagged(id, CONVERSION_ID_TAG.msat, "conversion_msat"),
    fee_msat: tagged(id, CONVERSION_ID_TAG.fee_msat, "conversion_fee_msat"),
  };
}

function assertRange(field: string, v: bigint, min: bigint, max: bigint): void {
  if (v < min || v > max) throw new RangeError(`${field}: must be in [${min}, ${max}], got ${v}`);
}

/**
 * Posts a Lightning payout that the node reported SUCCEEDED, with its conversion, as ONE linked
 * chain of 6 transfers across both ledgers (all or nothing): the USD post of the hold (net) and
 * of the actual routing fee (`fee_posted_micro` <= the held cap; the rest returns to the author),
 * both moved into the USD exchange account, and the msat that left the node (`amount_msat` paid
 * to the payee, `fee_msat` to routers) out of the msat exchange account. Throws RangeError on
 * amounts out of range. Deterministic ids: a retry answers `exists`.
 */
export function lightningPayoutPostPlan(
  hold: PayoutHold,
  args: { fee_posted_micro: bigint; amount_msat: bigint; fee_msat: bigint; rate_e6: bigint },
): Transfer[] {
  if (hold.rail !== "lightning") throw new Error(`lightningPayoutPostPlan: payout ${hold.payout_id} is on rail ${hold.rail}`);
  assertRange("amount_msat", args.amount_msat, 1n, AMOUNT_MAX_MSAT);
  assertRange("fee_msat", args.fee_msat, 0n, AMOUNT_MAX_MSAT);
  assertRange("rate_e6", args.rate_e6, 1n, RATE_MAX_E6);
  const [post, fee_post] = payoutPostPlan(hold, { fee_posted_micro: args.fee_posted_micro });
  const ids = conversionTransferIds(hold.payout_id);
  const common = { user_data_128: hold.payout_id, user_data_64: args.rate_e6, user_data_32: Rail.lightning, code: TransferCode.conversion, flags: TransferFlags.linked };
  const usd = { ...common, ledger: Ledger.usd_micro, credit_account_id: exchangeAccountId(Ledger.usd_micro) };
  const msat = { ...common, ledger: Ledger.btc_msat, debit_account_id: exchangeAccountId(Ledger.btc_msat) };
  return [
    { ...post!, flags: TransferFlags.post_pending_transfer | TransferFlags.linked },
    { ...fee_post!, flags: TransferFlags.post_pending_transfer | TransferFlags.linked },
    newTransfer({ ...usd, id: ids.usd, debit_account_id: railAccountId("rail_outbound", "lightning"), amount: hold.net_micro }),
    newTransfer({ ...usd, id: ids.fee_usd, debit_account_id: railFeesAccountId("lightning"), amount: args.fee_posted_micro }),
    newTransfer({ ...msat, id: ids.msat, credit_account_id: msatRailAccountId("rail_outbound"), amount: args.amount_msat }),
    newTransfer({ ...msat, id: ids.fee_msat, credit_account_id: msatRailAccountId("rail_fees"), amount: args.fee_msat, flags: TransferFlags.none }),
  ];
}

/**
 * The routing fee the author pays, in micro-USD: the fee paid in msat converted at the quote's
 * rate, rounded UP (the platform never pays routing for the author), and never more than the
 * cap held (`fee_held_micro`). Returns null when the fee paid exceeds the cap: the adapter sent
 * more than it was allowed, an alarm (the platform absorbs the difference in msat).
 */
export function routingFeeMicro(fee_msat: bigint, rate_e6: bigint, fee_held_micro: bigint): { fee_posted_micro: bigint; within_cap: boolean } {
  const fee = msatToMicro(fee_msat, rate_e6, "ceil");
  return fee <= fee_held_micro ? { fee_posted_micro: fee, within_cap: true } : { fee_posted_micro: fee_held_micro, within_cap: false };
}

/** The routing fee cap in msat that a held fee of `fee_micro` pays for at `rate_e6` (rounded down). */
export function routingFeeCapMsat(fee_micro: bigint, rate_e6: bigint): bigint {
  return microToMsat(fee_micro, rate_e6, "floor");
}

/**
 * Credits a settled Lightning deposit invoice at its quoted rate, as ONE linked chain of 3
 * transfers: the credit of `amount_micro` to the wallet (id = the deposit id, so a replay answers
 * `exists`: credited once per payment hash), the USD leaving the exchange account, and the msat
 * that arrived at the node (`amount_msat` received, >= the quoted msat) entering it.
 */
export function lightningDepositCreditPlan(args: { key: DepositKey; wallet_id: bigint; amount_micro: bigint; amount_msat: bigint; rate_e6: bigint }): Transfer[] {
  if (args.key.rail !== "lightning") throw new Error("lightningDepositCreditPlan: not a Lightning deposit key");
  assertRange("amount_micro", args.amount_micro, 1n, AMOUNT_MAX_MICRO);
  assertRange("amount_msat", args.amount_msat, 1n, AMOUNT_MAX_MSAT);
  assertRange("rate_e6", args.rate_e6, 1n, RATE_MAX_E6);
  const id = depositCreditId(args.key);
  const ids = conversionTransferIds(id);
  const inbound_usd = railAccountId("rail_inbound", "lightning");
  const common = { user_data_128: id, user_data_32: Rail.lightning, flags: TransferFlags.linked };
  return [
    newTransfer({ ...common, id, ledger: Ledger.usd_micro, code: TransferCode.deposit, debit_account_id: inbound_usd, credit_account_id: args.wallet_id, amount: args.amount_micro }),
    newTransfer({
      ...common,
      id: ids.usd,
      ledger: Ledger.usd_micro,
      code: TransferCode.conversion,
      user_data_64: args.rate_e6,
      debit_account_id: exchangeAccountId(Ledger.usd_micro),
      credit_account_id: inbound_usd,
      amount: args.amount_micro,
    }),
    newTransfer({
      ...common,
      id: ids.msat,
      ledger: Ledger.btc_msat,
      code: TransferCode.conversion,
      user_data_64: args.rate_e6,
      debit_account_id: msatRailAccountId("rail_inbound"),
      credit_account_id: exchangeAccountId(Ledger.btc_msat),
      amount: args.amount_msat,
      flags: TransferFlags.none,
    }),
  ];
}

// ---- position ---------------------------------------------------------------------------------

/** The exchange desk's open position: USD taken in net of USD paid out, msat paid out net of msat taken in. */
export interface ExchangePosition {
  /** credits - debits (posted) of the USD exchange account: USD the desk holds (may be < 0). */
  usd_micro: bigint;
  /** debits - credits (posted) of the msat exchange account: msat the desk gave out net (may be < 0). */
  msat_out: bigint;
}

/** The position from the two exchange accounts as read from the ledger (USD first, then msat). */
export function exchangePosition(usd: Account, msat: Account): ExchangePosition {
  if (usd.code !== AccountCode.exchange || usd.ledger !== Ledger.usd_micro) throw new Error("not the USD exchange account");
  if (msat.code !== AccountCode.exchange || msat.ledger !== Ledger.btc_msat) throw new Error("not the msat exchange account");
  return { usd_micro: usd.credits_posted - usd.debits_posted, msat_out: msat.debits_posted - msat.credits_posted };
}

// ---- reading the ledger's answers ---------------------------------------------------------------

export type ChainOutcome =
  | { kind: "applied" | "exists" }
  | { kind: "failed"; statuses: string[] };

/**
 * A linked chain's answer: all created, or already applied by an earlier try (the first event
 * `exists`, the rest `exists` or `linked_event_failed`), or failed with every status named.
 */
export function linkedChainOutcome(results: readonly { status: number }[], size: number, names: Record<number, string>): ChainOutcome {
  if (results.length !== size) throw new Error(`expected ${size} results, got ${results.length}`);
  const name = (s: number) => names[s] ?? String(s);
  if (results.every((r) => name(r.status) === "created")) return { kind: "applied" };
  if (name(results[0]!.status) === "exists" && results.slice(1).every((r) => ["exists", "linked_event_failed"].includes(name(r.status)))) return { kind: "exists" };
  return { kind: "failed", statuses: results.map((r) => name(r.status)) };
}
