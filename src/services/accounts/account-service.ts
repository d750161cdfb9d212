/**
 * AccountService handlers. Each one is thin: validate the request (collecting every field
 * violation), authorize the principal against the accounts the request names, ask
 * src/domain/accounts.ts for the ledger events, submit them, and map the ledger's answer to an
 * API response or a structured error. Money only moves inside the ledger's own checks
 * (debits_must_not_exceed_credits & co.), never after a read-then-write decision here.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { createLimitHandlers, type LimitHandlerDeps } from "./limits-handlers.js";
import { createRefundHandler, type RefundDeps } from "./refunds.js";
import {
  AccountFilterFlags,
  CreateAccountStatus,
  CreateTransferStatus,
  type Account as LedgerAccount,
  type Client,
  type Transfer as LedgerTransfer,
} from "tigerbeetle-node";
import {
  AccountService,
  WalletMode,
  type AdjustCreditLimitRequest,
  type DepositRequest,
  type GetAccountRequest,
  type GetBalanceHistoryRequest,
  type ListTransfersRequest,
  type OpenAgentWalletRequest,
  type OpenAuthorEarningsRequest,
  type OpenPlatformAccountRequest,
} from "../../../clients/gen/masques/ledger/v1/account_service_pb.js";
import {
  AccountEntrySchema,
  AccountKind,
  BalanceSnapshotSchema,
  Rail as ApiRail,
  TransferDirection,
  TransferKind,
  type AccountRef,
} from "../../../clients/gen/masques/ledger/v1/common_pb.js";
import { AccountCode, Ledger, Rail, type RailName } from "../../domain/codes.js";
import {
  AMOUNT_MAX_MICRO,
  IDEMPOTENCY_KEY_RE,
  OWNER_ID_RE,
  OWNER_ID_RULE,
  agentCreditLineId,
  agentWalletAccounts,
  agentWalletId,
  authorEarningsAccount,
  authorEarningsId,
  availableMicro,
  creditLimitChangeTransfer,
  creditLimitMicro,
  depositTransfer,
  isAgentWalletCode,
  openingCreditLineTransfer,
  platformAccount,
  railAccount,
  type PlatformKind,
  type RailAccountKind,
} from "../../domain/accounts.js";
import {
  issuanceHeadroomMicro,
  issuanceLimitAccounts,
  issuanceLimitControlId,
  issuanceLimitFunding,
  issuanceLimitRule,
  issuanceOutcome,
  withIssuanceLimit,
} from "../../domain/balance-bounds.js";
import { idToHex } from "../../domain/ids.js";
import type { AuditInput } from "../../domain/audit-chain.js";
import { requestIdKey } from "../../server/principal.js";
import { ledgerTimeWindow, parseTimeRange } from "../../domain/time-range.js";
import {
  authorizeDeposit,
  authorizeOpenOwn,
  authorizeRead,
  principalOf,
  requireAdmin,
} from "../authz.js";
import {
  accountNotFound,
  alreadyExists,
  failedPrecondition,
  idempotencyKeyReused,
  insufficientFunds,
  invalidArgument,
  ledgerRejected,
  type Violation,
} from "../errors.js";
import {
  accountView,
  balanceView,
  decodePageToken,
  encodePageToken,
  parseHexId,
  parsePageSize,
  timestampFromNs,
  transferView,
} from "../views.js";

export interface AccountServiceDeps {
  readonly ledger: Client;
  /**
   * Appends an audit entry for an admin money action (issue 16, ADR 0101) once the ledger has
   * accepted it; `dedupe_key` makes a retry's append a no-op. Unset: no audit (tests of the
   * service alone).
   */
  readonly audit?: (entry: AuditInput) => Promise<void>;
  /** Daemon clock (ns) for audit times; default the wall clock. */
  readonly clock?: () => bigint;
  /** Spending limits and peer transfers (ADR 0110/0111); absent: those RPCs are unavailable. */
  readonly limits?: Omit<LimitHandlerDeps, "ledger">;
  /** Refunds (ADR 0112); absent: RefundSession is unavailable. */
  readonly refunds?: Omit<RefundDeps, "ledger">;
}

// ---------------------------------------------------------------------------------------------
// Validation helpers

function throwIfInvalid(violations: readonly Violation[]): void {
  if (violations.length > 0) throw invalidArgument(violations);
}

