/**
 * Decode the daemon's structured error details (proto/masques/ledger/v1/common.proto: ErrorInfo,
 * BadRequest, InsufficientFunds, IdempotencyKeyReused) into `ErrorFacts`, then into a typed error.
 */
import { ConnectError } from "@connectrpc/connect";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  IdempotencyKeyReusedSchema,
  InsufficientFundsSchema,
} from "../gen/masques/ledger/v1/common_pb.js";
import { toMasquesError, type ErrorFacts, type MasquesError } from "./errors.js";

export function factsOf(err: unknown): ErrorFacts {
  if (!(err instanceof ConnectError)) return {};
  const facts: ErrorFacts = {};
  const info = err.findDetails(ErrorInfoSchema)[0];
  if (info) {
    facts.reason = info.reason;
    facts.metadata = { ...info.metadata };
    const hint = info.metadata["hint"];
    if (hint) facts.hint = hint;
  }
  const bad = err.findDetails(BadRequestSchema)[0];
  if (bad) facts.field_violations = bad.fieldViolations.map((v) => ({ field: v.field, description: v.description }));
  const funds = err.findDetails(InsufficientFundsSchema)[0];
  if (funds) {
    facts.available_micro = funds.availableMicro;
    facts.required_micro = funds.requiredMicro;
    facts.reason ??= "INSUFFICIENT_FUNDS";
  }
  const reused = err.findDetails(IdempotencyKeyReusedSchema)[0];
  if (reused) {
    facts.reason ??= "IDEMPOTENCY_KEY_REUSED";
    facts.metadata = { ...facts.metadata, idempotency_key: reused.idempotencyKey, existing_id: reused.existingId };
  }
  return facts;
}

/** ConnectError (or anything) -> typed MasquesError using the daemon's error details. */
export function errorFrom(err: unknown, context: { endpoint?: string; account_owner?: string } = {}): MasquesError {
  return toMasquesError(err, factsOf(err), context);
}
