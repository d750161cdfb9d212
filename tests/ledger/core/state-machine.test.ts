/**
 * Direct tests of the embedded engine's deterministic core against TigerBeetle's documented
 * semantics (docs/reference/**, two-phase-transfers, linked-events, time) and its source where
 * the docs are silent (result precedence, transient failures, filter validation).
 */
import { describe, expect, it } from "vitest";
import {
  AccountFlags,
  CreateAccountStatus,
  CreateTransferStatus,
  TransferFlags,
  amount_max,
} from "tigerbeetle-node";
import type { Account, AccountFilter, QueryFilter, Transfer } from "tigerbeetle-node";
import { createStateMachine, restoreStateMachine } from "../../../src/ledger/embedded/state-machine.js";
import type { StateMachine } from "../../../src/ledger/embedded/state-machine.contract.js";
import { newAccount, newTransfer } from "../../../src/domain/records.js";

const T0 = 1_000_000_000_000n;
const S = 1_000_000_000n;
const U128_MAX = (1n << 128n) - 1n;

function acc(id: bigint, over: Partial<Account> = {}): Account {
  return newAccount({ id, ledger: 1, code: 10, ...over });
}

function tr(id: bigint, dr: bigint, cr: bigint, amount: bigint, over: Partial<Transfer> = {}): Transfer {
  return newTransfer({ id, debit_account_id: dr, credit_account_id: cr, amount, ledger: 1, code: 20, ...over });
}

function post(id: bigint, pending: bigint, amount: bigint, over: Partial<Transfer> = {}): Transfer {
  return tr(id, 0n, 0n, amount, { pending_id: pending, ledger: 0, code: 0, flags: TransferFlags.post_pending_transfer, ...over });
}
function voidT(id: bigint, pending: bigint, over: Partial<Transfer> = {}): Transfer {
  return tr(id, 0n, 0n, 0n, { pending_id: pending, ledger: 0, code: 0, flags: TransferFlags.void_pending_transfer, ...over });
}

const aName = (s: CreateAccountStatus) => CreateAccountStatus[s];
const tName = (s: CreateTransferStatus) => CreateTransferStatus[s];

class Harness {
  sm: StateMachine = createStateMachine();
  now = T0;
  accounts(events: Account[]): string[] {
    this.now += S;
    return this.sm.createAccounts(events, this.now).map((r) => aName(r.status));
  }
  transfers(events: Transfer[]): string[] {
    this.now += S;
    return this.sm.createTransfers(events, this.now).map((r) => tName(r.status));
  }
  account(id: bigint): Account {
    const [a] = this.sm.lookupAccounts([id]);
    if (a === undefined) throw new Error(`account ${id} not found`);
    return a;
  }
  balances(id: bigint): [bigint, bigint, bigint, bigint] {
    const a = this.account(id);
    return [a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted];
  }
}

function filter(account_id: bigint, over: Partial<AccountFilter> = {}): AccountFilter {
  return {
    account_id,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    code: 0,
    timestamp_min: 0n,
    timestamp_max: 0n,
    limit: 100,
    flags: 3,
    ...over,
  };
}
function qfilter(over: Partial<QueryFilter> = {}): QueryFilter {
  return {
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    ledger: 0,
    code: 0,
    timestamp_min: 0n,
    timestamp_max: 0n,
    limit: 100,
    flags: 0,
    ...over,
  };
}

