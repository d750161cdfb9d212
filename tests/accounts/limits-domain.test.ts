/**
 * The pure parts of issue 11's account fixes: the ledger window a time range becomes
 * (src/domain/time-range.ts) and the issuance-limit chain and its outcomes
 * (src/domain/balance-bounds.ts).
 */
import { CreateTransferStatus as CT, TransferFlags } from "tigerbeetle-node";
import { describe, expect, it } from "vitest";
import { AMOUNT_MAX_MICRO, depositTransfer, agentWalletId } from "../../src/domain/accounts.js";
import {
  issuanceLimitControlId,
  issuanceLimitFunding,
  issuanceLimitIssuedId,
  issuanceOutcome,
  withIssuanceLimit,
} from "../../src/domain/balance-bounds.js";
import { Ledger } from "../../src/domain/codes.js";
import { LEDGER_TIMESTAMP_MAX_NS as TS_MAX, ledgerTimeWindow, parseTimeRange } from "../../src/domain/time-range.js";
import type { Violation } from "../../src/domain/violations.js";

describe("ledgerTimeWindow", () => {
  const window = (start_ns: bigint | null, end_ns: bigint | null, before = 0n) => {
    const v: Violation[] = [];
    const w = ledgerTimeWindow({ start_ns, end_ns }, before, v);
    return { w, fields: v.map((x) => x.field) };
  };

  it("never hands the ledger a bound outside 1..2^63-1, and empties ranges that cannot match", () => {
    expect(window(null, null).w).toEqual({ empty: false, timestamp_min: 0n, timestamp_max: 0n });
    expect(window(TS_MAX, null).w).toEqual({ empty: false, timestamp_min: TS_MAX, timestamp_max: 0n });
    expect(window(TS_MAX + 1n, null).w).toEqual({ empty: true });
    expect(window(null, TS_MAX).w).toEqual({ empty: false, timestamp_min: 0n, timestamp_max: TS_MAX - 1n });
    expect(window(null, TS_MAX + 1n).w).toEqual({ empty: false, timestamp_min: 0n, timestamp_max: 0n });
    expect(window(null, 1n << 80n).w).toEqual({ empty: false, timestamp_min: 0n, timestamp_max: 0n });
    expect(window(-(1n << 70n), 2n).w).toEqual({ empty: false, timestamp_min: 0n, timestamp_max: 1n });
    expect(window(1n, null).w).toEqual({ empty: false, timestamp_min: 0n, timestamp_max: 0n });
    expect(window(null, 1n).w).toEqual({ empty: true });
    expect(window(5n, 5n).w).toEqual({ empty: true });
    expect(window(5n, 6n).w).toEqual({ empty: false, timestamp_min: 5n, timestamp_max: 5n });
  });

  it("a page cursor narrows the end; one outside the ledger's timestamps names page_token", () => {
    expect(window(null, 100n, 50n).w).toEqual({ empty: false, timestamp_min: 0n, timestamp_max: 49n });
    expect(window(null, 50n, 100n).w).toEqual({ empty: false, timestamp_min: 0n, timestamp_max: 49n });
    expect(window(60n, null, 50n).w).toEqual({ empty: true });
    expect(window(null, null, 1n).w).toEqual({ empty: true });
    expect(window(null, null, TS_MAX).w).toEqual({ empty: false, timestamp_min: 0n, timestamp_max: TS_MAX - 1n });
    expect(window(null, null, TS_MAX + 1n).fields).toEqual(["page_token"]);
  });

  it("parseTimeRange: equal bounds are an empty range, inverted ones name end_time", () => {
    const v: Violation[] = [];
    expect(parseTimeRange({ seconds: 7n, nanos: 0 }, { seconds: 7n, nanos: 0 }, v)).toEqual({
      start_ns: 7_000_000_000n,
      end_ns: 7_000_000_000n,
    });
    expect(v).toEqual([]);
    parseTimeRange({ seconds: 7n, nanos: 1 }, { seconds: 7n, nanos: 0 }, v);
    expect(v.map((x) => x.field)).toEqual(["end_time"]);
  });
});

describe("the issuance-limit chain", () => {
  const deposit = depositTransfer({ walletId: agentWalletId("a"), amountMicro: 42n, rail: "base", idempotencyKey: "k" });

  it("links the issuing transfer first, then the same amount from the control account", () => {
    const [issuing, limit] = withIssuanceLimit(deposit) as [typeof deposit, typeof deposit];
    expect(issuing).toEqual({ ...deposit, flags: TransferFlags.linked });
    expect(limit).toMatchObject({
      debit_account_id: issuanceLimitControlId(),
      credit_account_id: issuanceLimitIssuedId(),
      amount: 42n,
      user_data_128: deposit.id,
      ledger: Ledger.issuance_limit,
      flags: TransferFlags.none,
    });
    expect(withIssuanceLimit(deposit)[1]!.id).toBe(limit.id); // retries rebuild the same ids
    expect(issuanceLimitFunding().amount).toBe(AMOUNT_MAX_MICRO);
  });

  it("refuses to build a chain for what cannot be an issuance", () => {
    expect(() => withIssuanceLimit({ ...deposit, flags: TransferFlags.pending })).toThrow(/flags/);
    expect(() => withIssuanceLimit({ ...deposit, ledger: Ledger.usage_input_tokens })).toThrow(/ledger/);
    expect(() => withIssuanceLimit({ ...deposit, amount: AMOUNT_MAX_MICRO + 1n })).toThrow(/out of range/);
  });

  it("maps the ledger's answers", () => {
    const r = (a: CT, b: CT) => issuanceOutcome([{ status: a }, { status: b }]);
    expect(r(CT.created, CT.created)).toEqual({ kind: "created" });
    expect(r(CT.exists, CT.linked_event_failed)).toEqual({ kind: "issuing_failed", status: CT.exists });
    expect(r(CT.exists_with_different_amount, CT.linked_event_failed)).toEqual({
      kind: "issuing_failed",
      status: CT.exists_with_different_amount,
    });
    expect(r(CT.linked_event_failed, CT.exceeds_credits)).toEqual({ kind: "limit_exceeded" });
    expect(r(CT.linked_event_failed, CT.id_already_failed)).toEqual({ kind: "limit_exceeded" });
    expect(r(CT.linked_event_failed, CT.debit_account_not_found)).toEqual({
      kind: "limit_failed",
      status: CT.debit_account_not_found,
    });
    expect(() => issuanceOutcome([{ status: CT.created }])).toThrow(/expected 2 results/);
  });
});
