/**
 * Accounts: who owns which ledger account, and the plans (ledger events) that open them.
 *
 * Pure: no I/O. Services look accounts up, call these functions to build the events, submit them
 * and map the results.
 *
 * Account ids are deterministic (src/domain/ids.ts): deterministicId("account", kind, owner). An
 * agent has ONE wallet id whether it is prepaid or postpaid, so opening it twice with different
 * terms collides in the ledger (exists_with_different_*) instead of creating a second wallet.
 * Everything derived from a wallet (its credit line) is keyed by the wallet id, so it can be
 * found from the id alone.
 */
import { AccountFlags, TransferFlags, type Account, type Transfer } from "tigerbeetle-node";
import { AccountCode, Ledger, Rail, TransferCode, type RailName } from "./codes.js";
import { deterministicId, idToHex } from "./ids.js";
import { newAccount, newTransfer } from "./records.js";

/** Owner ids (agents, authors) and idempotency keys: 1-128 chars of a conservative alphabet. */
export const OWNER_ID_RE = /^[A-Za-z0-9._:@-]{1,128}$/;
export const IDEMPOTENCY_KEY_RE = OWNER_ID_RE;
export const OWNER_ID_RULE = "must be 1-128 characters of [A-Za-z0-9._:@-]";

/** The largest amount the public API accepts or returns (int64 max): 9.2 trillion USD. */
export const AMOUNT_MAX_MICRO = (1n << 63n) - 1n;

export type WalletMode = "prepaid" | "postpaid";

export type PlatformKind =
  | "platform_revenue"
  | "session_escrow"
  | "platform_credit_issuer"
  | "platform_operator";
export type RailAccountKind = "rail_inbound" | "rail_outbound";

/** Usage ledgers that get a platform-wide usage sink at start-up. */
export const USAGE_LEDGERS = [
  Ledger.usage_input_tokens,
  Ledger.usage_output_tokens,
  Ledger.usage_tool_calls,
] as const;

// ---------------------------------------------------------------------------------------------
// Ids

export function agentWalletId(agentId: string): bigint {
  return deterministicId("account", "agent_wallet", agentId);
}

/** The credit line of a postpaid wallet, keyed by the wallet id (derivable from the id alone). */
export function agentCreditLineId(walletId: bigint): bigint {
  return deterministicId("account", "agent_credit_line", idToHex(walletId));
}

/** Where soft-mode overruns of an agent are recorded (opened by the sessions service). */
export function agentDebtId(agentId: string): bigint {
  return deterministicId("account", "agent_debt", agentId);
}

export function authorEarningsId(authorId: string): bigint {
  return deterministicId("account", "author_earnings", authorId);
}

export function platformAccountId(kind: PlatformKind): bigint {
  return deterministicId("account", kind, "platform");
}

export function railAccountId(kind: RailAccountKind, rail: RailName): bigint {
  return deterministicId("account", kind, rail);
}

export function usageSinkId(ledger: number): bigint {
  return deterministicId("account", "usage_sink", ledger);
}

// ---------------------------------------------------------------------------------------------
// Account events

function account(id: bigint, code: number, flags: number, ledger: number = Ledger.usd_micro): Account {
  return newAccount({ id, code, flags, ledger });
}

/** User balances must never go negative, and keep history (GetBalanceHistory). */
const USER_FLAGS = AccountFlags.debits_must_not_exceed_credits | AccountFlags.history;

/**
 * A wallet's credit line is a debit-balance account: each grant debits it, so its net debit
 * balance (debits_posted - credits_posted) IS the credit limit. `credits_must_not_exceed_debits`
 * keeps the limit from going below zero when it is lowered.
 */
const CREDIT_LINE_FLAGS = AccountFlags.credits_must_not_exceed_debits | AccountFlags.history;

export function isAgentWalletCode(code: number): boolean {
  return code === AccountCode.agent_wallet_prepaid || code === AccountCode.agent_wallet_postpaid;
}

/**
 * The accounts of an agent wallet: the wallet, and for postpaid its credit line (first, so a
 * wallet is never visible without its credit line account).
 */
export function agentWalletAccounts(agentId: string, mode: WalletMode): Account[] {
  const walletId = agentWalletId(agentId);
  if (mode === "prepaid") return [account(walletId, AccountCode.agent_wallet_prepaid, USER_FLAGS)];
  return [
    account(agentCreditLineId(walletId), AccountCode.agent_credit_line, CREDIT_LINE_FLAGS),
    account(walletId, AccountCode.agent_wallet_postpaid, USER_FLAGS),
  ];
}

export function authorEarningsAccount(authorId: string): Account {
  return account(authorEarningsId(authorId), AccountCode.author_earnings, USER_FLAGS);
}

/**
 * One platform account. Revenue and escrow can never go negative; the operator, credit issuer
 * and rail accounts are unbounded on the debit side (they are where money enters the ledger).
 * Platform accounts do not keep history (they are touched by every session; CDC has their
 * full movement).
 */