describe("create_accounts", () => {
  it("creates accounts with strictly increasing timestamps and reports them", () => {
    const sm = createStateMachine();
    const r = sm.createAccounts([acc(1n), acc(2n), acc(3n)], T0);
    expect(r.map((x) => aName(x.status))).toEqual(["created", "created", "created"]);
    expect(r.map((x) => x.timestamp)).toEqual([T0, T0 + 1n, T0 + 2n]);
    // A clock that goes backwards never produces an older timestamp.
    const r2 = sm.createAccounts([acc(4n)], T0 - 100n);
    expect(r2[0]!.timestamp).toBe(T0 + 3n);
    expect(sm.lookupAccounts([4n])[0]!.timestamp).toBe(T0 + 3n);
    expect(sm.lastTimestampNs()).toBe(T0 + 3n);
  });

  it("returns exists with the original timestamp, and each exists_with_different_* in order", () => {
    const h = new Harness();
    const original = acc(1n, { user_data_128: 5n, user_data_64: 6n, user_data_32: 7, flags: AccountFlags.history });
    const [created] = h.sm.createAccounts([original], T0);
    const [again] = h.sm.createAccounts([original], T0 + 10n * S);
    expect(aName(again!.status)).toBe("exists");
    expect(again!.timestamp).toBe(created!.timestamp);
    expect(
      h.accounts([
        { ...original, flags: 0 },
        { ...original, user_data_128: 1n },
        { ...original, user_data_64: 1n },
        { ...original, user_data_32: 1 },
        { ...original, ledger: 2 },
        { ...original, code: 2 },
        // flags take precedence over every other difference
        { ...original, flags: 0, code: 2 },
      ]),
    ).toEqual([
      "exists_with_different_flags",
      "exists_with_different_user_data_128",
      "exists_with_different_user_data_64",
      "exists_with_different_user_data_32",
      "exists_with_different_ledger",
      "exists_with_different_code",
      "exists_with_different_flags",
    ]);
  });

  it("validates fields with the documented precedence", () => {
    const h = new Harness();
    expect(
      h.accounts([
        acc(1n, { reserved: 1 }),
        acc(1n, { flags: 1 << 6 }),
        acc(0n),
        acc(U128_MAX),
        acc(1n, { flags: AccountFlags.debits_must_not_exceed_credits | AccountFlags.credits_must_not_exceed_debits }),
        acc(1n, { debits_pending: 1n }),
        acc(1n, { debits_posted: 1n }),
        acc(1n, { credits_pending: 1n }),
        acc(1n, { credits_posted: 1n }),
        acc(1n, { ledger: 0 }),
        acc(1n, { code: 0 }),
        acc(1n, { timestamp: 5n }),
        // reserved_field outranks id_must_not_be_zero
        acc(0n, { reserved: 1 }),
      ]),
    ).toEqual([
      "reserved_field",
      "reserved_flag",
      "id_must_not_be_zero",
      "id_must_not_be_int_max",
      "flags_are_mutually_exclusive",
      "debits_pending_must_be_zero",
      "debits_posted_must_be_zero",
      "credits_pending_must_be_zero",
      "credits_posted_must_be_zero",
      "ledger_must_not_be_zero",
      "code_must_not_be_zero",
      "timestamp_must_be_zero",
      "reserved_field",
    ]);
    expect(h.sm.stats().accounts).toBe(0);
  });

  it("applies linked chains all-or-nothing and rejects an open chain", () => {
    const h = new Harness();
    const L = AccountFlags.linked;
    expect(h.accounts([acc(1n, { flags: L }), acc(2n, { flags: L }), acc(3n, { code: 0 }), acc(4n)])).toEqual([
      "linked_event_failed",
      "linked_event_failed",
      "code_must_not_be_zero",
      "created",
    ]);
    expect(h.sm.lookupAccounts([1n, 2n, 3n, 4n]).map((a) => a.id)).toEqual([4n]);
    // The ids of a rolled-back chain are free again.
    expect(h.accounts([acc(1n, { flags: L }), acc(2n)])).toEqual(["created", "created"]);
    // A chain left open at the end of the batch fails as a whole.
    expect(h.accounts([acc(5n), acc(6n, { flags: L }), acc(7n, { flags: L })])).toEqual([
      "created",
      "linked_event_failed",
      "linked_event_chain_open",
    ]);
    expect(h.sm.lookupAccounts([5n, 6n, 7n]).map((a) => a.id)).toEqual([5n]);
    // `exists` breaks a chain too.
    expect(h.accounts([acc(8n, { flags: L }), acc(4n)])).toEqual(["linked_event_failed", "exists"]);
    expect(h.sm.lookupAccounts([8n])).toEqual([]);
  });

  it("imports accounts with past timestamps that must not regress", () => {
    const h = new Harness();
    const I = AccountFlags.imported;
    const now = T0 + 100n * S;
    const r = h.sm.createAccounts([acc(1n, { flags: I, timestamp: 10n }), acc(2n, { flags: I, timestamp: 20n })], now);
    expect(r).toEqual([
      { timestamp: 10n, status: CreateAccountStatus.created },
      { timestamp: 20n, status: CreateAccountStatus.created },
    ]);
    const st = (events: Account[]) => h.sm.createAccounts(events, now + 1n).map((x) => aName(x.status));
    expect(st([acc(3n, { flags: I, timestamp: 15n })])).toEqual(["imported_event_timestamp_must_not_regress"]);
    expect(st([acc(3n, { flags: I, timestamp: now + 5n * S })])).toEqual(["imported_event_timestamp_must_not_advance"]);
    expect(st([acc(3n, { flags: I, timestamp: 0n })])).toEqual(["imported_event_timestamp_out_of_range"]);
    expect(st([acc(3n, { flags: I, timestamp: 30n }), acc(4n)])).toEqual(["created", "imported_event_expected"]);
    expect(st([acc(5n), acc(6n, { flags: I, timestamp: 40n })])).toEqual(["created", "imported_event_not_expected"]);
    // exists is reported before the regress check, so a re-import is idempotent.
    expect(st([acc(1n, { flags: I, timestamp: 10n })])).toEqual(["exists"]);
  });
});

