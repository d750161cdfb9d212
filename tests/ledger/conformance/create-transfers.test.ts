/**
 * create_transfers validation, idempotency, overflows and limits, per
 * docs/reference/requests/create_transfers.md and docs/reference/transfer.md (tigerbeetle
 * repository), with 0.16+ semantics (zero amounts allowed) and 0.17 result shapes.
 */
import { describe, expect, it } from "vitest";
import { AccountFlags, CreateTransferStatus, ErrorCodes, RequestError, TransferFlags, type Transfer } from "tigerbeetle-node";
import { account, bal, BATCH_MAX, transfer, U128_MAX } from "../../support/ledger-backend.js";
import { transferPrecedence, useBackend, World } from "./fixture.js";

const backend = useBackend();

describe("create_transfers: single-phase", () => {
  it("moves the amount: created, result timestamp = transfer timestamp, fields stored as sent", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    const t = w.t({
      debit_account_id: a,
      credit_account_id: b,
      amount: 123n,
      user_data_128: 5n,
      user_data_64: 6n,
      user_data_32: 7,
      code: 99,
    });
    const results = await w.createTransfers([t]);
    expect(results[0].status).toBe(CreateTransferStatus.created);
    expect(await w.transfer(t.id)).toEqual({ ...t, timestamp: results[0].timestamp });
    await w.expectBalances(a, bal(0n, 123n, 0n, 0n));
    await w.expectBalances(b, bal(0n, 0n, 0n, 123n));
  });

  it("zero amounts are allowed (0.16+): created, recorded with amount 0, balances unchanged", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    const t = w.t({ debit_account_id: a, credit_account_id: b, amount: 0n });
    expect(await w.submit(t)).toEqual(["created"]);
    expect((await w.transfer(t.id))?.amount).toBe(0n);
    await w.expectBalances(a, bal(0n, 0n, 0n, 0n));
    await w.expectBalances(b, bal(0n, 0n, 0n, 0n));
  });

  it("the largest amount (2^128-1) can be moved once", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    expect(await w.submit(w.t({ debit_account_id: a, credit_account_id: b, amount: U128_MAX }))).toEqual(["created"]);
    await w.expectBalances(a, bal(0n, U128_MAX, 0n, 0n));
    await w.expectBalances(b, bal(0n, 0n, 0n, U128_MAX));
  });

  it("validation results follow the documented precedence (fixing one violation at a time)", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    const [closedDebit, closedCredit] = await w.accounts({ flags: AccountFlags.closed }, { flags: AccountFlags.closed });
    const other = new World(w.b);
    const [elsewhere] = await other.plain(1);
    const missing1 = w.id();
    const missing2 = w.id();

    let e: Transfer = transfer({
      id: 0n,
      timestamp: 7n,
      flags: (1 << 15) | TransferFlags.closing_debit,
      debit_account_id: 0n,
      credit_account_id: 0n,
      pending_id: 5n,
      timeout: 5,
      ledger: 0,
      code: 0,
      amount: 1n,
    });
    const steps: Array<[string, (x: Transfer) => Transfer]> = [
      ["timestamp_must_be_zero", (x) => ({ ...x, timestamp: 0n })],
      ["reserved_flag", (x) => ({ ...x, flags: TransferFlags.closing_debit })],
      ["id_must_not_be_zero", (x) => ({ ...x, id: U128_MAX })],
      ["id_must_not_be_int_max", (x) => ({ ...x, id: 1n })], // any valid id: each submission gets a fresh one below
      ["debit_account_id_must_not_be_zero", (x) => ({ ...x, debit_account_id: U128_MAX })],
      ["debit_account_id_must_not_be_int_max", (x) => ({ ...x, debit_account_id: missing1 })],
      ["credit_account_id_must_not_be_zero", (x) => ({ ...x, credit_account_id: U128_MAX })],
      ["credit_account_id_must_not_be_int_max", (x) => ({ ...x, credit_account_id: missing1 })],
      ["accounts_must_be_different", (x) => ({ ...x, credit_account_id: missing2 })],
      ["pending_id_must_be_zero", (x) => ({ ...x, pending_id: 0n })],
      ["timeout_reserved_for_pending_transfer", (x) => ({ ...x, timeout: 0 })],
      ["closing_transfer_must_be_pending", (x) => ({ ...x, flags: TransferFlags.none })],
      ["ledger_must_not_be_zero", (x) => ({ ...x, ledger: other.ledger })],
      ["code_must_not_be_zero", (x) => ({ ...x, code: 1 })],
      ["debit_account_not_found", (x) => ({ ...x, debit_account_id: closedDebit })],
      ["credit_account_not_found", (x) => ({ ...x, credit_account_id: elsewhere })],
      ["accounts_must_have_the_same_ledger", (x) => ({ ...x, credit_account_id: closedCredit })],
      ["transfer_must_have_the_same_ledger_as_accounts", (x) => ({ ...x, ledger: w.ledger })],
      ["debit_account_already_closed", (x) => ({ ...x, debit_account_id: a })],
      ["credit_account_already_closed", (x) => ({ ...x, credit_account_id: b })],
    ];
    const seen: string[] = [];
    // Transient failures mark their id as failed, so every valid-id submission uses a fresh id.
    const fresh = (x: Transfer): Transfer => (x.id === 0n || x.id === U128_MAX ? x : { ...x, id: w.id() });
    for (const [, fix] of steps) {
      seen.push(...(await w.submit(fresh(e))));
      e = fix(e);
    }
    const last = fresh(e);
    seen.push(...(await w.submit(last)));
    expect(seen).toEqual([...steps.map(([s]) => s), "created"]);
    const order = transferPrecedence();
    const indices = steps.map(([s]) => order.indexOf(s));
    expect([...indices].sort((x, y) => x - y)).toEqual(indices);
    await w.expectBalances(a, bal(0n, 1n, 0n, 0n));
    await w.expectBalances(b, bal(0n, 0n, 0n, 1n));
    for (const id of [closedDebit, closedCredit, elsewhere]) await w.expectBalances(id, bal(0n, 0n, 0n, 0n));
  });

  it("reserved flag bits are rejected", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    for (const bit of [12, 13, 14, 15]) {
      expect(await w.submit(w.t({ debit_account_id: a, credit_account_id: b, amount: 1n, flags: 1 << bit }))).toEqual([
        "reserved_flag",
      ]);
    }
    await w.expectBalances(a, bal(0n, 0n, 0n, 0n));
  });

  it("a batch of zero transfers returns zero results; 8190 transfers are refused with ERR_TOO_MUCH_DATA", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    expect(await w.b.client.createTransfers([])).toEqual([]);
    const tooMany = Array.from({ length: BATCH_MAX + 1 }, () => w.t({ debit_account_id: a, credit_account_id: b, amount: 1n }));
    const err = await w.b.client.createTransfers(tooMany).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RequestError);
    expect((err as RequestError).code).toBe(ErrorCodes.ERR_TOO_MUCH_DATA);
    await w.expectBalances(a, bal(0n, 0n, 0n, 0n));
    const full = tooMany.slice(0, BATCH_MAX);
    const results = await w.createTransfers(full);
    expect(results.every((r) => r.status === CreateTransferStatus.created)).toBe(true);
    await w.expectBalances(a, bal(0n, BigInt(BATCH_MAX), 0n, 0n));
  });

  it("values that do not fit their field are refused by the client before anything is sent", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    const base = w.t({ debit_account_id: a, credit_account_id: b, amount: 1n });
    const tooBig = await w.b.client.createTransfers([{ ...base, id: 1n << 128n }]).then(
      () => null,
      (e: unknown) => e,
    );
    expect(tooBig).toBeInstanceOf(Error);
    expect((tooBig as Error).message).toBe("id must fit in 128 bits");
    const negative = await w.b.client.createTransfers([{ ...base, id: -1n }]).then(
      () => null,
      (e: unknown) => e,
    );
    expect((negative as Error).message).toBe("id must be positive");
    const badCode = await w.b.client.createAccounts([account({ id: w.id(), ledger: w.ledger, code: 65536 })]).then(
      () => null,
      (e: unknown) => e,
    );
    expect((badCode as Error).message).toBe("code must be a u16.");
    await w.expectBalances(a, bal(0n, 0n, 0n, 0n));
  });
});