function checkOwnerId(value: string, field: string, violations: Violation[]): void {
  if (!OWNER_ID_RE.test(value)) violations.push({ field, description: OWNER_ID_RULE });
}

function checkIdempotencyKey(value: string, violations: Violation[]): void {
  if (!IDEMPOTENCY_KEY_RE.test(value)) violations.push({ field: "idempotency_key", description: OWNER_ID_RULE });
}

function checkAmount(value: bigint, field: string, violations: Violation[], allowZero = false): void {
  if (!allowZero && value <= 0n) violations.push({ field, description: "must be > 0" });
  else if (value > AMOUNT_MAX_MICRO) violations.push({ field, description: "must be <= 9223372036854775807" });
}

/** AccountRef -> ledger id (null after pushing a violation). */
function resolveAccountRef(ref: AccountRef | undefined, violations: Violation[]): bigint | null {
  const r = ref?.ref;
  switch (r?.case) {
    case "accountId":
      return parseHexId(r.value, "account.account_id", violations);
    case "agentWallet":
      checkOwnerId(r.value, "account.agent_wallet", violations);
      return OWNER_ID_RE.test(r.value) ? agentWalletId(r.value) : null;
    case "authorEarnings":
      checkOwnerId(r.value, "account.author_earnings", violations);
      return OWNER_ID_RE.test(r.value) ? authorEarningsId(r.value) : null;
    default:
      violations.push({ field: "account", description: "must set one of account_id, agent_wallet, author_earnings" });
      return null;
  }
}

const RAIL_BY_NUMBER = new Map<number, RailName>(
  (Object.entries(Rail) as [RailName, number][]).map(([name, n]) => [n, name]),
);

/** API Rail -> rail name, null for RAIL_UNSPECIFIED, undefined (after a violation) when unknown. */
function parseRail(rail: ApiRail, field: string, violations: Violation[]): RailName | null | undefined {
  if (rail === ApiRail.UNSPECIFIED) return null;
  const name = RAIL_BY_NUMBER.get(rail);
  if (name === undefined) violations.push({ field, description: "must be a known rail" });
  return name;
}

const KNOWN_TRANSFER_KINDS = new Set<number>(
  Object.values(TransferKind).filter((v): v is number => typeof v === "number"),
);

// ---------------------------------------------------------------------------------------------
// Ledger result helpers

const OK_ACCOUNT = new Set<CreateAccountStatus>([CreateAccountStatus.created, CreateAccountStatus.exists]);
const OK_TRANSFER = new Set<CreateTransferStatus>([CreateTransferStatus.created, CreateTransferStatus.exists]);

function accountStatusName(s: CreateAccountStatus): string {
  return CreateAccountStatus[s] ?? String(s);
}
function transferStatusName(s: CreateTransferStatus): string {
  return CreateTransferStatus[s] ?? String(s);
}
function existsWithDifferent(name: string): boolean {
  return name.startsWith("exists_with_different_");
}

/** One ledger result per event (tigerbeetle-node 0.17); a missing one is a port bug. */
function single<T>(results: readonly T[], operation: string): T {
  const r = results[0];
  if (r === undefined || results.length !== 1) throw ledgerRejected(operation, `expected 1 result, got ${results.length}`);
  return r;
}

const PLATFORM_KINDS = new Map<AccountKind, PlatformKind | RailAccountKind>([
  [AccountKind.PLATFORM_REVENUE, "platform_revenue"],
  [AccountKind.SESSION_ESCROW, "session_escrow"],
  [AccountKind.PLATFORM_CREDIT_ISSUER, "platform_credit_issuer"],
  [AccountKind.PLATFORM_OPERATOR, "platform_operator"],
  [AccountKind.RAIL_INBOUND, "rail_inbound"],
  [AccountKind.RAIL_OUTBOUND, "rail_outbound"],
]);

// ---------------------------------------------------------------------------------------------

/**
 * Create the issuance limit's accounts and fund its control account (ADR 0055), idempotently:
 * fixed ids, so every start of every daemon may run it and the ledger answers `exists` after the
 * first. The daemon runs it once at start-up (`onStart`), before any call can issue money (a
 * deposit, a credit grant, a soft-mode Doff's debt): a limit transfer that met an unfunded or
 * missing control account would fail, and its id could never succeed later.
 * Throws the ledger's status when an account or the funding exists with other terms.
 */
