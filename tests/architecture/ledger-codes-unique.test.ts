/**
 * Ledger ids, account codes and transfer codes name what a ledger record is (the streamer, the
 * reconciler and statements classify by them), so two meanings must never share one number. Four
 * branches once added codes in parallel and two pairs collided (peer_transfer = audit_anchor = 50,
 * conversion = refund_author = 60): the reconcile count of peer transfers included audit anchors.
 * This test fails on any such collision, and on a public enum (common.proto) whose number
 * disagrees with the daemon's code of the same name.
 */
import { describe, expect, it } from "vitest";
import { AccountCode, Ledger, TransferCode } from "../../src/domain/codes.js";
import { AccountKind, TransferKind } from "../../clients/gen/masques/ledger/v1/common_pb.js";

function duplicates(table: Record<string, number>): string[] {
  const byValue = new Map<number, string[]>();
  for (const [name, value] of Object.entries(table)) byValue.set(value, [...(byValue.get(value) ?? []), name]);
  return [...byValue.entries()].filter(([, names]) => names.length > 1).map(([v, names]) => `${v}: ${names.join(", ")}`);
}

/** protobuf-es enum (name → number, plus reverse entries) → the public names in snake_case. */
function publicNames(e: Record<string, string | number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of Object.entries(e)) {
    if (typeof v !== "number" || k === "UNSPECIFIED") continue;
    out.set(k.toLowerCase(), v);
  }
  return out;
}

describe("ledger codes", () => {
  it("no two ledgers, account codes or transfer codes share a number", () => {
    expect(duplicates(Ledger)).toEqual([]);
    expect(duplicates(AccountCode)).toEqual([]);
    expect(duplicates(TransferCode)).toEqual([]);
  });

  it("every public TransferKind / AccountKind has the number of the daemon's code of the same name", () => {
    const mismatched: string[] = [];
    for (const [name, n] of publicNames(TransferKind as unknown as Record<string, string | number>)) {
      const code = (TransferCode as Record<string, number>)[name];
      if (code !== undefined && code !== n) mismatched.push(`TransferKind ${name}: proto ${n}, daemon ${code}`);
    }
    for (const [name, n] of publicNames(AccountKind as unknown as Record<string, string | number>)) {
      const code = (AccountCode as Record<string, number>)[name];
      if (code !== undefined && code !== n) mismatched.push(`AccountKind ${name}: proto ${n}, daemon ${code}`);
    }
    expect(mismatched).toEqual([]);
  });
});
