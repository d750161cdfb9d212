/**
 * ADR 0104: the engine validates and encodes a create_transfers batch once, logs those bytes and
 * applies them as they are (createTransfersWire). Applying the encoded batch must give exactly the
 * results and the state that applying the Transfer objects gives, for every kind of event, and the
 * one-pass validation must refuse exactly what checkTransfer refuses, with the same message.
 */
import { describe, expect, it } from "vitest";
import { AccountFlags, CreateTransferStatus, TransferFlags, amount_max, type Account, type Transfer } from "tigerbeetle-node";
import { createStateMachine } from "../../../src/ledger/embedded/state-machine.js";
import type { StateMachine } from "../../../src/ledger/embedded/state-machine.contract.js";
import { EVENT_SIZE, checkAndEncodeTransfers, checkTransfer, encodeTransfers } from "../../../src/ledger/embedded/codec.js";
import { newAccount, newTransfer } from "../../../src/domain/records.js";

const T0 = 1_000_000_000_000n;
const S = 1_000_000_000n;
const BIG = (1n << 127n) + 12345n;

const acc = (id: bigint, flags = 0, ledger = 1): Account => newAccount({ id, ledger, code: 10, flags });
const tr = (id: bigint, dr: bigint, cr: bigint, amount: bigint, over: Partial<Transfer> = {}): Transfer =>
  newTransfer({ id, debit_account_id: dr, credit_account_id: cr, amount, ledger: 1, code: 20, ...over });
const post = (id: bigint, pending: bigint, amount: bigint): Transfer =>
  tr(id, 0n, 0n, amount, { pending_id: pending, ledger: 0, code: 0, flags: TransferFlags.post_pending_transfer });
const voidT = (id: bigint, pending: bigint): Transfer =>
  tr(id, 0n, 0n, 0n, { pending_id: pending, ledger: 0, code: 0, flags: TransferFlags.void_pending_transfer });
const L = TransferFlags.linked;

/** Batches covering plain, linked (kept and rolled back), pending, post/void, balancing, closing, exists and failures. */
const BATCHES: Transfer[][] = [
  [tr(10n, 1n, 2n, 100n), tr(11n, 2n, 3n, 7n, { user_data_128: BIG, user_data_64: 99n, user_data_32: 5 }), tr(12n, 3n, 1n, 1n)],
  [tr(20n, 1n, 2n, 5n, { flags: L }), tr(21n, 2n, 3n, 6n, { flags: L }), tr(22n, 3n, 1n, 7n)],
  // a chain that breaks on its last event: every change rolls back, including the closed flag
  [tr(30n, 4n, 2n, 0n, { flags: L | TransferFlags.pending | TransferFlags.closing_debit }), tr(31n, 1n, 2n, 8n, { flags: L }), tr(32n, 1n, 9n, 1n)],
  [tr(40n, 1n, 2n, 50n, { flags: TransferFlags.pending, timeout: 5 }), tr(41n, 1n, 2n, 60n, { flags: TransferFlags.pending }), tr(42n, 2n, 1n, 70n, { flags: TransferFlags.pending })],
  [post(43n, 41n, 25n), voidT(44n, 42n), post(45n, 99n, amount_max)],
  [tr(50n, 5n, 1n, 1_000_000n), tr(51n, 5n, 1n, 10n), tr(52n, 1n, 5n, 1_000n, { flags: TransferFlags.balancing_credit })],
  // retries: exists, exists_with_different_*, an already failed id, a bad chain end
  [tr(10n, 1n, 2n, 100n), tr(11n, 2n, 3n, 8n, { user_data_128: BIG, user_data_64: 99n, user_data_32: 5 }), tr(51n, 5n, 1n, 10n), tr(60n, 1n, 2n, 1n, { flags: L })],
  [tr(0n, 1n, 2n, 1n), tr(61n, 1n, 1n, 1n), tr(62n, 1n, 2n, 1n, { timeout: 3 }), tr(63n, 1n, 6n, 1n), tr(64n, 1n, 2n, 1n, { timestamp: 5n })],
];