describe("create_transfers", () => {
  function setup(): Harness {
    const h = new Harness();
    h.accounts([
      acc(1n),
      acc(2n),
      acc(3n, { flags: AccountFlags.debits_must_not_exceed_credits }),
      acc(4n, { flags: AccountFlags.credits_must_not_exceed_debits }),
      acc(5n, { ledger: 2 }),
      acc(6n, { ledger: 2 }),
    ]);
    return h;
  }

  it("moves balances and reports each result with the documented precedence", () => {
    const h = setup();
    expect(h.transfers([tr(100n, 1n, 2n, 50n)])).toEqual(["created"]);
    expect(h.balances(1n)).toEqual([0n, 50n, 0n, 0n]);
    expect(h.balances(2n)).toEqual([0n, 0n, 0n, 50n]);
    expect(
      h.transfers([
        tr(1n, 1n, 2n, 1n, { flags: 1 << 9 }),
        tr(0n, 1n, 2n, 1n),
        tr(U128_MAX, 1n, 2n, 1n),
        tr(1n, 0n, 2n, 1n),
        tr(1n, U128_MAX, 2n, 1n),
        tr(1n, 1n, 0n, 1n),
        tr(1n, 1n, U128_MAX, 1n),
        tr(1n, 1n, 1n, 1n),
        tr(1n, 1n, 2n, 1n, { pending_id: 9n }),
        tr(1n, 1n, 2n, 1n, { timeout: 1 }),
        tr(1n, 1n, 2n, 1n, { flags: TransferFlags.closing_debit }),
        tr(1n, 1n, 2n, 1n, { ledger: 0 }),
        tr(1n, 1n, 2n, 1n, { code: 0 }),
        tr(1n, 99n, 2n, 1n),
        tr(2n, 1n, 99n, 1n),
        tr(3n, 1n, 5n, 1n),
        tr(4n, 5n, 6n, 1n),
        tr(5n, 1n, 2n, 1n, { timestamp: 1n }),
        tr(6n, 1n, 2n, 1n, { flags: TransferFlags.post_pending_transfer | TransferFlags.void_pending_transfer }),
        tr(6n, 1n, 2n, 1n, { flags: TransferFlags.post_pending_transfer | TransferFlags.pending }),
        tr(6n, 1n, 2n, 1n, { flags: TransferFlags.void_pending_transfer | TransferFlags.balancing_debit }),
      ]),
    ).toEqual([
      "reserved_flag",
      "id_must_not_be_zero",
      "id_must_not_be_int_max",
      "debit_account_id_must_not_be_zero",
      "debit_account_id_must_not_be_int_max",
      "credit_account_id_must_not_be_zero",
      "credit_account_id_must_not_be_int_max",
      "accounts_must_be_different",
      "pending_id_must_be_zero",
      "timeout_reserved_for_pending_transfer",
      "closing_transfer_must_be_pending",
      "ledger_must_not_be_zero",
      "code_must_not_be_zero",
      "debit_account_not_found",
      "credit_account_not_found",
      "accounts_must_have_the_same_ledger",
      "transfer_must_have_the_same_ledger_as_accounts",
      "timestamp_must_be_zero",
      "flags_are_mutually_exclusive",
      "flags_are_mutually_exclusive",
      "flags_are_mutually_exclusive",
    ]);
    expect(h.balances(1n)).toEqual([0n, 50n, 0n, 0n]);
  });

  it("allows zero amounts", () => {
    const h = setup();
    expect(h.transfers([tr(1n, 1n, 2n, 0n)])).toEqual(["created"]);
    expect(h.sm.lookupTransfers([1n])[0]!.amount).toBe(0n);
  });

  it("returns exists with the original timestamp and exists_with_different_* in order", () => {
    const h = setup();
    const t = tr(7n, 1n, 2n, 10n, { user_data_128: 1n, user_data_64: 2n, user_data_32: 3 });
    const [first] = h.sm.createTransfers([t], T0 + 10n * S);
    const [again] = h.sm.createTransfers([t], T0 + 20n * S);
    expect(again).toEqual({ timestamp: first!.timestamp, status: CreateTransferStatus.exists });
    expect(
      h.transfers([
        { ...t, flags: TransferFlags.pending },
        { ...t, pending_id: 3n },
        { ...t, timeout: 1 },
        { ...t, debit_account_id: 3n },
        { ...t, credit_account_id: 3n },
        { ...t, amount: 11n },
        { ...t, user_data_128: 9n },
        { ...t, user_data_64: 9n },
        { ...t, user_data_32: 9 },
        { ...t, ledger: 2 },
        { ...t, code: 9 },
        // exists is checked before account existence and ledgers
        { ...t, debit_account_id: 99n, amount: 12n },
      ]),
    ).toEqual([
      "exists_with_different_flags",
      "exists_with_different_pending_id",
      "exists_with_different_timeout",
      "exists_with_different_debit_account_id",
      "exists_with_different_credit_account_id",
      "exists_with_different_amount",
      "exists_with_different_user_data_128",
      "exists_with_different_user_data_64",
      "exists_with_different_user_data_32",
      "exists_with_different_ledger",
      "exists_with_different_code",
      "exists_with_different_debit_account_id",
    ]);
    expect(h.balances(1n)).toEqual([0n, 10n, 0n, 0n]);
  });

  it("enforces balance limits; an id that failed transiently can never be reused", () => {
    const h = setup();
    expect(h.transfers([tr(1n, 3n, 1n, 1n)])).toEqual(["exceeds_credits"]);
    expect(h.transfers([tr(2n, 2n, 4n, 1n)])).toEqual(["exceeds_debits"]);
    expect(h.transfers([tr(3n, 1n, 3n, 10n), tr(4n, 4n, 2n, 10n)])).toEqual(["created", "created"]);
    // Now the same ids would succeed, but they already failed with a transient error.
    expect(h.transfers([tr(1n, 3n, 1n, 1n), tr(2n, 2n, 4n, 1n)])).toEqual(["id_already_failed", "id_already_failed"]);
    expect(h.transfers([tr(5n, 3n, 1n, 10n), tr(6n, 3n, 1n, 1n)])).toEqual(["created", "exceeds_credits"]);
    // Not-found is transient too; validation errors are not.
    expect(h.transfers([tr(7n, 1n, 77n, 1n), tr(8n, 1n, 2n, 1n, { code: 0 })])).toEqual([
      "credit_account_not_found",
      "code_must_not_be_zero",
    ]);
    h.accounts([acc(77n)]);
    expect(h.transfers([tr(7n, 1n, 77n, 1n), tr(8n, 1n, 2n, 1n)])).toEqual(["id_already_failed", "created"]);
  });

  it("reports overflows in the documented order", () => {
    const h = setup();
    const big = U128_MAX - 5n;
    expect(h.transfers([tr(1n, 1n, 2n, big)])).toEqual(["created"]);
    // debits_posted is checked even for a pending transfer
    expect(h.transfers([tr(2n, 1n, 2n, 10n, { flags: TransferFlags.pending })])).toEqual(["overflows_debits_posted"]);
    expect(h.transfers([tr(3n, 1n, 2n, 10n)])).toEqual(["overflows_debits_posted"]);
    expect(h.transfers([tr(4n, 2n, 1n, 10n)])).toEqual(["created"]);
    expect(h.transfers([tr(5n, 5n, 6n, big, { ledger: 2, flags: TransferFlags.pending })])).toEqual(["created"]);
    expect(h.transfers([tr(6n, 5n, 6n, 10n, { ledger: 2, flags: TransferFlags.pending })])).toEqual([
      "overflows_debits_pending",
    ]);
    expect(h.transfers([tr(7n, 6n, 5n, 1n, { ledger: 2 }), tr(8n, 5n, 6n, 10n, { ledger: 2 })])).toEqual([
      "created",
      "overflows_debits",
    ]);
  });

  it("rejects a timeout that overflows the timestamp space", () => {
    const h = setup();
    const late = (1n << 63n) - 10n * S;
    const [r] = h.sm.createTransfers([tr(1n, 1n, 2n, 1n, { flags: TransferFlags.pending, timeout: 100 })], late);
    expect(tName(r!.status)).toBe("overflows_timeout");
  });

  it("rolls back a broken linked chain: balances, lookups, account transfer lists", () => {
    const h = setup();
    const L = TransferFlags.linked;
    expect(
      h.transfers([
        tr(1n, 1n, 2n, 5n, { flags: L }),
        tr(2n, 1n, 2n, 5n, { flags: L | TransferFlags.pending, timeout: 10 }),
        tr(3n, 3n, 2n, 5n),
        tr(4n, 1n, 2n, 7n),
      ]),
    ).toEqual(["linked_event_failed", "linked_event_failed", "exceeds_credits", "created"]);
    expect(h.balances(1n)).toEqual([0n, 7n, 0n, 0n]);
    expect(h.balances(2n)).toEqual([0n, 0n, 0n, 7n]);
    expect(h.sm.lookupTransfers([1n, 2n, 3n, 4n]).map((t) => t.id)).toEqual([4n]);
    expect(h.sm.getAccountTransfers(filter(2n)).map((t) => t.id)).toEqual([4n]);
    expect(h.sm.stats()).toMatchObject({ transfers: 1, pending_open: 0 });
    expect(h.sm.nextExpiryNs()).toBeNull();
    // Rolled-back ids are reusable; only the transient failure is burnt.
    expect(h.transfers([tr(1n, 1n, 2n, 1n), tr(2n, 1n, 2n, 1n), tr(3n, 3n, 2n, 0n)])).toEqual([
      "created",
      "created",
      "id_already_failed",
    ]);
    expect(h.transfers([tr(9n, 1n, 2n, 1n, { flags: L })])).toEqual(["linked_event_chain_open"]);
    expect(h.sm.lookupTransfers([9n])).toEqual([]);
  });

  it("balancing transfers move at most what the limit allows", () => {
    const h = setup();
    h.transfers([tr(1n, 1n, 3n, 30n)]); // account 3 has 30 credits
    expect(h.transfers([tr(2n, 3n, 2n, 100n, { flags: TransferFlags.balancing_debit })])).toEqual(["created"]);
    expect(h.sm.lookupTransfers([2n])[0]!.amount).toBe(30n);
    expect(h.balances(3n)).toEqual([0n, 30n, 0n, 30n]);
    // Resubmission with an amount >= the moved amount is `exists`.
    expect(h.transfers([tr(2n, 3n, 2n, 100n, { flags: TransferFlags.balancing_debit })])).toEqual(["exists"]);
    expect(h.transfers([tr(2n, 3n, 2n, 29n, { flags: TransferFlags.balancing_debit })])).toEqual([
      "exists_with_different_amount",
    ]);
    // balancing_credit: account 4 may not have more credits than debits.
    h.transfers([tr(3n, 4n, 1n, 12n)]);
    expect(h.transfers([tr(4n, 2n, 4n, amount_max, { flags: TransferFlags.balancing_credit })])).toEqual(["created"]);
    expect(h.sm.lookupTransfers([4n])[0]!.amount).toBe(12n);
    expect(h.transfers([tr(5n, 2n, 4n, 5n, { flags: TransferFlags.balancing_credit })])).toEqual(["created"]);
    expect(h.sm.lookupTransfers([5n])[0]!.amount).toBe(0n);
  });
});

