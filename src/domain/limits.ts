/**
 * Spending limits inside the ledger (issue 17, docs/adr/0110-spending-limits-in-the-ledger.md).
 * Pure: ids, accounts and plans of ledger events; no I/O.
 *
 * Everything lives on ledger `spend_limit` (91, micro-USD, never money):
 * - a CAP is the available balance of a cap account (`debits_must_not_exceed_credits`): an
 *   agent's daily cap, an agent's per-session cap, the platform's largest peer transfer and its
 *   daily peer volume. AMOUNT_MAX_MICRO means "no cap". Setting a cap is one linked chain that
 *   empties the account (balancing debit) and funds it with the new value, so it is atomic
 *   whatever the number of daemons; an agent's own change first probes that the new value is
 *   not above the current one (lower only), inside the same chain.
 * - a DAY account per (agent, UTC day) counts what the agent spent or holds that day: a spend
 *   debits it (posted, same amount as the spend, in the spend's own linked chain), an unused
 *   reservation given back credits it. Day accounts have no balance flag: a cap may be lowered
 *   below what was already spent.
 * - the CHECK is TigerBeetle's balance-invariant-transfers recipe
 *   (https://docs.tigerbeetle.com/coding/recipes/balance-invariant-transfers/) with the cap lent
 *   in for the test: right after the day debit, (1) cap -> day, pending, balancing_debit: lends
 *   the whole cap c as pending credits of the day account; (2) control -> day, pending,
 *   balancing_credit: its amount is the day's debits_posted - credits_posted - credits_pending =
 *   spent - released - c, i.e. how far the day is over the cap (0 when within); the control
 *   account has `debits_must_not_exceed_credits` and a zero balance, so any non-zero amount
 *   fails the whole chain with `exceeds_credits`; (3), (4) void both. Net effect: nothing but
 *   the day debit; the ledger compared "spent today" with the cap as it is at that instant.
 * The daily window is the UTC day of the daemon's clock at the spend (ADR 0110).
 */
import { AccountFlags, TransferFlags, type Account, type Transfer } from "tigerbeetle-node";
import { AMOUNT_MAX_MICRO } from "./accounts.js";
import { AccountCode, Ledger, TransferCode } from "./codes.js";
import { deterministicId, idToHex } from "./ids.js";
import { newAccount, newTransfer } from "./records.js";

export const NS_PER_DAY = 86_400n * 1_000_000_000n;
/** The value of a cap account that means "no cap". */
export const NO_CAP_MICRO = AMOUNT_MAX_MICRO;

/** The UTC day (days since 1970-01-01) of `now_ns`. */
export function utcDay(now_ns: bigint): bigint {
  if (now_ns < 0n) throw new RangeError("now_ns must be >= 0");
  return now_ns / NS_PER_DAY;
}
/** When the daily cap of `day` resets: the next UTC midnight, ns since the epoch. */
export function dayResetNs(day: bigint): bigint {
  return (day + 1n) * NS_PER_DAY;
}

// ---- ids -----------------------------------------------------------------------------------------

export type CapKind = "daily" | "session" | "peer_max" | "peer_daily";
export type DayKind = "spend" | "peer";

const OPERATOR_ID = deterministicId("account", "limit_operator", "platform");
const CONTROL_ID = deterministicId("account", "limit_control", "platform");
export const limitOperatorId = (): bigint => OPERATOR_ID;
export const limitControlId = (): bigint => CONTROL_ID;

/** Memoized id derivations (each is a SHA-256; Don and peer transfers derive the same few). */
const ID_MEMO_MAX = 100_000;
/**
 * One memo per id family, keyed by the wallet id itself (no string key: turning a 128-bit id
 * into a decimal string on every Don cost more than the lookup; issue 20, ADR 0124). Day
 * accounts remember the wallet's latest day only.
 */
const capMemo = { daily: new Map<bigint, bigint>(), session: new Map<bigint, bigint>() };
const dayMemo = { spend: new Map<bigint, { day: bigint; id: bigint }>(), peer: new Map<bigint, { day: bigint; id: bigint }>() };
function bounded<K, V>(m: Map<K, V>, k: K, v: V): V {
  if (m.size >= ID_MEMO_MAX) m.clear();
  m.set(k, v);
  return v;
}

