/**
 * Structured errors for every service: a gRPC status code, a message a person can act on, and
 * details from masques/ledger/v1/common.proto. Every error carries an ErrorInfo with a stable
 * machine-readable `reason`; INVALID_ARGUMENT adds a BadRequest naming each field and the rule it
 * breaks; insufficient funds adds InsufficientFunds with the available balance.
 *
 * google.rpc.ErrorInfo / BadRequest are not shipped by protobuf-es v2's well-known types and we
 * take no registry dependencies, so equivalent messages live in common.proto.
 */
import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  FieldViolationSchema,
  IdempotencyKeyReusedSchema,
  InsufficientFundsSchema,
} from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { formatMicroAsUsd } from "../domain/money.js";

export type Metadata = Record<string, string>;

/** A detail to attach (what `ConnectError` accepts as outgoing details). */
export interface Detail {
  desc: DescMessage;
  value: MessageInitShape<DescMessage>;
}

export interface Violation {
  /** Path of the field in the request, e.g. "amount_micro" or "account.agent_wallet". */
  field: string;
  /** The rule it breaks, e.g. "must be > 0". */
  description: string;
}

function errorInfo(reason: string, metadata: Metadata = {}) {
  return { desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason, metadata }) };
}

/** A status with an ErrorInfo detail (and optional extra details). */
export function statusError(
  code: Code,
  reason: string,
  message: string,
  metadata: Metadata = {},
  extra: Detail[] = [],
): ConnectError {
  return new ConnectError(message, code, undefined, [errorInfo(reason, metadata), ...extra]);
}

/** INVALID_ARGUMENT naming every bad field: message "amount_micro: must be > 0; ...". */
export function invalidArgument(violations: readonly Violation[]): ConnectError {
  const message = violations.map((v) => `${v.field}: ${v.description}`).join("; ");
  const badRequest = create(BadRequestSchema, {
    fieldViolations: violations.map((v) => create(FieldViolationSchema, v)),
  });
  return statusError(Code.InvalidArgument, "INVALID_ARGUMENT", message, {}, [
    { desc: BadRequestSchema, value: badRequest },
  ]);
}

export function unauthenticated(message = "no authenticated principal"): ConnectError {
  return statusError(Code.Unauthenticated, "UNAUTHENTICATED", message);
}

export function permissionDenied(message: string, metadata: Metadata = {}): ConnectError {
  return statusError(Code.PermissionDenied, "PERMISSION_DENIED", message, metadata);
}

export function accountNotFound(accountIdHex: string): ConnectError {
  return statusError(Code.NotFound, "ACCOUNT_NOT_FOUND", `account ${accountIdHex} does not exist`, {
    account_id: accountIdHex,
  });
}

/** FAILED_PRECONDITION with the balance the account could spend and what was needed. */
export function insufficientFunds(
  accountIdHex: string,
  availableMicro: bigint,
  requiredMicro: bigint,
): ConnectError {
  const detail = create(InsufficientFundsSchema, {
    accountId: accountIdHex,
    availableMicro,
    requiredMicro,
  });
  return statusError(
    Code.FailedPrecondition,
    "INSUFFICIENT_FUNDS",
    `insufficient funds in account ${accountIdHex}: available ${formatMicroAsUsd(availableMicro)} USD, ` +
      `required ${formatMicroAsUsd(requiredMicro)} USD`,
    {
      account_id: accountIdHex,
      available_micro: availableMicro.toString(),
      required_micro: requiredMicro.toString(),
    },
    [{ desc: InsufficientFundsSchema, value: detail }],
  );
}

/** ALREADY_EXISTS: the idempotency key already names a different request. */
export function idempotencyKeyReused(key: string, existingIdHex: string, what: string): ConnectError {
  const detail = create(IdempotencyKeyReusedSchema, { idempotencyKey: key, existingId: existingIdHex });
  return statusError(
    Code.AlreadyExists,
    "IDEMPOTENCY_KEY_REUSED",
    `idempotency key ${JSON.stringify(key)} was already used for a different ${what} (${existingIdHex}); ` +
      `use a new key for a new request`,
    { idempotency_key: key, existing_id: existingIdHex },
    [{ desc: IdempotencyKeyReusedSchema, value: detail }],
  );
}

export function failedPrecondition(reason: string, message: string, metadata: Metadata = {}): ConnectError {
  return statusError(Code.FailedPrecondition, reason, message, metadata);
}

export function alreadyExists(reason: string, message: string, metadata: Metadata = {}): ConnectError {
  return statusError(Code.AlreadyExists, reason, message, metadata);
}

/** The ledger answered something the service never expects (a bug, not a user error). */
export function ledgerRejected(operation: string, status: string): ConnectError {
  return statusError(
    Code.Internal,
    "LEDGER_REJECTED",
    `ledger rejected ${operation}: ${status}`,
    { operation, status },
  );
}