export async function provisionIssuanceLimit(ledger: Pick<Client, "createAccounts" | "createTransfers">): Promise<void> {
  const accounts = issuanceLimitAccounts();
  const results = await ledger.createAccounts(accounts);
  if (results.length !== accounts.length) throw ledgerRejected("create_accounts", `expected ${accounts.length} results, got ${results.length}`);
  for (const r of results) {
    if (!OK_ACCOUNT.has(r.status)) throw ledgerRejected("create the issuance limit accounts", accountStatusName(r.status));
  }
  const r = single(await ledger.createTransfers([issuanceLimitFunding()]), "create_transfers");
  if (!OK_TRANSFER.has(r.status)) throw ledgerRejected("fund the issuance limit", transferStatusName(r.status));
}

export function createAccountService(deps: AccountServiceDeps): ServiceImpl<typeof AccountService> {
  const { ledger } = deps;
  const clock = deps.clock ?? (() => BigInt(Date.now()) * 1_000_000n);

  /** Audit an admin money action the ledger accepted (ADR 0101); a retry finds its entry. */
  async function audited(ctx: HandlerContext, p: { kind: string; id: string }, e: Pick<AuditInput, "action" | "subject" | "before" | "after" | "dedupe_key">): Promise<void> {
    if (!deps.audit) return;
    await deps.audit({ ...e, time_ns: clock(), actor_kind: p.kind, actor_id: p.id, request_id: ctx.values.get(requestIdKey) || "unknown" });
  }

  /** Look an account up with, for postpaid wallets, its credit limit (one ledger round trip). */
  async function readAccount(id: bigint): Promise<{ account: LedgerAccount; creditLimit: bigint } | null> {
    const found = await ledger.lookupAccounts([id, agentCreditLineId(id)]);
    const account = found.find((a) => a.id === id);
    if (account === undefined) return null;
    let creditLimit = 0n;
    if (account.code === AccountCode.agent_wallet_postpaid) {
      const line = found.find((a) => a.id === agentCreditLineId(id));
      if (line !== undefined) creditLimit = creditLimitMicro(line);
    }
    return { account, creditLimit };
  }

  /** Read an account that must exist and hold money (usage meters are not AccountService's). */
  async function mustReadAccount(id: bigint) {
    const r = await readAccount(id);
    if (r === null) throw accountNotFound(idToHex(id));
    if (r.account.ledger !== Ledger.usd_micro) {
      throw failedPrecondition("NOT_A_MONEY_ACCOUNT", `account ${idToHex(id)} is a usage meter, not a USD account`, {
        account_id: idToHex(id),
      });
    }
    return r;
  }

  async function viewOf(id: bigint) {
    const r = await mustReadAccount(id);
    return accountView(r.account, r.creditLimit);
  }

  /** Create accounts; `exists` is success; a conflicting existing account is ALREADY_EXISTS. */
  async function createAccounts(accounts: LedgerAccount[], what: string): Promise<void> {
    const results = await ledger.createAccounts(accounts);
    if (results.length !== accounts.length) {
      throw ledgerRejected("create_accounts", `expected ${accounts.length} results, got ${results.length}`);
    }
    for (const [i, r] of results.entries()) {
      if (OK_ACCOUNT.has(r.status)) continue;
      const name = accountStatusName(r.status);
      if (existsWithDifferent(name)) {
        throw alreadyExists(
          "ACCOUNT_EXISTS_WITH_DIFFERENT_TERMS",
          `${what} already exists with different terms (${name})`,
          { account_id: idToHex(accounts[i]!.id), ledger_status: name },
        );
      }
      throw ledgerRejected("create_accounts", name);
    }
  }

  /** Submit one transfer; on created/exists return the stored transfer (the original on a retry). */
  async function submitTransfer(
    t: LedgerTransfer,
    onFailure: (status: CreateTransferStatus, name: string) => Promise<never> | never,
  ): Promise<LedgerTransfer> {
    const r = single(await ledger.createTransfers([t]), "create_transfers");
    if (!OK_TRANSFER.has(r.status)) await onFailure(r.status, transferStatusName(r.status));
    const stored = single(await ledger.lookupTransfers([t.id]), "lookup_transfers");
    return stored;
  }

  /**
   * The daemon provisions the issuance limit at start-up (services/index.ts `onStart`); this
   * once-per-process guard only matters where the service runs without that start-up step.
   */
  let issuanceLimitReady: Promise<void> | null = null;
  function ensureIssuanceLimit(): Promise<void> {
    issuanceLimitReady ??= provisionIssuanceLimit(ledger).catch((err: unknown) => {
      issuanceLimitReady = null;
      throw err;
    });
    return issuanceLimitReady;
  }

  /**
   * Submit a transfer that brings money into the ledger, linked with its issuance-limit transfer
   * (ADR 0055): past the limit it is INVALID_ARGUMENT on `field`, and nothing moves.
   */
  async function submitIssuance(
    t: LedgerTransfer,
    field: string,
    onFailure: (status: CreateTransferStatus, name: string) => Promise<never> | never,
  ): Promise<LedgerTransfer> {
    await ensureIssuanceLimit();
    const outcome = issuanceOutcome(await ledger.createTransfers(withIssuanceLimit(t)));
    if (outcome.kind === "issuing_failed" && outcome.status !== CreateTransferStatus.exists) {
      await onFailure(outcome.status, transferStatusName(outcome.status));
    } else if (outcome.kind === "limit_exceeded") {
      const [control] = await ledger.lookupAccounts([issuanceLimitControlId()]);
      const headroom = control === undefined ? 0n : issuanceHeadroomMicro(control);
      throw invalidArgument([{ field, description: issuanceLimitRule(headroom) }]);
    } else if (outcome.kind === "limit_failed") {
      throw ledgerRejected("issuance limit", transferStatusName(outcome.status));
    }
    return single(await ledger.lookupTransfers([t.id]), "lookup_transfers");
  }

  const audit = deps.audit ? { audit: deps.audit } : {};
  const limitHandlers = deps.limits === undefined ? null : createLimitHandlers({ ledger, ...audit, ...deps.limits });
  const refund = deps.refunds === undefined ? null : createRefundHandler({ ledger, ...audit, ...deps.refunds });
  const noLimits = (): never => {
    throw new ConnectError("spending limits and peer transfers need the daemon's control plane", Code.Unimplemented);
  };

  return {
    getSpendingLimits: (req, ctx) => (limitHandlers ?? noLimits()).getSpendingLimits(req, ctx),
    setSpendingLimits: (req, ctx) => (limitHandlers ?? noLimits()).setSpendingLimits(req, ctx),
    transferFunds: (req, ctx) => (limitHandlers ?? noLimits()).transferFunds(req, ctx),
    listPeerTransfers: (req, ctx) => (limitHandlers ?? noLimits()).listPeerTransfers(req, ctx),
    refundSession: (req, ctx) => (refund ?? noLimits())(req, ctx),

    async openAgentWallet(req: OpenAgentWalletRequest, ctx: HandlerContext) {
      const p = principalOf(ctx);
      const v: Violation[] = [];
      const agentId = req.agentId === "" && p.kind === "agent" ? p.id : req.agentId;
      if (agentId === "") v.push({ field: "agent_id", description: "must be set" });
      else checkOwnerId(agentId, "agent_id", v);
      let mode: "prepaid" | "postpaid" | null = null;
      if (req.mode === WalletMode.PREPAID) mode = "prepaid";
      else if (req.mode === WalletMode.POSTPAID) mode = "postpaid";
      else v.push({ field: "mode", description: "must be WALLET_MODE_PREPAID or WALLET_MODE_POSTPAID" });
      if (mode === "prepaid" && req.creditLimitMicro !== 0n) {
        v.push({ field: "credit_limit_micro", description: "must be 0 for a prepaid wallet" });
      } else {
        checkAmount(req.creditLimitMicro, "credit_limit_micro", v, true);
      }
      throwIfInvalid(v);
      authorizeOpenOwn(p, "agent", agentId);
      if (mode === "postpaid") requireAdmin(p, "open a postpaid wallet (it grants credit)");

      const walletId = agentWalletId(agentId);
      const wantCode = mode === "prepaid" ? AccountCode.agent_wallet_prepaid : AccountCode.agent_wallet_postpaid;
      // Existence is monotonic (accounts are never deleted), so checking it first is safe; it
      // keeps a conflicting re-open from creating a stray credit line account.
      const existing = await readAccount(walletId);
      if (existing !== null && existing.account.code !== wantCode) {
        throw alreadyExists(
          "ACCOUNT_EXISTS_WITH_DIFFERENT_TERMS",
          `agent ${JSON.stringify(agentId)} already has a ${mode === "prepaid" ? "postpaid" : "prepaid"} wallet`,
          { account_id: idToHex(walletId) },
        );
      }
      await createAccounts(agentWalletAccounts(agentId, mode!), `the wallet of agent ${JSON.stringify(agentId)}`);
      if (mode === "postpaid") {
        await submitIssuance(openingCreditLineTransfer(walletId, req.creditLimitMicro), "credit_limit_micro", (_s, name) => {
          if (existsWithDifferent(name)) {
            throw alreadyExists(
              "ACCOUNT_EXISTS_WITH_DIFFERENT_TERMS",
              `the postpaid wallet of agent ${JSON.stringify(agentId)} was opened with a different credit limit`,
              { account_id: idToHex(walletId), ledger_status: name },
            );
          }
          throw ledgerRejected("open credit line", name);
        });
        // Opening a postpaid wallet sets its first credit limit (an admin money action, ADR 0101).
        await audited(ctx, p, {
          action: "account.open_postpaid_wallet",
          subject: `account:${idToHex(walletId)}`,
          before: null,
          after: { agent_id: agentId, credit_limit_micro: req.creditLimitMicro },
          dedupe_key: `account.open_postpaid_wallet:${idToHex(walletId)}`,
        });
      }
      return { account: await viewOf(walletId) };
    },

    async openAuthorEarnings(req: OpenAuthorEarningsRequest, ctx: HandlerContext) {
      const p = principalOf(ctx);
      const v: Violation[] = [];
      const authorId = req.authorId === "" && p.kind === "author" ? p.id : req.authorId;
      if (authorId === "") v.push({ field: "author_id", description: "must be set" });
      else checkOwnerId(authorId, "author_id", v);
      throwIfInvalid(v);
      authorizeOpenOwn(p, "author", authorId);
      const a = authorEarningsAccount(authorId);
      await createAccounts([a], `the earnings account of author ${JSON.stringify(authorId)}`);
      return { account: await viewOf(a.id) };
    },

    async openPlatformAccount(req: OpenPlatformAccountRequest, ctx: HandlerContext) {
      const p = principalOf(ctx);
      requireAdmin(p, "open platform accounts");
      const v: Violation[] = [];
      const kind = PLATFORM_KINDS.get(req.kind);
      if (kind === undefined) {
        v.push({
          field: "kind",
          description:
            "must be a platform kind (PLATFORM_REVENUE, SESSION_ESCROW, PLATFORM_CREDIT_ISSUER, PLATFORM_OPERATOR, RAIL_INBOUND, RAIL_OUTBOUND)",
        });
      }
      const rail = parseRail(req.rail, "rail", v);
      const isRailKind = kind === "rail_inbound" || kind === "rail_outbound";
      if (kind !== undefined && isRailKind && rail === null) v.push({ field: "rail", description: "must be set for rail accounts" });
      if (kind !== undefined && !isRailKind && rail !== null && rail !== undefined) {
        v.push({ field: "rail", description: "must be unset for non-rail accounts" });
      }
      throwIfInvalid(v);
      const a = isRailKind ? railAccount(kind, rail!) : platformAccount(kind as PlatformKind);
      await createAccounts([a], `platform account ${kind}`);
      return { account: await viewOf(a.id) };
    },

    async getAccount(req: GetAccountRequest, ctx: HandlerContext) {
      const p = principalOf(ctx);
      const v: Violation[] = [];
      const id = resolveAccountRef(req.account, v);
      throwIfInvalid(v);
      authorizeRead(p, id!);
      return { account: await viewOf(id!) };
    },

    async deposit(req: DepositRequest, ctx: HandlerContext) {
      const p = principalOf(ctx);
      const v: Violation[] = [];
      const walletId = resolveAccountRef(req.account, v);
      checkAmount(req.amountMicro, "amount_micro", v);
      const rail = parseRail(req.rail, "rail", v);
      checkIdempotencyKey(req.idempotencyKey, v);
      throwIfInvalid(v);
      authorizeDeposit(p, rail!);

      const { account: wallet } = await mustReadAccount(walletId!);
      if (!isAgentWalletCode(wallet.code)) {
        throw invalidArgument([{ field: "account", description: "must be an agent wallet" }]);
      }
      const t = depositTransfer({
        walletId: walletId!,
        amountMicro: req.amountMicro,
        rail: rail!,
        idempotencyKey: req.idempotencyKey,
      });
      const stored = await submitIssuance(t, "amount_micro", (status, name) => {
        if (existsWithDifferent(name)) throw idempotencyKeyReused(req.idempotencyKey, idToHex(t.id), "deposit");
        if (status === CreateTransferStatus.credit_account_already_closed) {
          throw failedPrecondition("ACCOUNT_CLOSED", `account ${idToHex(walletId!)} is closed`, {
            account_id: idToHex(walletId!),
          });
        }
        if (status === CreateTransferStatus.id_already_failed) {
          throw failedPrecondition(
            "IDEMPOTENCY_KEY_FAILED",
            `a deposit with idempotency key ${JSON.stringify(req.idempotencyKey)} already failed; use a new key`,
            { idempotency_key: req.idempotencyKey },
          );
        }
        throw ledgerRejected("deposit", name);
      });
      await audited(ctx, p, {
        action: rail === null ? "account.manual_deposit" : "account.deposit",
        subject: `account:${idToHex(walletId!)}`,
        after: { transfer_id: idToHex(stored.id), amount_micro: stored.amount, rail: rail ?? "manual", idempotency_key: req.idempotencyKey },
        dedupe_key: `account.deposit:${idToHex(stored.id)}`,
      });
      return { transfer: transferView(stored) };
    },

    async adjustCreditLimit(req: AdjustCreditLimitRequest, ctx: HandlerContext) {
      const p = principalOf(ctx);
      requireAdmin(p, "change credit limits");
      const v: Violation[] = [];
      const walletId = resolveAccountRef(req.account, v);
      let change: { direction: "increase" | "decrease"; amountMicro: bigint } | null = null;
      if (req.change.case === "increaseMicro") {
        checkAmount(req.change.value, "increase_micro", v);
        change = { direction: "increase", amountMicro: req.change.value };
      } else if (req.change.case === "decreaseMicro") {
        checkAmount(req.change.value, "decrease_micro", v);
        change = { direction: "decrease", amountMicro: req.change.value };
      } else {
        v.push({ field: "change", description: "must set one of increase_micro, decrease_micro" });
      }
      checkIdempotencyKey(req.idempotencyKey, v);
      throwIfInvalid(v);

      const { account: wallet, creditLimit: limitBefore } = await mustReadAccount(walletId!);
      if (wallet.code !== AccountCode.agent_wallet_postpaid) {
        throw invalidArgument([{ field: "account", description: "must be a postpaid agent wallet" }]);
      }
      const t = creditLimitChangeTransfer(walletId!, change!, req.idempotencyKey);
      const onFailure = async (status: CreateTransferStatus, name: string): Promise<never> => {
        if (existsWithDifferent(name)) throw idempotencyKeyReused(req.idempotencyKey, idToHex(t.id), "credit limit change");
        if (status === CreateTransferStatus.exceeds_credits) {
          // The wallet cannot give back that much credit: the agent already uses it. Report
          // what it has available now (the refusal itself was atomic inside the ledger).
          const now = await mustReadAccount(walletId!);
          throw insufficientFunds(idToHex(walletId!), availableMicro(now.account), change!.amountMicro);
        }
        if (status === CreateTransferStatus.exceeds_debits) {
          throw failedPrecondition(
            "CREDIT_LIMIT_BELOW_ZERO",
            `cannot lower the credit limit of ${idToHex(walletId!)} by more than its current limit`,
            { account_id: idToHex(walletId!) },
          );
        }
        if (status === CreateTransferStatus.id_already_failed) {
          throw failedPrecondition(
            "IDEMPOTENCY_KEY_FAILED",
            `a credit limit change with idempotency key ${JSON.stringify(req.idempotencyKey)} already failed; use a new key`,
            { idempotency_key: req.idempotencyKey },
          );
        }
        throw ledgerRejected("credit limit change", name);
      };
      // Raising a limit issues credit (ADR 0055); lowering it only moves money back.
      const stored =
        change!.direction === "increase"
          ? await submitIssuance(t, "increase_micro", onFailure)
          : await submitTransfer(t, onFailure);
      const after = await viewOf(walletId!);
      await audited(ctx, p, {
        action: "account.adjust_credit_limit",
        subject: `account:${idToHex(walletId!)}`,
        before: { credit_limit_micro: limitBefore },
        after: { credit_limit_micro: after.creditLimitMicro, transfer_id: idToHex(stored.id), change: change!.direction, amount_micro: change!.amountMicro, idempotency_key: req.idempotencyKey },
        dedupe_key: `account.adjust_credit_limit:${idToHex(stored.id)}`,
      });
      return { transfer: transferView(stored), account: after };
    },

    async listTransfers(req: ListTransfersRequest, ctx: HandlerContext) {
      const p = principalOf(ctx);
      const v: Violation[] = [];
      const id = resolveAccountRef(req.account, v);
      const pageSize = parsePageSize(req.pageSize, v);
      if (req.kind !== TransferKind.UNSPECIFIED && !KNOWN_TRANSFER_KINDS.has(req.kind)) {
        v.push({ field: "kind", description: "must be a known transfer kind" });
      }
      if (![TransferDirection.UNSPECIFIED, TransferDirection.DEBIT, TransferDirection.CREDIT].includes(req.direction)) {
        v.push({ field: "direction", description: "must be TRANSFER_DIRECTION_DEBIT, _CREDIT or unset" });
      }
      const range = parseTimeRange(req.startTime, req.endTime, v);
      const query = ["ListTransfers", id, req.kind, req.direction, range.start_ns, range.end_ns];
      const window = ledgerTimeWindow(range, decodePageToken(req.pageToken, query, v), v);
      throwIfInvalid(v);
      authorizeRead(p, id!);
      await mustReadAccount(id!);
      if (window.empty) return { entries: [], nextPageToken: "" };

      const directionFlags =
        req.direction === TransferDirection.DEBIT
          ? AccountFilterFlags.debits
          : req.direction === TransferDirection.CREDIT
            ? AccountFilterFlags.credits
            : AccountFilterFlags.debits | AccountFilterFlags.credits;
      const transfers = await ledger.getAccountTransfers({
        account_id: id!,
        user_data_128: 0n,
        user_data_64: 0n,
        user_data_32: 0,
        code: req.kind,
        timestamp_min: window.timestamp_min,
        timestamp_max: window.timestamp_max,
        limit: pageSize + 1,
        flags: directionFlags | AccountFilterFlags.reversed,
      });
      const page = transfers.slice(0, pageSize);
      return {
        entries: page.map((t) =>
          create(AccountEntrySchema, {
            transfer: transferView(t),
            direction: t.debit_account_id === id ? TransferDirection.DEBIT : TransferDirection.CREDIT,
          }),
        ),
        nextPageToken: transfers.length > pageSize ? encodePageToken(page[page.length - 1]!.timestamp, query) : "",
      };
    },

    async getBalanceHistory(req: GetBalanceHistoryRequest, ctx: HandlerContext) {
      const p = principalOf(ctx);
      const v: Violation[] = [];
      const id = resolveAccountRef(req.account, v);
      const pageSize = parsePageSize(req.pageSize, v);
      const range = parseTimeRange(req.startTime, req.endTime, v);
      const query = ["GetBalanceHistory", id, range.start_ns, range.end_ns];
      const window = ledgerTimeWindow(range, decodePageToken(req.pageToken, query, v), v);
      throwIfInvalid(v);
      authorizeRead(p, id!);
      const { account } = await mustReadAccount(id!);
      if (!accountView(account).history) {
        throw failedPrecondition("NO_HISTORY", `account ${idToHex(id!)} does not keep balance history`, {
          account_id: idToHex(id!),
        });
      }
      if (window.empty) return { snapshots: [], nextPageToken: "" };
      const balances = await ledger.getAccountBalances({
        account_id: id!,
        user_data_128: 0n,
        user_data_64: 0n,
        user_data_32: 0,
        code: 0,
        timestamp_min: window.timestamp_min,
        timestamp_max: window.timestamp_max,
        limit: pageSize + 1,
        flags: AccountFilterFlags.debits | AccountFilterFlags.credits | AccountFilterFlags.reversed,
      });
      const page = balances.slice(0, pageSize);
      return {
        snapshots: page.map((b) =>
          create(BalanceSnapshotSchema, { balance: balanceView(b), time: timestampFromNs(b.timestamp) }),
        ),
        nextPageToken: balances.length > pageSize ? encodePageToken(page[page.length - 1]!.timestamp, query) : "",
      };
    },
  };
}