describe("create_transfers: exists and exists_with_different_*", () => {
  it("an identical resubmission is exists (later batch and same batch) and moves nothing twice", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    const t = w.t({ debit_account_id: a, credit_account_id: b, amount: 10n, user_data_64: 3n });
    expect(await w.submit(t)).toEqual(["created"]);
    expect(await w.submit(t)).toEqual(["exists"]);
    const u = w.t({ debit_account_id: a, credit_account_id: b, amount: 1n });
    expect(await w.submit(u, u, u)).toEqual(["created", "exists", "exists"]);
    await w.expectBalances(a, bal(0n, 11n, 0n, 0n));
    await w.expectBalances(b, bal(0n, 0n, 0n, 11n));
  });

  it("each differing field, in precedence order", async () => {
    const w = new World(backend());
    const [a, b, c] = await w.plain(3);
    const t = w.t({
      debit_account_id: a,
      credit_account_id: b,
      amount: 10n,
      user_data_128: 1n,
      user_data_64: 2n,
      user_data_32: 3,
      code: 4,
    });
    const p = w.t({ debit_account_id: a, credit_account_id: b, amount: 10n, flags: TransferFlags.pending, timeout: 100 });
    expect(await w.submit(t, p)).toEqual(["created", "created"]);
    expect(
      await w.submit(
        { ...t, flags: TransferFlags.pending },
        { ...t, pending_id: p.id },
        { ...t, timeout: 1 },
        { ...p, timeout: 200 },
        { ...t, debit_account_id: c },
        { ...t, credit_account_id: c },
        { ...t, amount: 11n },
        { ...t, user_data_128: 9n },
        { ...t, user_data_64: 9n },
        { ...t, user_data_32: 9 },
        { ...t, ledger: w.ledger + 1 },
        { ...t, code: 9 },
        // two differences: the first in precedence wins
        { ...t, flags: TransferFlags.pending, amount: 1n },
        { ...t, pending_id: p.id, debit_account_id: c },
        { ...t, timeout: 1, amount: 1n },
        { ...t, debit_account_id: c, credit_account_id: a },
        { ...t, amount: 1n, user_data_128: 0n },
        { ...t, user_data_32: 0, ledger: 1 },
        { ...t, ledger: 1, code: 1 },
      ),
    ).toEqual([
      "exists_with_different_flags",
      "exists_with_different_pending_id",
      "exists_with_different_timeout",
      "exists_with_different_timeout",
      "exists_with_different_debit_account_id",
      "exists_with_different_credit_account_id",
      "exists_with_different_amount",
      "exists_with_different_user_data_128",
      "exists_with_different_user_data_64",
      "exists_with_different_user_data_32",
      "exists_with_different_ledger",
      "exists_with_different_code",
      "exists_with_different_flags",
      "exists_with_different_pending_id",
      "exists_with_different_timeout",
      "exists_with_different_debit_account_id",
      "exists_with_different_amount",
      "exists_with_different_user_data_32",
      "exists_with_different_ledger",
    ]);
    await w.expectBalances(a, bal(10n, 10n, 0n, 0n));
    await w.expectBalances(c, bal(0n, 0n, 0n, 0n));
  });

  it("exists checks precede the field validations listed after them, but not timestamp/reserved/id checks", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    const t = w.t({ debit_account_id: a, credit_account_id: b, amount: 10n });
    expect(await w.submit(t)).toEqual(["created"]);
    expect(
      await w.submit(
        { ...t, debit_account_id: 0n },
        { ...t, credit_account_id: a },
        { ...t, ledger: 0 },
        { ...t, code: 0 },
        { ...t, timestamp: 1n },
        { ...t, flags: 1 << 15 },
      ),
    ).toEqual([
      "exists_with_different_debit_account_id",
      "exists_with_different_credit_account_id",
      "exists_with_different_ledger",
      "exists_with_different_code",
      "timestamp_must_be_zero",
      "reserved_flag",
    ]);
    await w.expectBalances(a, bal(0n, 10n, 0n, 0n));
  });
});

