/** Assertions on the daemon's structured errors (code + ErrorInfo reason + typed details). */
import { Code, ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  IdempotencyKeyReusedSchema,
  InsufficientFundsSchema,
} from "../../clients/gen/masques/ledger/v1/common_pb.js";

export async function rpcError(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail, but it succeeded");
}

export function reasonOf(err: ConnectError): string | undefined {
  return err.findDetails(ErrorInfoSchema)[0]?.reason;
}

export async function expectStatus(call: Promise<unknown>, code: Code, reason: string): Promise<ConnectError> {
  const err = await rpcError(call);
  expect({ code: Code[err.code], reason: reasonOf(err), message: err.rawMessage }).toMatchObject({
    code: Code[code],
    reason,
  });
  return err;
}

export async function expectDenied(call: Promise<unknown>): Promise<ConnectError> {
  return expectStatus(call, Code.PermissionDenied, "PERMISSION_DENIED");
}

/** INVALID_ARGUMENT whose BadRequest names exactly these fields. */
export async function expectInvalid(call: Promise<unknown>, fields: string[]): Promise<ConnectError> {
  const err = await expectStatus(call, Code.InvalidArgument, "INVALID_ARGUMENT");
  const violations = err.findDetails(BadRequestSchema)[0]?.fieldViolations ?? [];
  expect(violations.map((v) => v.field).sort()).toEqual([...fields].sort());
  for (const v of violations) expect(err.rawMessage).toContain(`${v.field}: ${v.description}`);
  return err;
}

export function insufficientFundsOf(err: ConnectError) {
  return err.findDetails(InsufficientFundsSchema)[0];
}

export function keyReusedOf(err: ConnectError) {
  return err.findDetails(IdempotencyKeyReusedSchema)[0];
}