export function platformAccount(kind: PlatformKind): Account {
  const id = platformAccountId(kind);
  switch (kind) {
    case "platform_revenue":
      return account(id, AccountCode.platform_revenue, AccountFlags.debits_must_not_exceed_credits);
    case "session_escrow":
      return account(id, AccountCode.session_escrow, AccountFlags.debits_must_not_exceed_credits);
    case "platform_credit_issuer":
      return account(id, AccountCode.platform_credit_issuer, AccountFlags.none);
    case "platform_operator":
      return account(id, AccountCode.platform_operator, AccountFlags.none);
  }
}

export function railAccount(kind: RailAccountKind, rail: RailName): Account {
  const code = kind === "rail_inbound" ? AccountCode.rail_inbound : AccountCode.rail_outbound;
  const a = account(railAccountId(kind, rail), code, AccountFlags.none);
  a.user_data_32 = Rail[rail];
  return a;
}

export function usageSinkAccount(ledger: number): Account {
  return account(usageSinkId(ledger), AccountCode.usage_sink, AccountFlags.none, ledger);
}

/** Every platform account the daemon creates at start-up (idempotent: `exists` is success). */
export function startupPlatformAccounts(rails: readonly RailName[]): Account[] {
  const kinds: PlatformKind[] = [
    "platform_revenue",
    "session_escrow",
    "platform_credit_issuer",
    "platform_operator",
  ];
  return [
    ...kinds.map(platformAccount),
    ...rails.flatMap((r) => [railAccount("rail_inbound", r), railAccount("rail_outbound", r)]),
    ...USAGE_LEDGERS.map(usageSinkAccount),
  ];
}

// ---------------------------------------------------------------------------------------------
// Transfer events

function transfer(
  fields: Pick<Transfer, "id" | "debit_account_id" | "credit_account_id" | "amount" | "code"> &
    Partial<Transfer>,
): Transfer {
  return newTransfer({ ledger: Ledger.usd_micro, flags: TransferFlags.none, ...fields });
}

/**
 * The credit line grant made when a postpaid wallet is opened: credit line -> wallet, for the
 * whole limit. Its id is fixed per wallet, so reopening with another limit collides
 * (exists_with_different_amount) instead of granting twice. A zero limit still records a
 * (zero-amount) grant so that the opening terms are in the ledger.
 */
export function openingCreditLineTransfer(walletId: bigint, creditLimitMicro: bigint): Transfer {
  return transfer({
    id: deterministicId("transfer", "credit_line_open", idToHex(walletId)),
    debit_account_id: agentCreditLineId(walletId),
    credit_account_id: walletId,
    amount: creditLimitMicro,
    code: TransferCode.credit_line,
    user_data_128: walletId,
  });
}

/**
 * Raise (credit line -> wallet) or lower (wallet -> credit line) a postpaid wallet's limit.
 * Lowering debits the wallet, so the ledger refuses it atomically (exceeds_credits) when the
 * agent already uses the credit being removed; the credit line's own flag refuses lowering
 * below zero (exceeds_debits).
 */
export function creditLimitChangeTransfer(
  walletId: bigint,
  change: { direction: "increase" | "decrease"; amountMicro: bigint },
  idempotencyKey: string,
): Transfer {
  const line = agentCreditLineId(walletId);
  const increase = change.direction === "increase";
  return transfer({
    id: deterministicId("transfer", "credit_line_change", idToHex(walletId), idempotencyKey),
    debit_account_id: increase ? line : walletId,
    credit_account_id: increase ? walletId : line,
    amount: change.amountMicro,
    code: TransferCode.credit_line,
    user_data_128: walletId,
  });
}

/**
 * A deposit into an agent wallet. The idempotency scope is (rail, key): the same payment on a
 * rail can be credited at most once, whichever wallet or amount a retry names (a different
 * wallet or amount collides as exists_with_different_*). `rail === null` is a manual deposit from
 * the platform operator account.
 */
export function depositTransfer(args: {
  walletId: bigint;
  amountMicro: bigint;
  rail: RailName | null;
  idempotencyKey: string;
}): Transfer {
  const scope = args.rail ?? "manual";
  return transfer({
    id: deterministicId("transfer", "deposit", scope, args.idempotencyKey),
    debit_account_id:
      args.rail === null ? platformAccountId("platform_operator") : railAccountId("rail_inbound", args.rail),
    credit_account_id: args.walletId,
    amount: args.amountMicro,
    code: args.rail === null ? TransferCode.manual_deposit : TransferCode.deposit,
    user_data_128: deterministicId("deposit", scope, args.idempotencyKey),
    user_data_32: args.rail === null ? 0 : Rail[args.rail],
  });
}

// ---------------------------------------------------------------------------------------------
// Balances

export interface Balances {
  debits_pending: bigint;
  debits_posted: bigint;
  credits_pending: bigint;
  credits_posted: bigint;
}

/** credits_posted - debits_posted - debits_pending: what can be spent now. */
export function availableMicro(b: Balances): bigint {
  return b.credits_posted - b.debits_posted - b.debits_pending;
}

/** A credit line's limit: its net debit balance. */
export function creditLimitMicro(creditLine: Balances): bigint {
  return creditLine.debits_posted - creditLine.credits_posted;
}
