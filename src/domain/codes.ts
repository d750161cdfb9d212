/**
 * Ledger numbering shared by every part of the daemon (services, streamer, reconciliation).
 * TigerBeetle stores these as plain integers; this file is the one place that names them.
 * Changing a value here re-labels money already on disk: append, never renumber.
 */

/** Ledgers (`Account.ledger` / `Transfer.ledger`). Accounts only transact within one ledger. */
export const Ledger = {
  /** US dollars in micro-units: 1 unit = 10^-6 USD = 1 USDC base unit. */
  usd_micro: 1,
  /** Usage meter: input tokens (1 unit = 1 token). Never money. */
  usage_input_tokens: 2,
  /** Usage meter: output tokens (1 unit = 1 token). Never money. */
  usage_output_tokens: 3,
  /** Usage meter: tool calls (1 unit = 1 call). Never money. */
  usage_tool_calls: 4,
  /**
   * Issuance limit (ADR 0055): counts, in micro-USD, every unit that ever entered ledger 1 and
   * refuses the one past 2^63-1. Never money.
   */
  issuance_limit: 90,
  /**
   * Spending limits (issue 17, ADR 0110): caps as account balances, per-day spend counters and
   * the control account of TigerBeetle's balance-invariant recipe, in micro-USD. Never money.
   */
  spend_limit: 91,
  /**
   * Bitcoin in millisatoshis (1 unit = 10^-3 sat = 10^-11 BTC): the Lightning rail's own money
   * (issue 15, ADR 0094). Joined to ledger 1 only by conversion chains through the exchange accounts.
   */
  btc_msat: 10,
} as const;
export type Ledger = (typeof Ledger)[keyof typeof Ledger];

/** `Account.code`: what kind of account this is. */
export const AccountCode = {
  /** An agent's prepaid wallet (`debits_must_not_exceed_credits`). */
  agent_wallet_prepaid: 100,
  /** An agent's postpaid wallet: may go negative down to a credit limit enforced in the ledger. */
  agent_wallet_postpaid: 101,
  /** Per-agent control account for the postpaid credit-limit (balance-bounds) recipe. */
  agent_credit_line: 102,
  /** What an agent owes after soft-mode overruns (debt is recorded, never hidden). */
  agent_debt: 103,
  /** A masque author's earnings. */
  author_earnings: 200,
  /**
   * What an author owes after a refund of a session already paid out (ADR 0112): its debit
   * balance is the debt; future earnings repay it first, in the chains that credit earnings.
   */
  author_debt: 201,
  /** The platform's fee revenue. */
  platform_revenue: 300,
  /** Session escrow: holds posted session charges until they are split, zero after each Doff. */
  session_escrow: 301,
  /** Platform-operated source of postpaid credit lines. */
  platform_credit_issuer: 302,
  /** Platform-operated operator account for manual (admin) adjustments. */
  platform_operator: 303,
  /** A rail's inbound account: deposits arrive from here (debited when an agent is credited). */
  rail_inbound: 400,
  /** A rail's outbound account: payouts leave through here. */
  rail_outbound: 410,
  /** A rail's fee account: payout fees paid by authors, which fund the rail's network fees (ADR 0085). */
  rail_fees: 420,
  /** Usage meters: one per agent per usage ledger (debited by usage). */
  usage_meter: 500,
  /** Usage sink: one per usage ledger (credited by usage). */
  usage_sink: 510,
  /**
   * The platform's exchange desk, one per ledger (USD and msat, ADR 0094): every conversion
   * credits one and debits the other; their balances are the open position reconcile reports.
   */
  exchange: 600,
  /** Issuance limit operator: funds the control account once with the whole limit (ADR 0055). */
  issuance_limit_operator: 900,
  /** Issuance limit control account: its available balance is what may still be issued. */
  issuance_limit_control: 901,
  /** Issuance limit counter: its credits are everything issued so far. */
  issuance_limit_issued: 902,
  /** Spending limits (ADR 0110): the operator that funds caps and receives day spends (no flags). */
  limit_operator: 910,
  /** Spending limits: the zero-balance control account of the balance-invariant check. */
  limit_control: 911,
  /** An agent's daily spending cap: its available balance is the cap (AMOUNT_MAX: none). */
  agent_daily_cap: 912,
  /** An agent's per-session spending cap: its available balance is the cap (AMOUNT_MAX: none). */
  agent_session_cap: 913,
  /** An agent's spend on one UTC day: debits = spent or held, credits = released. */
  agent_day_spend: 914,
  /** An agent's peer-transfer volume sent on one UTC day (debits). */
  agent_day_peer: 915,
  /** Platform policy: the largest single peer transfer (its available balance). */
  peer_transfer_max: 916,
  /** Platform policy: the peer-transfer volume a sender may send per UTC day (its available balance). */
  peer_daily_volume: 917,
  /** A settled session's refundable amount (ledger spend_limit): credited once with the charge, debited by each refund. */
  session_refundable: 918,
} as const;
export type AccountCode = (typeof AccountCode)[keyof typeof AccountCode];