describe("two-phase transfers", () => {
  function setup(): Harness {
    const h = new Harness();
    h.accounts([acc(1n), acc(2n), acc(3n)]);
    return h;
  }

  it("post partial, post amount_max, post zero, void", () => {
    const h = setup();
    const P = TransferFlags.pending;
    expect(
      h.transfers([
        tr(10n, 1n, 2n, 100n, { flags: P }),
        tr(11n, 1n, 2n, 100n, { flags: P }),
        tr(12n, 1n, 2n, 100n, { flags: P }),
        tr(13n, 1n, 2n, 100n, { flags: P, user_data_64: 42n }),
      ]),
    ).toEqual(["created", "created", "created", "created"]);
    expect(h.balances(1n)).toEqual([400n, 0n, 0n, 0n]);
    expect(h.sm.stats().pending_open).toBe(4);
    expect(h.transfers([post(20n, 10n, 60n), post(21n, 11n, amount_max), post(22n, 12n, 0n), voidT(23n, 13n)])).toEqual([
      "created",
      "created",
      "created",
      "created",
    ]);
    expect(h.balances(1n)).toEqual([0n, 160n, 0n, 0n]);
    expect(h.balances(2n)).toEqual([0n, 0n, 0n, 160n]);
    expect(h.sm.stats().pending_open).toBe(0);
    const [p21, v23] = h.sm.lookupTransfers([21n, 23n]);
    expect(p21).toMatchObject({ amount: 100n, debit_account_id: 1n, credit_account_id: 2n, ledger: 1, code: 20, pending_id: 11n });
    expect(v23).toMatchObject({ amount: 100n, user_data_64: 42n, pending_id: 13n });
    expect(
      h.transfers([post(30n, 10n, 1n), voidT(31n, 13n), post(32n, 20n, 1n), post(33n, 99n, 1n), post(34n, 34n, 1n)]),
    ).toEqual([
      "pending_transfer_already_posted",
      "pending_transfer_already_voided",
      "pending_transfer_not_pending",
      "pending_transfer_not_found",
      "pending_id_must_be_different",
    ]);
    // Idempotent resubmission of posts/voids.
    expect(h.transfers([post(21n, 11n, amount_max), post(20n, 10n, 60n), voidT(23n, 13n), post(20n, 10n, 61n)])).toEqual([
      "exists",
      "exists",
      "exists",
      "exists_with_different_amount",
    ]);
  });

  it("validates post/void against the pending transfer", () => {
    const h = setup();
    h.transfers([tr(10n, 1n, 2n, 100n, { flags: TransferFlags.pending })]);
    expect(
      h.transfers([
        post(1n, 0n, 1n),
        post(1n, U128_MAX, 1n),
        post(1n, 10n, 1n, { timeout: 5 }),
        post(1n, 10n, 1n, { debit_account_id: 3n }),
        post(1n, 10n, 1n, { credit_account_id: 3n }),
        post(1n, 10n, 1n, { ledger: 9 }),
        post(1n, 10n, 1n, { code: 9 }),
        post(1n, 10n, 101n),
        voidT(1n, 10n, { amount: 50n }),
        post(1n, 10n, 1n, { debit_account_id: 1n, credit_account_id: 2n, ledger: 1, code: 20 }),
      ]),
    ).toEqual([
      "pending_id_must_not_be_zero",
      "pending_id_must_not_be_int_max",
      "timeout_reserved_for_pending_transfer",
      "pending_transfer_has_different_debit_account_id",
      "pending_transfer_has_different_credit_account_id",
      "pending_transfer_has_different_ledger",
      "pending_transfer_has_different_code",
      "exceeds_pending_transfer_amount",
      "pending_transfer_has_different_amount",
      "created",
    ]);
  });

  it("expires pending transfers: post/void after the deadline fail, pulse releases funds", () => {
    const h = setup();
    const [p] = h.sm.createTransfers([tr(10n, 1n, 2n, 100n, { flags: TransferFlags.pending, timeout: 5 })], T0);
    const [p11] = h.sm.createTransfers([tr(11n, 1n, 2n, 7n, { flags: TransferFlags.pending, timeout: 60 })], T0 + 1n);
    const deadline = p!.timestamp + 5n * S;
    expect(h.sm.nextExpiryNs()).toBe(deadline);
    expect(h.sm.pulse(deadline - 1n)).toBe(0);
    // After the deadline but before a pulse: funds still reserved, but post is refused.
    const [late] = h.sm.createTransfers([post(20n, 10n, amount_max)], deadline);
    expect(tName(late!.status)).toBe("pending_transfer_expired");
    expect(h.balances(1n)).toEqual([107n, 0n, 0n, 0n]);
    expect(h.sm.pulse(deadline + 1n)).toBe(1);
    expect(h.balances(1n)).toEqual([7n, 0n, 0n, 0n]);
    expect(h.sm.stats().pending_open).toBe(1);
    expect(h.sm.nextExpiryNs()).toBe(p11!.timestamp + 60n * S);
    const [v] = h.sm.createTransfers([voidT(21n, 10n)], deadline + 2n * S);
    expect(tName(v!.status)).toBe("pending_transfer_expired");
    // Timestamps stay unique and increasing across pulses.
    expect(h.sm.lastTimestampNs()).toBeGreaterThan(deadline + 2n * S - 1n);
  });

  it("posting or voiding removes the pending transfer from expiry", () => {
    const h = setup();
    h.transfers([tr(10n, 1n, 2n, 100n, { flags: TransferFlags.pending, timeout: 100 })]);
    expect(h.transfers([post(11n, 10n, 40n)])).toEqual(["created"]);
    expect(h.sm.nextExpiryNs()).toBeNull();
    expect(h.sm.pulse(h.now + 1000n * S)).toBe(0);
    expect(h.balances(1n)).toEqual([0n, 40n, 0n, 0n]);
  });
});

