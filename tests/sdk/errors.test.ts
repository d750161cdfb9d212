import { describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  DeadlineExceededError,
  IdempotencyKeyReusedError,
  InsufficientFundsError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  toMasquesError,
  UnavailableError,
} from "../../clients/sdk/errors.js";

describe("typed errors", () => {
  it("insufficient funds shows the balance, the reservation and the shortfall", () => {
    const e = toMasquesError(new ConnectError("wallet cannot cover the hold", Code.FailedPrecondition), {
      reason: "INSUFFICIENT_FUNDS",
      available_micro: 1_250_000n,
      required_micro: 5_000_000n,
    });
    expect(e).toBeInstanceOf(InsufficientFundsError);
    expect(e.kind).toBe("user");
    expect(e.message).toBe("Insufficient funds: this needs a reservation of $5.00, your available balance is $1.25. Nothing was charged.");
    expect(e.hint).toMatch(/Add at least \$3.75/);
    expect(e.toJSON()).toMatchObject({ code: "failed_precondition", available_micro: "1250000", required_micro: "5000000" });
  });

  it("invalid argument names the field and the rule", () => {
    const e = toMasquesError(new ConnectError("bad", Code.InvalidArgument), {
      field_violations: [{ field: "max_spend_micro", description: "must be > 0" }],
    });
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect(e.message).toBe("Invalid max_spend_micro: must be > 0");
    expect((e as InvalidArgumentError).field).toBe("max_spend_micro");
    expect(e.hint).toBe("Fix `max_spend_micro` (must be > 0) and retry.");
  });

  it("maps reasons and codes to actionable classes; outages are kind outage", () => {
    const reused = toMasquesError(new ConnectError("key reused", Code.AlreadyExists), { reason: "IDEMPOTENCY_KEY_REUSED" });
    expect(reused).toBeInstanceOf(IdempotencyKeyReusedError);
    expect(reused.hint).toMatch(/fresh idempotency key/);
    const denied = toMasquesError(new ConnectError("agent a1 cannot act on wallet of a2", Code.PermissionDenied));
    expect(denied).toBeInstanceOf(PermissionDeniedError);
    expect(denied.hint).toMatch(/token/);
    const masque = toMasquesError(new ConnectError('unknown masque "nope"', Code.NotFound));
    expect(masque).toBeInstanceOf(NotFoundError);
    expect(masque.message).toMatch(/Unknown masque/);
    const down = toMasquesError(new ConnectError("connect ECONNREFUSED", Code.Unavailable), {}, { endpoint: "http://127.0.0.1:1" });
    expect(down).toBeInstanceOf(UnavailableError);
    expect(down.kind).toBe("outage");
    expect(down.message).toContain("http://127.0.0.1:1");
    expect(down.hint).toMatch(/masques-ledger serve/);
    const slow = toMasquesError(new ConnectError("deadline", Code.DeadlineExceeded));
    expect(slow).toBeInstanceOf(DeadlineExceededError);
    expect(slow.hint).toMatch(/nothing is charged twice/);
  });
});