describe("create_transfers: overflows and balance limits", () => {
  it("overflows_debits_pending / credits_pending / debits_posted / credits_posted / debits / credits", async () => {
    const w = new World(backend());
    const ids = await w.plain(16);
    const [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, x] = ids;
    const M = U128_MAX - 5n;
    const half = 1n << 127n;
    const P = TransferFlags.pending;
    expect(
      await w.submit(
        w.t({ debit_account_id: a, credit_account_id: b, amount: M, flags: P }),
        w.t({ debit_account_id: e, credit_account_id: f, amount: M }),
        w.t({ debit_account_id: i, credit_account_id: j, amount: half, flags: P }),
        w.t({ debit_account_id: l, credit_account_id: n, amount: half, flags: P }),
      ),
    ).toEqual(["created", "created", "created", "created"]);
    expect(
      await w.submit(
        w.t({ debit_account_id: a, credit_account_id: c, amount: 6n, flags: P }),
        w.t({ debit_account_id: d, credit_account_id: b, amount: 6n, flags: P }),
        w.t({ debit_account_id: a, credit_account_id: b, amount: 6n, flags: P }), // debits first
        w.t({ debit_account_id: e, credit_account_id: g, amount: 6n }),
        w.t({ debit_account_id: h, credit_account_id: f, amount: 6n }),
        w.t({ debit_account_id: e, credit_account_id: g, amount: 6n, flags: P }), // pending also checks posted
        w.t({ debit_account_id: i, credit_account_id: k, amount: half }),
        w.t({ debit_account_id: o, credit_account_id: n, amount: half }),
        w.t({ debit_account_id: a, credit_account_id: x, amount: 5n, flags: P }), // exactly 2^128-1: fine
      ),
    ).toEqual([
      "overflows_debits_pending",
      "overflows_credits_pending",
      "overflows_debits_pending",
      "overflows_debits_posted",
      "overflows_credits_posted",
      "overflows_debits_posted",
      "overflows_debits",
      "overflows_credits",
      "created",
    ]);
    await w.expectBalances(a, bal(U128_MAX, 0n, 0n, 0n));
    await w.expectBalances(b, bal(0n, 0n, M, 0n));
    await w.expectBalances(e, bal(0n, M, 0n, 0n));
    await w.expectBalances(i, bal(half, 0n, 0n, 0n));
    await w.expectBalances(n, bal(0n, 0n, half, 0n));
    for (const id of [c, d, g, h, k, o]) await w.expectBalances(id, bal(0n, 0n, 0n, 0n));
  });

  it("debits_must_not_exceed_credits: exceeds_credits counts posted and pending debits, not pending credits", async () => {
    const w = new World(backend());
    const [limited] = await w.accounts({ flags: AccountFlags.debits_must_not_exceed_credits });
    const [sink, source] = await w.plain(2);
    await w.fund(limited, 100n);
    expect(await w.submit(w.t({ debit_account_id: limited, credit_account_id: sink, amount: 101n }))).toEqual([
      "exceeds_credits",
    ]);
    expect(
      await w.submit(
        w.t({ debit_account_id: limited, credit_account_id: sink, amount: 60n, flags: TransferFlags.pending }),
        w.t({ debit_account_id: limited, credit_account_id: sink, amount: 41n }),
        w.t({ debit_account_id: source, credit_account_id: limited, amount: 500n, flags: TransferFlags.pending }),
        w.t({ debit_account_id: limited, credit_account_id: sink, amount: 41n }),
        w.t({ debit_account_id: limited, credit_account_id: sink, amount: 40n }),
        w.t({ debit_account_id: limited, credit_account_id: sink, amount: 0n }),
        w.t({ debit_account_id: limited, credit_account_id: sink, amount: 1n }),
      ),
    ).toEqual(["created", "exceeds_credits", "created", "exceeds_credits", "created", "created", "exceeds_credits"]);
    await w.expectBalances(limited, bal(60n, 40n, 500n, 100n));
  });

  it("credits_must_not_exceed_debits: exceeds_debits; exceeds_credits takes precedence", async () => {
    const w = new World(backend());
    const [limited] = await w.accounts({ flags: AccountFlags.credits_must_not_exceed_debits });
    const [dr] = await w.accounts({ flags: AccountFlags.debits_must_not_exceed_credits });
    const [x, y] = await w.plain(2);
    expect(
      await w.submit(
        w.t({ debit_account_id: x, credit_account_id: limited, amount: 1n }),
        w.t({ debit_account_id: limited, credit_account_id: y, amount: 50n }),
        w.t({ debit_account_id: x, credit_account_id: limited, amount: 30n, flags: TransferFlags.pending }),
        w.t({ debit_account_id: x, credit_account_id: limited, amount: 21n }),
        w.t({ debit_account_id: x, credit_account_id: limited, amount: 20n }),
        w.t({ debit_account_id: dr, credit_account_id: limited, amount: 1n }),
      ),
    ).toEqual(["exceeds_debits", "created", "created", "exceeds_debits", "created", "exceeds_credits"]);
    await w.expectBalances(limited, bal(0n, 50n, 30n, 20n));
    await w.expectBalances(dr, bal(0n, 0n, 0n, 0n));
  });

  it("closed accounts are reported before overflows, overflows before balance limits", async () => {
    const w = new World(backend());
    const [closed] = await w.accounts({ flags: AccountFlags.closed });
    const [limited] = await w.accounts({ flags: AccountFlags.debits_must_not_exceed_credits });
    const [big, sink] = await w.plain(2);
    expect(await w.submit(w.t({ debit_account_id: big, credit_account_id: sink, amount: U128_MAX }))).toEqual(["created"]);
    expect(
      await w.submit(
        w.t({ debit_account_id: big, credit_account_id: closed, amount: 1n }),
        w.t({ debit_account_id: limited, credit_account_id: sink, amount: 1n }),
      ),
    ).toEqual(["credit_account_already_closed", "overflows_credits_posted"]);
  });
});