describe("closing accounts", () => {
  it("a pending closing transfer closes; void or expiry reopens", () => {
    const h = new Harness();
    h.accounts([acc(1n), acc(2n)]);
    const CD = TransferFlags.closing_debit | TransferFlags.pending;
    expect(h.transfers([tr(10n, 1n, 2n, 0n, { flags: CD })])).toEqual(["created"]);
    expect(h.account(1n).flags & AccountFlags.closed).toBe(AccountFlags.closed);
    expect(h.transfers([tr(11n, 1n, 2n, 1n), tr(12n, 2n, 1n, 1n), post(13n, 10n, 0n)])).toEqual([
      "debit_account_already_closed",
      "credit_account_already_closed",
      "debit_account_already_closed",
    ]);
    // An account re-created with its original flags no longer matches (flags include closed).
    expect(h.accounts([acc(1n)])).toEqual(["exists_with_different_flags"]);
    expect(h.transfers([voidT(14n, 10n)])).toEqual(["created"]);
    expect(h.account(1n).flags & AccountFlags.closed).toBe(0);
    expect(h.transfers([tr(15n, 1n, 2n, 1n)])).toEqual(["created"]);
    // closing_credit with a timeout reopens on expiry
    expect(h.transfers([tr(16n, 1n, 2n, 0n, { flags: TransferFlags.closing_credit | TransferFlags.pending, timeout: 1 })])).toEqual([
      "created",
    ]);
    expect(h.account(2n).flags & AccountFlags.closed).toBe(AccountFlags.closed);
    expect(h.sm.pulse(h.now + 10n * S)).toBe(1);
    expect(h.account(2n).flags & AccountFlags.closed).toBe(0);
  });
});

describe("imported transfers", () => {
  it("keep user timestamps that must postdate accounts and not regress", () => {
    const h = new Harness();
    const IA = AccountFlags.imported;
    const IT = TransferFlags.imported;
    const now = T0 + 1000n * S;
    h.sm.createAccounts([acc(1n, { flags: IA, timestamp: 100n }), acc(2n, { flags: IA, timestamp: 200n })], now);
    const st = (events: Transfer[]) => h.sm.createTransfers(events, now + 1n).map((r) => [tName(r.status), r.timestamp]);
    expect(st([tr(1n, 1n, 2n, 5n, { flags: IT, timestamp: 300n })])).toEqual([["created", 300n]]);
    expect(h.sm.lookupTransfers([1n])[0]!.timestamp).toBe(300n);
    expect(st([tr(2n, 1n, 2n, 5n, { flags: IT, timestamp: 250n })])[0]![0]).toBe("imported_event_timestamp_must_not_regress");
    expect(st([tr(2n, 1n, 2n, 5n, { flags: IT, timestamp: 300n })])[0]![0]).toBe("imported_event_timestamp_must_not_regress");
    h.sm.createAccounts([acc(3n, { flags: IA, timestamp: 400n })], now + 2n);
    expect(st([tr(3n, 1n, 2n, 5n, { flags: IT, timestamp: 400n })])[0]![0]).toBe("imported_event_timestamp_must_not_regress");
    expect(st([tr(4n, 1n, 3n, 5n, { flags: IT, timestamp: 350n })])[0]![0]).toBe(
      "imported_event_timestamp_must_postdate_credit_account",
    );
    expect(st([tr(5n, 3n, 1n, 5n, { flags: IT, timestamp: 401n - 1n })])[0]![0]).toBe("imported_event_timestamp_must_not_regress");
    expect(
      st([tr(6n, 1n, 2n, 5n, { flags: IT | TransferFlags.pending, timestamp: 500n, timeout: 5 })])[0]![0],
    ).toBe("imported_event_timeout_must_be_zero");
    expect(st([tr(7n, 1n, 2n, 5n, { flags: IT, timestamp: now + 10n * S })])[0]![0]).toBe(
      "imported_event_timestamp_must_not_advance",
    );
    expect(st([tr(8n, 1n, 2n, 5n, { flags: IT, timestamp: 600n }), tr(9n, 1n, 2n, 5n)]).map((x) => x[0])).toEqual([
      "created",
      "imported_event_expected",
    ]);
    // imported account timestamp must differ from every transfer timestamp
    expect(h.sm.createAccounts([acc(4n, { flags: IA, timestamp: 600n })], now + 3n).map((r) => aName(r.status))).toEqual([
      "imported_event_timestamp_must_not_regress",
    ]);
    expect(h.sm.createTransfers([tr(10n, 2n, 1n, 5n, { flags: IT, timestamp: 150n })], now).map((r) => tName(r.status))).toEqual([
      "imported_event_timestamp_must_not_regress",
    ]);
  });

  it("debit/credit postdate checks", () => {
    const h = new Harness();
    const IA = AccountFlags.imported;
    const IT = TransferFlags.imported;
    const now = T0 + 1000n * S;
    h.sm.createAccounts([acc(1n, { flags: IA, timestamp: 100n }), acc(2n, { flags: IA, timestamp: 200n })], now);
    h.sm.createAccounts([acc(3n)], now); // timestamp > now
    const st = (events: Transfer[]) => h.sm.createTransfers(events, now + 10n * S).map((r) => tName(r.status));
    expect(st([tr(1n, 3n, 1n, 1n, { flags: IT, timestamp: 250n })])).toEqual(["imported_event_timestamp_must_postdate_debit_account"]);
    expect(st([tr(1n, 1n, 3n, 1n, { flags: IT, timestamp: 250n })])).toEqual(["imported_event_timestamp_must_postdate_credit_account"]);
  });
});