function setup(): StateMachine {
  const sm = createStateMachine();
  sm.createAccounts([acc(1n), acc(2n), acc(3n, AccountFlags.history), acc(4n), acc(5n, AccountFlags.debits_must_not_exceed_credits), acc(6n, 0, 2)], T0);
  return sm;
}
const bytes = (sm: StateMachine) => Buffer.concat([...sm.snapshotChunks()].map((c) => Buffer.from(c)));
const name = (s: CreateTransferStatus) => CreateTransferStatus[s];

describe("createTransfersWire", () => {
  it.each([
    ["aligned", 0],
    ["unaligned (copied first)", 1],
  ])("applies an encoded batch exactly as the same Transfer objects (%s body)", (_label, shift) => {
    const objects = setup();
    const wire = setup();
    let now = T0;
    for (const batch of BATCHES) {
      now += S;
      const want = objects.createTransfers(batch, now);
      const encoded = checkAndEncodeTransfers(batch);
      const body = new Uint8Array(encoded.length + shift).subarray(shift);
      body.set(encoded);
      expect(wire.createTransfersWire(body, batch.length, now)).toEqual(want);
    }
    expect(bytes(wire).equals(bytes(objects))).toBe(true);
    // the broken chain left account 4 open and the balances of 1 and 2 as before it
    const [a4] = wire.lookupAccounts([4n]);
    expect(a4!.flags & AccountFlags.closed).toBe(0);
    expect(a4!.debits_pending).toBe(0n);
    expect(name(wire.createTransfersWire(checkAndEncodeTransfers([tr(70n, 4n, 2n, 3n)]), 1, now + S)[0]!.status)).toBe("created");
  });

  it("rolls a broken chain back on both paths: same statuses, balances untouched", () => {
    const sm = setup();
    const before = sm.lookupAccounts([1n, 2n, 4n]);
    const r = sm.createTransfersWire(checkAndEncodeTransfers(BATCHES[2]!), 3, T0 + S).map((x) => name(x.status));
    expect(r).toEqual(["linked_event_failed", "linked_event_failed", "credit_account_not_found"]);
    expect(sm.lookupAccounts([1n, 2n, 4n])).toEqual(before);
  });
});

describe("checkAndEncodeTransfers", () => {
  it("encodes exactly what encodeTransfers encodes", () => {
    const batch = BATCHES.flat();
    const out = new Uint8Array(batch.length * EVENT_SIZE);
    encodeTransfers(batch, out, 0);
    expect(Buffer.from(checkAndEncodeTransfers(batch)).equals(Buffer.from(out))).toBe(true);
  });

  it.each<[string, unknown]>([
    ["not an object", 5],
    ["null", null],
    ["an array", []],
    ["id missing", { ...tr(1n, 1n, 2n, 1n), id: undefined }],
    ["id negative", tr(-1n, 1n, 2n, 1n)],
    ["amount past 128 bits", tr(1n, 1n, 2n, 1n << 128n)],
    ["debit account a number", { ...tr(1n, 1n, 2n, 1n), debit_account_id: 1 }],
    ["user_data_64 past 64 bits", tr(1n, 1n, 2n, 1n, { user_data_64: 1n << 64n })],
    ["ledger negative", tr(1n, 1n, 2n, 1n, { ledger: -1 })],
    ["timeout fractional", tr(1n, 1n, 2n, 1n, { timeout: 1.5 })],
    ["code past u16", tr(1n, 1n, 2n, 1n, { code: 0x1_0000 })],
    ["flags a bigint", { ...tr(1n, 1n, 2n, 1n), flags: 1n }],
    ["timestamp a number", { ...tr(1n, 1n, 2n, 1n), timestamp: 0 }],
  ])("refuses %s with checkTransfer's error", (_label, bad) => {
    const batch = [tr(1n, 1n, 2n, 1n), bad];
    let want: unknown;
    try {
      checkTransfer(bad, 1);
    } catch (err) {
      want = err;
    }
    expect(want).toBeInstanceOf(TypeError);
    expect(() => checkAndEncodeTransfers(batch)).toThrow(want as TypeError);
  });
});