/** An agent's cap account, keyed by the agent's wallet id (so the hold alone names it). */
export function agentCapId(kind: "daily" | "session", wallet_id: bigint): bigint {
  const memo = capMemo[kind];
  return memo.get(wallet_id) ?? bounded(memo, wallet_id, deterministicId("account", `agent_${kind}_cap`, idToHex(wallet_id)));
}
/** A platform policy cap account. */
export function platformCapId(kind: "peer_max" | "peer_daily"): bigint {
  return deterministicId("account", kind, "platform");
}
/** An agent's day account of `kind` for UTC day `day`. */
export function dayAccountId(kind: DayKind, wallet_id: bigint, day: bigint): bigint {
  const memo = dayMemo[kind];
  const hit = memo.get(wallet_id);
  if (hit !== undefined && hit.day === day) return hit.id;
  return bounded(memo, wallet_id, { day, id: deterministicId("account", `day_${kind}`, idToHex(wallet_id), day) }).id;
}

const CAP_CODE: Record<CapKind, number> = {
  daily: AccountCode.agent_daily_cap,
  session: AccountCode.agent_session_cap,
  peer_max: AccountCode.peer_transfer_max,
  peer_daily: AccountCode.peer_daily_volume,
};

// ---- accounts ------------------------------------------------------------------------------------

const L = Ledger.spend_limit;

/** The platform's limit accounts (operator, control, the two peer policy caps). */
export function platformLimitAccounts(): Account[] {
  return [
    newAccount({ id: limitOperatorId(), ledger: L, code: AccountCode.limit_operator }),
    newAccount({ id: limitControlId(), ledger: L, code: AccountCode.limit_control, flags: AccountFlags.debits_must_not_exceed_credits }),
    newAccount({ id: platformCapId("peer_max"), ledger: L, code: CAP_CODE.peer_max, flags: AccountFlags.debits_must_not_exceed_credits | AccountFlags.history }),
    newAccount({ id: platformCapId("peer_daily"), ledger: L, code: CAP_CODE.peer_daily, flags: AccountFlags.debits_must_not_exceed_credits | AccountFlags.history }),
  ];
}

/** An agent's two cap accounts (daily, per session); user_data_128 = the wallet id. */
export function agentCapAccounts(wallet_id: bigint): Account[] {
  return (["daily", "session"] as const).map((k) =>
    newAccount({
      id: agentCapId(k, wallet_id),
      ledger: L,
      code: CAP_CODE[k],
      flags: AccountFlags.debits_must_not_exceed_credits | AccountFlags.history,
      user_data_128: wallet_id,
    }),
  );
}

/** An agent's day account (no balance flag: a cap may be lowered below what was spent). */
export function dayAccount(kind: DayKind, wallet_id: bigint, day: bigint): Account {
  return newAccount({
    id: dayAccountId(kind, wallet_id, day),
    ledger: L,
    code: kind === "spend" ? AccountCode.agent_day_spend : AccountCode.agent_day_peer,
    flags: AccountFlags.history,
    user_data_128: wallet_id,
    user_data_64: day,
  });
}

/**
 * The one-time funding of a cap account with its default (fixed id: every daemon may submit it
 * before touching the cap; the ledger creates it once, `exists` after). Must complete before
 * any other transfer names the cap account.
 */
export function capFunding(cap_account_id: bigint, default_micro: bigint): Transfer {
  assertMicro(default_micro, "default cap");
  return newTransfer({
    id: deterministicId("transfer", "limit_funding", idToHex(cap_account_id)),
    debit_account_id: limitOperatorId(),
    credit_account_id: cap_account_id,
    amount: default_micro,
    ledger: L,
    code: TransferCode.limit_set,
  });
}

// ---- setting a cap -------------------------------------------------------------------------------

/**
 * Set the cap account to `value_micro`, atomically: [probe (lower only) ,] empty it (balancing
 * debit), fund it with the value. `nonce` makes the chain's ids unique per call (setting to an
 * absolute value is idempotent in effect). With `lower_only`, the first event is a pending
 * cap -> operator transfer of `value_micro` voided right after: it fails with `exceeds_credits`
 * when the value is above the current cap, and the chain with it.
 */
export function planSetCap(cap_account_id: bigint, value_micro: bigint, nonce: string, lower_only: boolean): Transfer[] {
  assertMicro(value_micro, "cap");
  const id = (i: number) => deterministicId("transfer", "limit_set", idToHex(cap_account_id), nonce, i);
  const base = { ledger: L, code: TransferCode.limit_set };
  const chain: Transfer[] = [];
  if (lower_only) {
    chain.push(
      newTransfer({ ...base, id: id(0), debit_account_id: cap_account_id, credit_account_id: limitOperatorId(), amount: value_micro, flags: TransferFlags.pending }),
      newTransfer({ ...base, id: id(1), pending_id: id(0), flags: TransferFlags.void_pending_transfer }),
    );
  }
  chain.push(
    newTransfer({ ...base, id: id(2), debit_account_id: cap_account_id, credit_account_id: limitOperatorId(), amount: AMOUNT_MAX_MICRO, flags: TransferFlags.balancing_debit }),
    newTransfer({ ...base, id: id(3), debit_account_id: limitOperatorId(), credit_account_id: cap_account_id, amount: value_micro }),
  );
  return link(chain);
}