describe("queries", () => {
  function setup(): Harness {
    const h = new Harness();
    h.accounts([
      acc(1n, { flags: AccountFlags.history, user_data_128: 7n, code: 1 }),
      acc(2n, { user_data_64: 8n, code: 2 }),
      acc(3n, { ledger: 2, user_data_32: 9, code: 1 }),
      acc(4n, { ledger: 2 }),
    ]);
    h.transfers([
      tr(10n, 1n, 2n, 10n, { user_data_128: 100n, code: 1 }),
      tr(11n, 2n, 1n, 3n, { user_data_64: 200n, code: 2 }),
      tr(12n, 1n, 2n, 5n, { user_data_32: 300, code: 1, flags: TransferFlags.pending }),
    ]);
    h.transfers([post(13n, 12n, 4n), tr(14n, 3n, 4n, 1n, { ledger: 2, code: 3 })]);
    return h;
  }

  it("getAccountTransfers filters by side, fields, timestamps, limit and order", () => {
    const h = setup();
    const ids = (f: AccountFilter) => h.sm.getAccountTransfers(f).map((t) => t.id);
    expect(ids(filter(1n))).toEqual([10n, 11n, 12n, 13n]);
    expect(ids(filter(1n, { flags: 1 }))).toEqual([10n, 12n, 13n]);
    expect(ids(filter(1n, { flags: 2 }))).toEqual([11n]);
    expect(ids(filter(1n, { flags: 7 }))).toEqual([13n, 12n, 11n, 10n]);
    expect(ids(filter(1n, { limit: 2 }))).toEqual([10n, 11n]);
    expect(ids(filter(1n, { limit: 2, flags: 7 }))).toEqual([13n, 12n]);
    expect(ids(filter(1n, { user_data_128: 100n }))).toEqual([10n]);
    expect(ids(filter(1n, { user_data_64: 200n }))).toEqual([11n]);
    expect(ids(filter(1n, { user_data_32: 300 }))).toEqual([12n, 13n]);
    expect(ids(filter(1n, { code: 2 }))).toEqual([11n]);
    const [t11] = h.sm.lookupTransfers([11n]);
    expect(ids(filter(1n, { timestamp_min: t11!.timestamp }))).toEqual([11n, 12n, 13n]);
    expect(ids(filter(1n, { timestamp_max: t11!.timestamp }))).toEqual([10n, 11n]);
    expect(ids(filter(1n, { timestamp_min: t11!.timestamp, timestamp_max: t11!.timestamp }))).toEqual([11n]);
    // invalid filters return nothing
    expect(ids(filter(0n))).toEqual([]);
    expect(ids(filter(U128_MAX))).toEqual([]);
    expect(ids(filter(1n, { flags: 0 }))).toEqual([]);
    expect(ids(filter(1n, { flags: 4 }))).toEqual([]);
    expect(ids(filter(1n, { flags: 8 | 3 }))).toEqual([]);
    expect(ids(filter(1n, { limit: 0 }))).toEqual([]);
    expect(ids(filter(1n, { timestamp_min: 5n, timestamp_max: 4n }))).toEqual([]);
    expect(ids(filter(1n, { timestamp_min: (1n << 64n) - 1n }))).toEqual([]);
    expect(ids(filter(99n))).toEqual([]);
  });

  it("getAccountBalances returns history only for history accounts", () => {
    const h = setup();
    const b = h.sm.getAccountBalances(filter(1n));
    const ts = h.sm.getAccountTransfers(filter(1n)).map((t) => t.timestamp);
    expect(b.map((x) => x.timestamp)).toEqual(ts);
    expect(b.map((x) => [x.debits_pending, x.debits_posted, x.credits_pending, x.credits_posted])).toEqual([
      [0n, 10n, 0n, 0n],
      [0n, 10n, 0n, 3n],
      [5n, 10n, 0n, 3n],
      [0n, 14n, 0n, 3n],
    ]);
    expect(h.sm.getAccountBalances(filter(1n, { flags: 2 })).length).toBe(1);
    expect(h.sm.getAccountBalances(filter(1n, { flags: 7, limit: 1 }))[0]!.debits_posted).toBe(14n);
    expect(h.sm.getAccountBalances(filter(2n))).toEqual([]);
  });

  it("getAccountBalances keeps exact balances beyond 2^64 and across a snapshot", () => {
    const h = new Harness();
    h.accounts([acc(1n, { flags: AccountFlags.history }), acc(2n)]);
    const big = (1n << 70n) + 3n;
    h.transfers([tr(10n, 2n, 1n, 5n), tr(11n, 2n, 1n, big), tr(12n, 1n, 2n, 1n)]);
    // a chain that moves more and rolls back leaves the history as it was
    h.transfers([tr(13n, 2n, 1n, big, { flags: TransferFlags.linked }), tr(14n, 1n, 2n, 1n, { code: 0 })]);
    const expected = [5n, 5n + big, 5n + big];
    expect(h.sm.getAccountBalances(filter(1n)).map((b) => b.credits_posted)).toEqual(expected);
    expect(h.sm.getAccountBalances(filter(1n)).map((b) => b.debits_posted)).toEqual([0n, 0n, 1n]);
    const restored = restoreStateMachine([...h.sm.snapshotChunks()].map((c) => c.slice()));
    expect(restored.getAccountBalances(filter(1n))).toEqual(h.sm.getAccountBalances(filter(1n)));
  });

  it("queryAccounts and queryTransfers match every field", () => {
    const h = setup();
    const a = (f: Partial<QueryFilter>) => h.sm.queryAccounts(qfilter(f)).map((x) => x.id);
    const t = (f: Partial<QueryFilter>) => h.sm.queryTransfers(qfilter(f)).map((x) => x.id);
    expect(a({})).toEqual([1n, 2n, 3n, 4n]);
    expect(a({ flags: 1, limit: 2 })).toEqual([4n, 3n]);
    expect(a({ ledger: 2 })).toEqual([3n, 4n]);
    expect(a({ code: 1 })).toEqual([1n, 3n]);
    expect(a({ code: 1, ledger: 2 })).toEqual([3n]);
    expect(a({ user_data_128: 7n })).toEqual([1n]);
    expect(a({ user_data_64: 8n })).toEqual([2n]);
    expect(a({ user_data_32: 9 })).toEqual([3n]);
    expect(t({})).toEqual([10n, 11n, 12n, 13n, 14n]);
    expect(t({ ledger: 2 })).toEqual([14n]);
    expect(t({ code: 1 })).toEqual([10n, 12n, 13n]);
    expect(t({ user_data_128: 100n })).toEqual([10n]);
    expect(t({ user_data_64: 200n })).toEqual([11n]);
    expect(t({ user_data_32: 300, flags: 1 })).toEqual([13n, 12n]);
    const [t11, t13] = h.sm.lookupTransfers([11n, 13n]);
    expect(t({ timestamp_min: t11!.timestamp, timestamp_max: t13!.timestamp })).toEqual([11n, 12n, 13n]);
    expect(t({ limit: 0 })).toEqual([]);
    expect(t({ flags: 2 })).toEqual([]);
    expect(t({ timestamp_min: 10n, timestamp_max: 9n })).toEqual([]);
  });

  it("lookups omit missing ids and keep request order", () => {
    const h = setup();
    expect(h.sm.lookupAccounts([4n, 99n, 1n]).map((a) => a.id)).toEqual([4n, 1n]);
    expect(h.sm.lookupTransfers([14n, 0n, 10n]).map((t) => t.id)).toEqual([14n, 10n]);
  });
});