describe("create_transfers: id_already_failed (transient errors) and non-transient retries", () => {
  it("exceeds_credits is transient: the same id later fails with id_already_failed even when it would fit", async () => {
    const w = new World(backend());
    const [limited] = await w.accounts({ flags: AccountFlags.debits_must_not_exceed_credits });
    const [sink] = await w.plain(1);
    const t = w.t({ debit_account_id: limited, credit_account_id: sink, amount: 10n });
    expect(await w.submit(t)).toEqual(["exceeds_credits"]);
    await w.fund(limited, 10n);
    expect(await w.submit(t)).toEqual(["id_already_failed"]);
    expect(await w.b.client.lookupTransfers([t.id])).toEqual([]);
    // id_already_failed comes after timestamp/reserved/id checks but before all other validation.
    expect(await w.submit({ ...t, code: 0 }, { ...t, timestamp: 3n })).toEqual(["id_already_failed", "timestamp_must_be_zero"]);
    expect(await w.submit({ ...t, id: w.id() })).toEqual(["created"]);
    await w.expectBalances(limited, bal(0n, 10n, 0n, 10n));
  });

  it("account not found, pending transfer not found and closed accounts are transient too", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    const later = w.id();
    const t1 = w.t({ debit_account_id: later, credit_account_id: b, amount: 1n });
    const t2 = w.t({ debit_account_id: a, credit_account_id: later, amount: 1n });
    const pendingId = w.id();
    const post = w.t({ pending_id: pendingId, amount: 1n, flags: TransferFlags.post_pending_transfer });
    expect(await w.submit(t1, t2, post)).toEqual(["debit_account_not_found", "credit_account_not_found", "pending_transfer_not_found"]);
    expect(await w.submitAccounts(account({ id: later, ledger: w.ledger }))).toEqual(["created"]);
    expect(
      await w.submit(w.t({ id: pendingId, debit_account_id: a, credit_account_id: b, amount: 1n, flags: TransferFlags.pending })),
    ).toEqual(["created"]);
    expect(await w.submit(t1, t2, post)).toEqual(["id_already_failed", "id_already_failed", "id_already_failed"]);
    expect(await w.submit({ ...post, id: w.id() })).toEqual(["created"]);

    // closed: close `a` with a closing pending transfer, fail a transfer, re-open by voiding.
    const closing = w.t({ debit_account_id: a, credit_account_id: b, amount: 0n, flags: TransferFlags.pending | TransferFlags.closing_debit });
    expect(await w.submit(closing)).toEqual(["created"]);
    const t3 = w.t({ debit_account_id: a, credit_account_id: b, amount: 1n });
    expect(await w.submit(t3)).toEqual(["debit_account_already_closed"]);
    expect(await w.submit(w.t({ pending_id: closing.id, flags: TransferFlags.void_pending_transfer }))).toEqual(["created"]);
    expect(await w.submit(t3)).toEqual(["id_already_failed"]);
    await w.expectBalances(a, bal(0n, 1n, 0n, 0n));
    expect(await w.b.client.lookupTransfers([t1.id, t2.id, post.id, t3.id])).toEqual([]);
  });

  it("non-transient failures do not poison the id: the corrected transfer with the same id is created", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    const other = new World(w.b);
    const [elsewhere] = await other.plain(1);
    const t = w.t({ debit_account_id: a, credit_account_id: b, amount: 5n });
    expect(await w.submit({ ...t, code: 0 })).toEqual(["code_must_not_be_zero"]);
    expect(await w.submit({ ...t, credit_account_id: elsewhere })).toEqual(["accounts_must_have_the_same_ledger"]);
    expect(await w.submit({ ...t, flags: TransferFlags.closing_credit })).toEqual(["closing_transfer_must_be_pending"]);
    expect(await w.submit(t)).toEqual(["created"]);

    const p = w.t({ debit_account_id: a, credit_account_id: b, amount: 5n, flags: TransferFlags.pending });
    expect(await w.submit(p)).toEqual(["created"]);
    const post = w.t({ pending_id: p.id, amount: 6n, flags: TransferFlags.post_pending_transfer });
    expect(await w.submit(post)).toEqual(["exceeds_pending_transfer_amount"]);
    expect(await w.submit({ ...post, amount: 5n })).toEqual(["created"]);
    await w.expectBalances(a, bal(0n, 10n, 0n, 0n));
  });

  it("in a failed chain only the event that failed with a transient error is poisoned", async () => {
    const w = new World(backend());
    const [limited] = await w.accounts({ flags: AccountFlags.debits_must_not_exceed_credits });
    const [a, b] = await w.plain(2);
    const t1 = w.t({ debit_account_id: a, credit_account_id: b, amount: 1n, flags: TransferFlags.linked });
    const t2 = w.t({ debit_account_id: limited, credit_account_id: b, amount: 1n });
    expect(await w.submit(t1, t2)).toEqual(["linked_event_failed", "exceeds_credits"]);
    expect(await w.submit({ ...t1, flags: TransferFlags.none })).toEqual(["created"]);
    await w.fund(limited, 1n);
    expect(await w.submit(t2)).toEqual(["id_already_failed"]);
    await w.expectBalances(b, bal(0n, 0n, 0n, 1n));
  });
});