/** Index of the lower-only probe in a planSetCap chain (its failure: the value is a raise). */
export const SET_CAP_PROBE_INDEX = 0;

// ---- spending against caps -----------------------------------------------------------------------

/** Top-byte tags XORed into the spend's own id to name its limit transfers (distinct from ADR 0032's). */
const TAG = {
  day_spend: 0xa1n,
  lend: 0xa2n,
  probe: 0xa3n,
  void_lend: 0xa4n,
  void_probe: 0xa5n,
  max_probe: 0xa6n,
  max_void: 0xa7n,
  release: 0xa8n,
} as const;
/** Tag families: the spend itself, a soft-mode debt at Doff, the peer volume of a peer transfer. */
export const FAMILY = { spend: 0x00n, debt: 0x10n, peer: 0x20n } as const;
export type Family = keyof typeof FAMILY;

/** (tag + family) << 120 for every pair, computed once (BigInt shifts allocate). */
const TAG_MASK = Object.fromEntries(
  Object.entries(FAMILY).map(([f, fv]) => [f, Object.fromEntries(Object.entries(TAG).map(([t, tv]) => [t, (tv + fv) << 120n]))]),
) as Record<Family, Record<keyof typeof TAG, bigint>>;

/** The id of limit transfer `tag` of family `family` for the spend `base_id`. */
export function limitTransferId(base_id: bigint, family: Family, tag: keyof typeof TAG): bigint {
  const id = base_id ^ TAG_MASK[family][tag];
  return id === 0n || id === (1n << 128n) - 1n ? deterministicId("transfer", "limit", idToHex(base_id), family, tag) : id;
}

export interface DayCheck {
  /** The spend this counts (its id names the limit transfers; its amount is `amount_micro`). */
  base_id: bigint;
  family: Family;
  day_account_id: bigint;
  cap_account_id: bigint;
  amount_micro: bigint;
  /** user_data_128 of the day debit (the session id, the peer transfer id). */
  user_data_128: bigint;
}

/**
 * Count `amount_micro` on the day account and check the day against the cap (five events, all
 * `linked`: the caller's chain continues after them). See the file comment for the recipe.
 * The check's failing event is the probe (index 2 of these five): `exceeds_credits`.
 */
export function planDayCheck(c: DayCheck): Transfer[] {
  assertMicro(c.amount_micro, "spend");
  const m = TAG_MASK[c.family];
  const lend = c.base_id ^ m.lend;
  const probe = c.base_id ^ m.probe;
  if (isReserved(lend) || isReserved(probe) || isReserved(c.base_id ^ m.day_spend) || isReserved(c.base_id ^ m.void_lend) || isReserved(c.base_id ^ m.void_probe)) {
    return planDayCheckSlow(c);
  }
  const P = TransferFlags.pending;
  const V = TransferFlags.void_pending_transfer;
  const K = TransferCode.limit_check;
  return link(
    [
      limitEvent(c.base_id ^ m.day_spend, c.day_account_id, OPERATOR_ID, c.amount_micro, 0n, c.user_data_128, TransferCode.limit_spend, 0),
      limitEvent(lend, c.cap_account_id, c.day_account_id, AMOUNT_MAX_MICRO, 0n, 0n, K, P | TransferFlags.balancing_debit),
      limitEvent(probe, CONTROL_ID, c.day_account_id, AMOUNT_MAX_MICRO, 0n, 0n, K, P | TransferFlags.balancing_credit),
      limitEvent(c.base_id ^ m.void_lend, 0n, 0n, 0n, lend, 0n, K, V),
      limitEvent(c.base_id ^ m.void_probe, 0n, 0n, 0n, probe, 0n, K, V),
    ],
    true,
  );
}

const U128_MAX = (1n << 128n) - 1n;
const isReserved = (id: bigint): boolean => id === 0n || id === U128_MAX;

/**
 * One event on the spend_limit ledger, every field in one fixed order (one object shape on the
 * Don path; issue 20, ADR 0124).
 */
function limitEvent(id: bigint, debit: bigint, credit: bigint, amount: bigint, pending_id: bigint, user_data_128: bigint, code: number, flags: number): Transfer {
  return {
    id,
    debit_account_id: debit,
    credit_account_id: credit,
    amount,
    pending_id,
    user_data_128,
    user_data_64: 0n,
    user_data_32: 0,
    timeout: 0,
    ledger: L,
    code,
    flags,
    timestamp: 0n,
  };
}