describe("snapshots and determinism", () => {
  function workload(sm: StateMachine): void {
    sm.createAccounts([acc(1n, { flags: AccountFlags.history }), acc(2n), acc(3n, { flags: AccountFlags.debits_must_not_exceed_credits })], T0);
    sm.createTransfers(
      [
        tr(10n, 1n, 2n, 10n),
        tr(11n, 1n, 2n, 5n, { flags: TransferFlags.pending, timeout: 3 }),
        tr(12n, 3n, 2n, 5n),
        tr(13n, 2n, 1n, 5n, { flags: TransferFlags.pending, timeout: 100 }),
      ],
      T0 + S,
    );
    sm.pulse(T0 + 10n * S);
  }
  const bytes = (sm: StateMachine) => Buffer.concat([...sm.snapshotChunks()].map((c) => Buffer.from(c)));

  it("replaying the same commits yields identical snapshots", () => {
    const a = createStateMachine();
    const b = createStateMachine();
    workload(a);
    workload(b);
    expect(bytes(a).equals(bytes(b))).toBe(true);
  });

  it("restores an identical machine from arbitrarily split chunks", () => {
    const a = createStateMachine();
    workload(a);
    const snap = bytes(a);
    const pieces: Uint8Array[] = [];
    for (let i = 0; i < snap.length; i += 7) pieces.push(snap.subarray(i, i + 7));
    const b = restoreStateMachine(pieces);
    expect(bytes(b).equals(snap)).toBe(true);
    expect(b.stats()).toEqual(a.stats());
    expect(b.lookupAccounts([1n, 2n, 3n])).toEqual(a.lookupAccounts([1n, 2n, 3n]));
    expect(b.getAccountBalances(filter(1n))).toEqual(a.getAccountBalances(filter(1n)));
    expect(b.nextExpiryNs()).toEqual(a.nextExpiryNs());
    // Failed ids and open pending transfers survive the restore.
    const next = [tr(12n, 3n, 2n, 0n), voidT(20n, 11n), post(21n, 13n, amount_max)];
    expect(b.createTransfers(next, T0 + 20n * S)).toEqual(a.createTransfers(next, T0 + 20n * S));
    expect(bytes(b).equals(bytes(a))).toBe(true);
  });

  it("rejects a truncated or foreign snapshot", () => {
    const a = createStateMachine();
    workload(a);
    const snap = bytes(a);
    expect(() => restoreStateMachine([snap.subarray(0, snap.length - 1)])).toThrow(/truncated/);
    expect(() => restoreStateMachine([Buffer.concat([snap, Buffer.from([1])])])).toThrow(/trailing/);
  });

  it("rejects out-of-range input without applying anything", () => {
    const sm = createStateMachine();
    sm.createAccounts([acc(1n), acc(2n)], T0);
    expect(() => sm.createTransfers([tr(1n, 1n, 2n, 1n), tr(2n, 1n, 2n, -1n)], T0 + S)).toThrow(RangeError);
    expect(sm.stats().transfers).toBe(0);
  });
});

