/**
 * Ledger records (tigerbeetle-node Account / Transfer / AccountBalance) -> API messages
 * (masques.ledger.v1 Account / Transfer / Balance), plus the request-side conversions every
 * service shares: ids, timestamps and page tokens. Shared by all services (SessionService too).
 */
import { create } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { createHash } from "node:crypto";
import {
  AccountFlags,
  TransferFlags,
  type Account as LedgerAccount,
  type AccountBalance as LedgerBalance,
  type Transfer as LedgerTransfer,
} from "tigerbeetle-node";
import {
  AccountSchema,
  BalanceSchema,
  TransferSchema,
  TransferPhase,
  type Account,
  type Balance,
  type Transfer,
} from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { TransferCode } from "../domain/codes.js";
import { AMOUNT_MAX_MICRO, availableMicro, type Balances } from "../domain/accounts.js";
import { idToHex } from "../domain/ids.js";
import { Code } from "@connectrpc/connect";
import { statusError, type Violation } from "./errors.js";

const INT64_MIN = -(1n << 63n);

/** Guard the API's 64-bit money fields: a ledger value outside them is a bug, never truncated. */
function int64(v: bigint, what: string): bigint {
  if (v < INT64_MIN || v > AMOUNT_MAX_MICRO) {
    throw statusError(Code.Internal, "AMOUNT_OUT_OF_RANGE", `${what} does not fit in int64`);
  }
  return v;
}
function uint64(v: bigint, what: string): bigint {
  if (v < 0n || v > AMOUNT_MAX_MICRO) {
    throw statusError(Code.Internal, "AMOUNT_OUT_OF_RANGE", `${what} does not fit the API range`);
  }
  return v;
}

export function timestampFromNs(ns: bigint): Timestamp {
  return create(TimestampSchema, { seconds: ns / 1_000_000_000n, nanos: Number(ns % 1_000_000_000n) });
}

export function balanceView(b: Balances): Balance {
  return create(BalanceSchema, {
    debitsPendingMicro: uint64(b.debits_pending, "debits_pending"),
    debitsPostedMicro: uint64(b.debits_posted, "debits_posted"),
    creditsPendingMicro: uint64(b.credits_pending, "credits_pending"),
    creditsPostedMicro: uint64(b.credits_posted, "credits_posted"),
    postedMicro: int64(b.credits_posted - b.debits_posted, "posted balance"),
    pendingMicro: int64(b.credits_pending - b.debits_pending, "pending balance"),
    availableMicro: int64(availableMicro(b), "available balance"),
  });
}

export function accountView(a: LedgerAccount, creditLimitMicro = 0n): Account {
  return create(AccountSchema, {
    accountId: idToHex(a.id),
    kind: a.code,
    balance: balanceView(a),
    creditLimitMicro: uint64(creditLimitMicro, "credit limit"),
    history: (a.flags & AccountFlags.history) !== 0,
    closed: (a.flags & AccountFlags.closed) !== 0,
    createTime: timestampFromNs(a.timestamp),
  });
}

function phaseOf(flags: number): TransferPhase {
  if (flags & TransferFlags.pending) return TransferPhase.PENDING;
  if (flags & TransferFlags.post_pending_transfer) return TransferPhase.POST_PENDING;
  if (flags & TransferFlags.void_pending_transfer) return TransferPhase.VOID_PENDING;
  return TransferPhase.POSTED;
}

/** Transfer kinds whose user_data_32 is a rail number. */
const RAIL_CODES = new Set<number>([TransferCode.deposit, TransferCode.payout]);

export function transferView(t: LedgerTransfer): Transfer {
  return create(TransferSchema, {
    transferId: idToHex(t.id),
    debitAccountId: idToHex(t.debit_account_id),
    creditAccountId: idToHex(t.credit_account_id),
    amountMicro: uint64(t.amount, "transfer amount"),
    kind: t.code,
    phase: phaseOf(t.flags),
    pendingTransferId: t.pending_id === 0n ? "" : idToHex(t.pending_id),
    referenceId: t.user_data_128 === 0n ? "" : idToHex(t.user_data_128),
    rail: RAIL_CODES.has(t.code) ? t.user_data_32 : 0,
    timeoutS: t.timeout,
    createTime: timestampFromNs(t.timestamp),
  });
}

export function balanceSnapshotTime(b: LedgerBalance): Timestamp {
  return timestampFromNs(b.timestamp);
}

// ---------------------------------------------------------------------------------------------
// Request-side parsing

const HEX_ID_RE = /^[0-9a-f]{32}$/;

/** Parse a 32-hex id field; pushes a violation and returns null when invalid. */
export function parseHexId(value: string, field: string, violations: Violation[]): bigint | null {
  if (!HEX_ID_RE.test(value)) {
    violations.push({ field, description: "must be 32 lowercase hex digits" });
    return null;
  }
  const id = BigInt(`0x${value}`);
  if (id === 0n || id === (1n << 128n) - 1n) {
    violations.push({ field, description: "must not be 0 or 2^128-1" });
    return null;
  }
  return id;
}

// Time-range filters: src/domain/time-range.ts.

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 1000;

export function parsePageSize(pageSize: number, violations: Violation[]): number {
  if (pageSize > MAX_PAGE_SIZE) {
    violations.push({ field: "page_size", description: `must be <= ${MAX_PAGE_SIZE}` });
    return MAX_PAGE_SIZE;
  }
  return pageSize === 0 ? DEFAULT_PAGE_SIZE : pageSize;
}

/**
 * Page tokens: opaque to callers; inside, the ledger timestamp to continue strictly before
 * (ledger timestamps are unique, so a timestamp cursor never skips or repeats an entry) and a
 * fingerprint of the query, so a token replayed with other filters is refused instead of
 * silently returning a wrong page.
 */
function fingerprint(query: readonly unknown[]): string {
  const json = JSON.stringify(query, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
  return createHash("sha256").update(json).digest("hex").slice(0, 16);
}

export function encodePageToken(beforeNs: bigint, query: readonly unknown[]): string {
  return Buffer.from(`v1.${beforeNs}.${fingerprint(query)}`).toString("base64url");
}

/** Returns the cursor (0n = first page); pushes a violation for a malformed or foreign token. */
export function decodePageToken(token: string, query: readonly unknown[], violations: Violation[]): bigint {
  if (token === "") return 0n;
  const m = /^v1\.(\d{1,20})\.([0-9a-f]{16})$/.exec(Buffer.from(token, "base64url").toString("utf8"));
  if (!m || m[2] !== fingerprint(query)) {
    violations.push({
      field: "page_token",
      description: "must be a next_page_token returned for the same request filters",
    });
    return 0n;
  }
  return BigInt(m[1]!);
}