/** planDayCheck for the (astronomically rare) spend whose XOR-derived ids hit 0 or 2^128-1. */
function planDayCheckSlow(c: DayCheck): Transfer[] {
  const id = (tag: keyof typeof TAG) => limitTransferId(c.base_id, c.family, tag);
  const chk = { ledger: L, code: TransferCode.limit_check };
  return link(
    [
      newTransfer({
        id: id("day_spend"),
        debit_account_id: c.day_account_id,
        credit_account_id: limitOperatorId(),
        amount: c.amount_micro,
        user_data_128: c.user_data_128,
        ledger: L,
        code: TransferCode.limit_spend,
      }),
      newTransfer({ ...chk, id: id("lend"), debit_account_id: c.cap_account_id, credit_account_id: c.day_account_id, amount: AMOUNT_MAX_MICRO, flags: TransferFlags.pending | TransferFlags.balancing_debit }),
      newTransfer({ ...chk, id: id("probe"), debit_account_id: limitControlId(), credit_account_id: c.day_account_id, amount: AMOUNT_MAX_MICRO, flags: TransferFlags.pending | TransferFlags.balancing_credit }),
      newTransfer({ ...chk, id: id("void_lend"), pending_id: id("lend"), flags: TransferFlags.void_pending_transfer }),
      newTransfer({ ...chk, id: id("void_probe"), pending_id: id("probe"), flags: TransferFlags.void_pending_transfer }),
    ],
    true,
  );
}

/**
 * Check `amount_micro` <= the cap (a per-session cap, the largest peer transfer): a pending
 * cap -> operator transfer of the amount (fails with `exceeds_credits` above the cap), voided
 * right after. Two events, both `linked`. The failing event is the first.
 */
export function planMaxCheck(base_id: bigint, family: Family, cap_account_id: bigint, amount_micro: bigint): Transfer[] {
  assertMicro(amount_micro, "spend");
  const probe = limitTransferId(base_id, family, "max_probe");
  const K = TransferCode.limit_check;
  return link(
    [
      limitEvent(probe, cap_account_id, OPERATOR_ID, amount_micro, 0n, 0n, K, TransferFlags.pending),
      limitEvent(limitTransferId(base_id, family, "max_void"), 0n, 0n, 0n, probe, 0n, K, TransferFlags.void_pending_transfer),
    ],
    true,
  );
}

/** Give `amount_micro` of a counted spend back to its day account (an unused reservation). */
export function planRelease(base_id: bigint, day_account_id: bigint, amount_micro: bigint, user_data_128: bigint): Transfer {
  assertMicro(amount_micro, "release");
  return newTransfer({
    id: limitTransferId(base_id, "spend", "release"),
    debit_account_id: limitOperatorId(),
    credit_account_id: day_account_id,
    amount: amount_micro,
    user_data_128,
    ledger: L,
    code: TransferCode.limit_release,
  });
}

// ---- reading -------------------------------------------------------------------------------------

interface Bal {
  debits_pending: bigint;
  debits_posted: bigint;
  credits_pending: bigint;
  credits_posted: bigint;
}

/** A cap account's value (its available balance); NO_CAP_MICRO when the account is missing. */
export function capValueMicro(cap: Bal | undefined): bigint {
  if (cap === undefined) return NO_CAP_MICRO;
  return cap.credits_posted - cap.debits_posted - cap.debits_pending;
}

/** What a day account counts as used (spent or held, minus released); 0 when missing. */
export function dayUsedMicro(day: Bal | undefined): bigint {
  if (day === undefined) return 0n;
  const used = day.debits_posted - day.credits_posted;
  return used > 0n ? used : 0n;
}

/** What is left under `cap` after `used` (never negative). */
export function remainingMicro(cap_micro: bigint, used_micro: bigint): bigint {
  return cap_micro > used_micro ? cap_micro - used_micro : 0n;
}

// ---- helpers -------------------------------------------------------------------------------------

function assertMicro(v: bigint, what: string): void {
  if (v < 0n || v > AMOUNT_MAX_MICRO) throw new RangeError(`${what} ${v} outside 0..${AMOUNT_MAX_MICRO}`);
}

/** Set `linked` on every event but the last (or on all with `open`: the caller's chain continues). */
export function link(chain: Transfer[], open = false): Transfer[] {
  for (let i = 0; i < chain.length; i++) if (open || i < chain.length - 1) chain[i]!.flags |= TransferFlags.linked;
  return chain;
}