describe("linked chain rollback restores the exact state (randomized)", () => {
  // xorshift32, deterministic per seed
  function rng(seed: number): () => number {
    let x = seed || 1;
    return () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 32;
    };
  }
  // Records, ids and hash tables must be byte-identical; the per-account list pools (the
  // snapshot's tail) may keep blocks a rolled-back chain allocated, so compare them by content.
  const body = (sm: StateMachine) => {
    const all = Buffer.concat([...sm.snapshotChunks()].map((c) => Buffer.from(c)));
    const headerLen = all.readUInt32LE(0);
    const header = JSON.parse(all.subarray(4, 4 + headerLen).toString()) as { tail_bytes: number };
    const records = all.subarray(4 + headerLen, all.length - header.tail_bytes);
    const lists = [1n, 2n, 3n, 4n, 5n, 6n].map((a) => [
      sm.getAccountTransfers(filter(a, { limit: 8189 })).map((t) => t.id),
      sm.getAccountBalances(filter(a, { limit: 8189 })),
    ]);
    return Buffer.concat([records, Buffer.from(JSON.stringify(lists, (_k, v) => (typeof v === "bigint" ? v.toString() : v)))]);
  };

  it("a chain broken by its last event leaves every record, index and history byte unchanged", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rand = rng(seed);
      const pick = (n: number) => Math.floor(rand() * n);
      const sm = createStateMachine();
      let now = T0;
      const accounts = Array.from({ length: 6 }, (_, i) =>
        acc(BigInt(i + 1), { flags: i % 2 === 0 ? AccountFlags.history : 0 }),
      );
      sm.createAccounts(accounts, now);
      let nextId = 1000n;
      const pendings: bigint[] = [];
      for (let round = 0; round < 15; round++) {
        // Some committed traffic first (pending, posts, voids, plain).
        const committed: Transfer[] = [];
        for (let k = 0; k < 5; k++) {
          const dr = BigInt(pick(6) + 1);
          const cr = ((dr + BigInt(pick(5))) % 6n) + 1n;
          if (pendings.length > 0 && rand() < 0.3) {
            const p = pendings.splice(pick(pendings.length), 1)[0]!;
            committed.push(rand() < 0.5 ? post(nextId++, p, BigInt(pick(3))) : voidT(nextId++, p));
          } else if (rand() < 0.4) {
            const id = nextId++;
            pendings.push(id);
            committed.push(tr(id, dr, cr, BigInt(pick(50)), { flags: TransferFlags.pending, timeout: pick(3) }));
          } else {
            committed.push(tr(nextId++, dr, cr, BigInt(pick(50))));
          }
        }
        now += S;
        sm.createTransfers(committed, now);
        const before = Buffer.from(body(sm));
        const beforeStats = sm.stats();
        // A chain of valid events (incl. posts/voids of open pendings and new accounts' transfers)
        // closed by an event that fails validation.
        const chain: Transfer[] = [];
        const used = new Set<bigint>();
        for (let k = 0; k < 1 + pick(6); k++) {
          const dr = BigInt(pick(6) + 1);
          const cr = ((dr + BigInt(pick(5))) % 6n) + 1n;
          const open = pendings.filter((p) => !used.has(p));
          if (open.length > 0 && rand() < 0.3) {
            const p = open[pick(open.length)]!;
            used.add(p);
            chain.push(rand() < 0.5 ? post(nextId++, p, amount_max) : voidT(nextId++, p));
          } else {
            chain.push(
              tr(nextId++, dr, cr, BigInt(pick(50)), rand() < 0.3 ? { flags: TransferFlags.pending, timeout: 1 + pick(5) } : {}),
            );
          }
        }
        chain.push(tr(nextId++, 1n, 2n, 1n, { code: 0 }));
        for (let k = 0; k < chain.length - 1; k++) chain[k]!.flags |= TransferFlags.linked;
        now += S;
        const results = sm.createTransfers(chain, now);
        // (an earlier event may break the chain first, e.g. posting an expired pending transfer)
        expect([CreateTransferStatus.code_must_not_be_zero, CreateTransferStatus.linked_event_failed]).toContain(
          results.at(-1)!.status,
        );
        expect(results.every((r) => r.status !== CreateTransferStatus.created)).toBe(true);
        expect(body(sm).equals(before)).toBe(true);
        expect(sm.stats()).toEqual(beforeStats);
        if (rand() < 0.3) sm.pulse(now + BigInt(pick(4)) * S);
      }
    }
  });
});

describe("balance history against observed balances (randomized)", () => {
  it("getAccountBalances equals the balances seen after each transfer, in every direction and range", () => {
    for (let seed = 1; seed <= 6; seed++) {
      let x = seed * 7919;
      const rand = () => {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        return (x >>> 0) / 2 ** 32;
      };
      const pick = (n: number) => Math.floor(rand() * n);
      const sm = createStateMachine();
      let now = T0;
      sm.createAccounts(
        [acc(1n, { flags: AccountFlags.history }), acc(2n, { flags: AccountFlags.history }), acc(3n), acc(4n)],
        now,
      );
      const seen = new Map<bigint, { timestamp: bigint; debit: boolean; bal: bigint[] }[]>([
        [1n, []],
        [2n, []],
      ]);
      const open: bigint[] = [];
      let id = 100n;
      for (let step = 0; step < 250; step++) {
        now += BigInt(pick(3)) * S + 1n;
        if (rand() < 0.1) {
          sm.pulse(now);
          continue;
        }
        if (rand() < 0.08) {
          // a chain that fails at its end changes nothing
          sm.createTransfers([tr(id++, 1n, 3n, 5n, { flags: TransferFlags.linked }), tr(id++, 1n, 3n, 5n, { code: 0 })], now);
          continue;
        }
        let t: Transfer;
        const dr = BigInt(1 + pick(4));
        const cr = ((dr + BigInt(pick(3))) % 4n) + 1n;
        if (open.length > 0 && rand() < 0.35) {
          const p = open.splice(pick(open.length), 1)[0]!;
          t = rand() < 0.6 ? post(id++, p, BigInt(pick(20))) : voidT(id++, p);
        } else if (rand() < 0.4) {
          t = tr(id++, dr, cr, BigInt(pick(30)), { flags: TransferFlags.pending, timeout: pick(4) });
          open.push(t.id);
        } else {
          t = tr(id++, dr, cr, BigInt(pick(30)));
        }
        const [r] = sm.createTransfers([t], now);
        if (r!.status !== CreateTransferStatus.created) continue;
        const [stored] = sm.lookupTransfers([t.id]);
        for (const a of [1n, 2n]) {
          if (stored!.debit_account_id !== a && stored!.credit_account_id !== a) continue;
          const [acct] = sm.lookupAccounts([a]);
          seen.get(a)!.push({
            timestamp: r!.timestamp,
            debit: stored!.debit_account_id === a,
            bal: [acct!.debits_pending, acct!.debits_posted, acct!.credits_pending, acct!.credits_posted],
          });
        }
      }
      const restored = restoreStateMachine([...sm.snapshotChunks()].map((c) => c.slice()));
      for (const machine of [sm, restored]) {
        for (const [a, rows] of seen) {
          const view = (f: Partial<AccountFilter>) =>
            machine.getAccountBalances(filter(a, { limit: 8189, ...f })).map((b) => ({
              timestamp: b.timestamp,
              bal: [b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted],
            }));
          const want = rows.map(({ timestamp, bal }) => ({ timestamp, bal }));
          expect(view({})).toEqual(want);
          expect(view({ flags: 7 })).toEqual([...want].reverse());
          expect(view({ flags: 1 })).toEqual(rows.filter((r) => r.debit).map(({ timestamp, bal }) => ({ timestamp, bal })));
          if (want.length > 10) {
            const lo = want[3]!.timestamp;
            const hi = want[want.length - 4]!.timestamp;
            const inRange = want.filter((w) => w.timestamp >= lo && w.timestamp <= hi);
            expect(view({ timestamp_min: lo, timestamp_max: hi })).toEqual(inRange);
            expect(view({ timestamp_min: lo, timestamp_max: hi, flags: 7, limit: 5 })).toEqual(
              [...inRange].reverse().slice(0, 5),
            );
            expect(view({ timestamp_min: lo, limit: 7 })).toEqual(inRange.slice(0, 7));
          }
        }
      }
    }
  });
});