/** `Transfer.code`: what kind of movement this is. */
export const TransferCode = {
  /** Rail inbound → agent wallet. */
  deposit: 1,
  /** Admin-minted credit (operator → agent wallet). */
  manual_deposit: 2,
  /** Postpaid credit line grant / adjustment. */
  credit_line: 3,
  /** Pending hold on Don: agent wallet → escrow. Post/void of it keep this code. */
  session_hold: 10,
  /** Escrow → author earnings on Doff. */
  session_author_share: 11,
  /** Escrow → platform revenue on Doff. */
  session_platform_fee: 12,
  /** Soft-mode overrun recorded as debt. */
  session_overrun_debt: 13,
  /** Usage: input tokens. */
  usage_input_tokens: 20,
  /** Usage: output tokens. */
  usage_output_tokens: 21,
  /** Usage: tool calls. */
  usage_tool_calls: 22,
  /**
   * Closes a session's usage meter (pending, amount 0, `closing_debit`, never posted or voided):
   * settlement's first step, after which the ledger refuses the session's usage (ADR 0036).
   */
  session_meter_close: 23,
  /** Author payout: earnings → rail outbound (pending until the rail confirms). */
  payout: 30,
  /** Author payout fee: earnings → rail fees (pending with its payout, ADR 0085). */
  payout_fee: 31,
  /**
   * One leg of a currency conversion (ADR 0094): USD into / out of the exchange account on
   * ledger 1, msat out of / into it on the msat ledger, linked in one chain, rate in user_data_64.
   */
  conversion: 70,
  /** Balance-bounds recipe helper transfers (postpaid credit checks). */
  bounds_check: 40,
  /**
   * Audit-log anchor (ADR 0101): amount 0, platform operator → platform revenue; user_data_128
   * holds the first 128 bits of the audit chain's head hash, user_data_64 its position.
   */
  audit_anchor: 50,
  /** Issuance limit: the one-time funding of the control account (ledger `issuance_limit`). */
  issuance_limit_funding: 90,
  /** Issuance limit: linked to each issuing transfer, same amount (ledger `issuance_limit`). */
  issuance_limit: 91,
  /** Spending limits: setting a cap (operator <-> cap account). */
  limit_set: 92,
  /** Spending limits: a spend counted on a day account (day -> operator), same amount as the spend. */
  limit_spend: 93,
  /** Spending limits: part of a counted spend given back (an unused reservation; operator -> day). */
  limit_release: 94,
  /** Spending limits: the balance-invariant check's transient pending transfers (always voided). */
  limit_check: 95,
  /** Peer transfer: agent wallet -> agent wallet (seed 004 FR-1, ADR 0111). */
  peer_transfer: 51,
  /** Refund, author's part: author earnings -> agent wallet (ADR 0112). */
  refund_author: 60,
  /** Refund, platform's part: platform revenue -> agent wallet. */
  refund_platform: 61,
  /** Refund of a paid-out author: author debt -> author earnings (the part the earnings could not cover ends as debt). */
  author_debt: 62,
  /** Author debt repaid from earnings: author earnings -> author debt (balancing both sides). */
  author_debt_repayment: 63,
  /** A session's refundable amount: its one-time funding with the charge (ledger spend_limit). */
  refundable_funding: 64,
  /** A refund counted against the session's refundable amount (ledger spend_limit). */
  refund_counted: 65,
} as const;
export type TransferCode = (typeof TransferCode)[keyof typeof TransferCode];

/** `user_data_32` on rail transfers: which rail. */
export const Rail = {
  base: 1,
  solana: 2,
  lightning: 3,
} as const;
export type RailName = keyof typeof Rail;
export const RAIL_NAMES = Object.keys(Rail) as RailName[];
