/**
 * create_accounts, per docs/reference/requests/create_accounts.md and docs/reference/account.md
 * (tigerbeetle repository), with 0.17 result shapes (one `{timestamp, status}` per event).
 */
import { describe, expect, it } from "vitest";
import { AccountFlags, CreateAccountStatus, ErrorCodes, RequestError, type Account } from "tigerbeetle-node";
import { account, BATCH_MAX, U128_MAX, bal } from "../../support/ledger-backend.js";
import { accountPrecedence, useBackend, World } from "./fixture.js";

const backend = useBackend();

describe("create_accounts", () => {
  it("creates an account: created, result timestamp = account timestamp, fields kept, zero balances", async () => {
    const w = new World(backend());
    const a = account({
      id: w.id(),
      ledger: w.ledger,
      code: 718,
      user_data_128: 0xdeadbeefn,
      user_data_64: 42n,
      user_data_32: 7,
      flags: AccountFlags.history | AccountFlags.debits_must_not_exceed_credits,
    });
    const results = await w.createAccounts([a]);
    expect(results.map((r) => r.status)).toEqual([CreateAccountStatus.created]);
    const stored = await w.account(a.id);
    expect(stored).toEqual({ ...a, timestamp: results[0].timestamp });
    expect(stored.timestamp).toBeGreaterThan(0n);
  });

  it("an identical resubmission is `exists` (in a later batch and within the same batch) and changes nothing", async () => {
    const w = new World(backend());
    const a = account({ id: w.id(), ledger: w.ledger, code: 3, user_data_64: 9n });
    expect(await w.submitAccounts(a)).toEqual(["created"]);
    const before = await w.account(a.id);
    expect(await w.submitAccounts(a)).toEqual(["exists"]);
    const b = account({ id: w.id(), ledger: w.ledger, code: 3 });
    expect(await w.submitAccounts(b, b)).toEqual(["created", "exists"]);
    expect(await w.account(a.id)).toEqual(before);
  });

  it("each exists_with_different_* field, and flags first", async () => {
    const w = new World(backend());
    const a = account({
      id: w.id(),
      ledger: w.ledger,
      code: 10,
      user_data_128: 1n,
      user_data_64: 2n,
      user_data_32: 3,
      flags: AccountFlags.history,
    });
    expect(await w.submitAccounts(a)).toEqual(["created"]);
    expect(
      await w.submitAccounts(
        { ...a, flags: AccountFlags.none },
        { ...a, user_data_128: 11n },
        { ...a, user_data_64: 12n },
        { ...a, user_data_32: 13 },
        { ...a, ledger: w.ledger + 1 },
        { ...a, code: 14 },
        // several differences: the first in precedence order wins
        { ...a, flags: AccountFlags.none, code: 99, ledger: 5 },
        { ...a, user_data_64: 0n, code: 99 },
        { ...a, ledger: 5, code: 99 },
      ),
    ).toEqual([
      "exists_with_different_flags",
      "exists_with_different_user_data_128",
      "exists_with_different_user_data_64",
      "exists_with_different_user_data_32",
      "exists_with_different_ledger",
      "exists_with_different_code",
      "exists_with_different_flags",
      "exists_with_different_user_data_64",
      "exists_with_different_ledger",
    ]);
  });

  it("exists checks come before the field validations that follow them in precedence", async () => {
    const w = new World(backend());
    const a = account({ id: w.id(), ledger: w.ledger, code: 10 });
    expect(await w.submitAccounts(a)).toEqual(["created"]);
    expect(
      await w.submitAccounts(
        { ...a, ledger: 0 }, // ledger_must_not_be_zero comes after exists_with_different_ledger
        { ...a, code: 0 },
        { ...a, debits_posted: 5n }, // balance fields are not compared: exists
        { ...a, flags: AccountFlags.debits_must_not_exceed_credits | AccountFlags.credits_must_not_exceed_debits },
        { ...a, reserved: 1 }, // reserved_field precedes the exists checks
        { ...a, timestamp: 1n }, // timestamp_must_be_zero precedes everything but linking/importing
      ),
    ).toEqual([
      "exists_with_different_ledger",
      "exists_with_different_code",
      "exists",
      "exists_with_different_flags",
      "reserved_field",
      "timestamp_must_be_zero",
    ]);
    expect(await w.balances(a.id)).toEqual(bal(0n, 0n, 0n, 0n));
  });

  it("validation results follow the documented precedence (fixing one violation at a time)", async () => {
    const w = new World(backend());
    // Start with an event that violates every rule, then fix them one by one.
    let e: Account = account({
      id: 0n,
      ledger: 0,
      code: 0,
      reserved: 1,
      flags: (1 << 15) | AccountFlags.debits_must_not_exceed_credits | AccountFlags.credits_must_not_exceed_debits,
      debits_pending: 1n,
      debits_posted: 1n,
      credits_pending: 1n,
      credits_posted: 1n,
      timestamp: 5n,
    });
    const steps: Array<[string, (x: Account) => Account]> = [
      ["timestamp_must_be_zero", (x) => ({ ...x, timestamp: 0n })],
      ["reserved_field", (x) => ({ ...x, reserved: 0 })],
      ["reserved_flag", (x) => ({ ...x, flags: x.flags & ~(1 << 15) })],
      ["id_must_not_be_zero", (x) => ({ ...x, id: U128_MAX })],
      ["id_must_not_be_int_max", (x) => ({ ...x, id: w.id() })],
      ["flags_are_mutually_exclusive", (x) => ({ ...x, flags: AccountFlags.debits_must_not_exceed_credits })],
      ["debits_pending_must_be_zero", (x) => ({ ...x, debits_pending: 0n })],
      ["debits_posted_must_be_zero", (x) => ({ ...x, debits_posted: 0n })],
      ["credits_pending_must_be_zero", (x) => ({ ...x, credits_pending: 0n })],
      ["credits_posted_must_be_zero", (x) => ({ ...x, credits_posted: 0n })],
      ["ledger_must_not_be_zero", (x) => ({ ...x, ledger: w.ledger })],
      ["code_must_not_be_zero", (x) => ({ ...x, code: 1 })],
    ];
    const seen: string[] = [];
    for (const [, fix] of steps) {
      seen.push(...(await w.submitAccounts(e)));
      e = fix(e);
    }
    seen.push(...(await w.submitAccounts(e)));
    expect(seen).toEqual([...steps.map(([s]) => s), "created"]);
    // The documented order is the declaration order of the client's enum.
    const order = accountPrecedence();
    const indices = steps.map(([s]) => order.indexOf(s));
    expect([...indices].sort((x, y) => x - y)).toEqual(indices);
    expect((await w.account(e.id)).flags).toBe(AccountFlags.debits_must_not_exceed_credits);
  });

  it("reserved flag bits are rejected, every defined flag is accepted", async () => {
    const w = new World(backend());
    for (const bit of [6, 7, 10, 15]) {
      expect(await w.submitAccounts(account({ id: w.id(), ledger: w.ledger, flags: 1 << bit }))).toEqual(["reserved_flag"]);
    }
    const ok = [
      AccountFlags.none,
      AccountFlags.debits_must_not_exceed_credits,
      AccountFlags.credits_must_not_exceed_debits,
      AccountFlags.history,
      AccountFlags.closed,
      AccountFlags.history | AccountFlags.closed | AccountFlags.credits_must_not_exceed_debits,
    ];
    const events = ok.map((flags) => account({ id: w.id(), ledger: w.ledger, flags }));
    expect(await w.submitAccounts(...events)).toEqual(events.map(() => "created"));
    const stored = await w.b.client.lookupAccounts(events.map((e) => e.id));
    expect(stored.map((a) => a.flags)).toEqual(ok);
  });

  it("ids 0 and 2^128-1 are rejected", async () => {
    const w = new World(backend());
    expect(
      await w.submitAccounts(account({ id: 0n, ledger: w.ledger }), account({ id: U128_MAX, ledger: w.ledger })),
    ).toEqual(["id_must_not_be_zero", "id_must_not_be_int_max"]);
    expect(await w.b.client.lookupAccounts([0n, U128_MAX])).toEqual([]);
  });

  it("a batch of zero events returns zero results", async () => {
    const w = new World(backend());
    expect(await w.b.client.createAccounts([])).toEqual([]);
  });

  it("8189 events are accepted in one batch; 8190 are refused by the client with ERR_TOO_MUCH_DATA", async () => {
    const w = new World(backend());
    const events = Array.from({ length: BATCH_MAX }, () => account({ id: w.id(), ledger: w.ledger }));
    const results = await w.b.client.createAccounts(events);
    expect(results).toHaveLength(BATCH_MAX);
    expect(results.every((r) => r.status === CreateAccountStatus.created)).toBe(true);
    for (let i = 1; i < results.length; i++) expect(results[i].timestamp).toBeGreaterThan(results[i - 1].timestamp);

    const tooMany = Array.from({ length: BATCH_MAX + 1 }, () => account({ id: w.id(), ledger: w.ledger }));
    const err = await w.b.client.createAccounts(tooMany).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RequestError);
    expect((err as RequestError).code).toBe(ErrorCodes.ERR_TOO_MUCH_DATA);
    // Nothing of the refused batch was applied.
    expect(await w.b.client.lookupAccounts([tooMany[0].id, tooMany[BATCH_MAX].id])).toEqual([]);
  });

  it("an account may be created closed; it then refuses transfers on both sides", async () => {
    const w = new World(backend());
    const [closed] = await w.accounts({ flags: AccountFlags.closed });
    const [other] = await w.plain(1);
    expect(
      await w.submit(
        w.t({ debit_account_id: closed, credit_account_id: other, amount: 1n }),
        w.t({ debit_account_id: other, credit_account_id: closed, amount: 1n }),
      ),
    ).toEqual(["debit_account_already_closed", "credit_account_already_closed"]);
    await w.expectBalances(closed, bal(0n, 0n, 0n, 0n));
    await w.expectBalances(other, bal(0n, 0n, 0n, 0n));
  });
});

describe("create_accounts: linked chains (docs/coding/linked-events.md)", () => {
  it("a failing event fails its whole chain: the others get linked_event_failed and nothing is created", async () => {
    const w = new World(backend());
    const a = account({ id: w.id(), ledger: w.ledger, flags: AccountFlags.linked });
    const b = account({ id: w.id(), ledger: w.ledger, code: 0, flags: AccountFlags.linked });
    const c = account({ id: w.id(), ledger: w.ledger });
    expect(await w.submitAccounts(a, b, c)).toEqual(["linked_event_failed", "code_must_not_be_zero", "linked_event_failed"]);
    expect(await w.b.client.lookupAccounts([a.id, b.id, c.id])).toEqual([]);
  });

  it("a chain left open at the end of the batch: linked_event_chain_open on the last event, the rest fail", async () => {
    const w = new World(backend());
    const single = account({ id: w.id(), ledger: w.ledger, flags: AccountFlags.linked });
    expect(await w.submitAccounts(single)).toEqual(["linked_event_chain_open"]);
    const a = account({ id: w.id(), ledger: w.ledger });
    const b = account({ id: w.id(), ledger: w.ledger, flags: AccountFlags.linked });
    const c = account({ id: w.id(), ledger: w.ledger, flags: AccountFlags.linked });
    expect(await w.submitAccounts(a, b, c)).toEqual(["created", "linked_event_failed", "linked_event_chain_open"]);
    expect((await w.b.client.lookupAccounts([single.id, a.id, b.id, c.id])).map((x) => x.id)).toEqual([a.id]);
  });

  it("chains in one batch succeed or fail independently", async () => {
    const w = new World(backend());
    const L = AccountFlags.linked;
    const ok1 = account({ id: w.id(), ledger: w.ledger, flags: L });
    const ok2 = account({ id: w.id(), ledger: w.ledger });
    const bad1 = account({ id: w.id(), ledger: w.ledger, flags: L });
    const bad2 = account({ id: w.id(), ledger: 0, flags: L });
    const bad3 = account({ id: w.id(), ledger: w.ledger });
    const lone = account({ id: w.id(), ledger: w.ledger });
    expect(await w.submitAccounts(ok1, ok2, bad1, bad2, bad3, lone)).toEqual([
      "created",
      "created",
      "linked_event_failed",
      "ledger_must_not_be_zero",
      "linked_event_failed",
      "created",
    ]);
    const found = await w.b.client.lookupAccounts([ok1, ok2, bad1, bad2, bad3, lone].map((x) => x.id));
    expect(found.map((x) => x.id)).toEqual([ok1.id, ok2.id, lone.id]);
  });

  it("`exists` breaks a chain: the same id twice in a chain creates nothing", async () => {
    const w = new World(backend());
    const a = account({ id: w.id(), ledger: w.ledger, flags: AccountFlags.linked });
    expect(await w.submitAccounts(a, { ...a, flags: AccountFlags.none })).toEqual([
      "linked_event_failed",
      "exists_with_different_flags",
    ]);
    const b = account({ id: w.id(), ledger: w.ledger, flags: AccountFlags.linked });
    const c = account({ id: w.id(), ledger: w.ledger });
    expect(await w.submitAccounts(b, { ...b, flags: AccountFlags.linked }, c)).toEqual([
      "linked_event_failed",
      "exists",
      "linked_event_failed",
    ]);
    expect(await w.b.client.lookupAccounts([a.id, b.id, c.id])).toEqual([]);
  });

  it("an earlier committed account makes a chain fail with exists (idempotent retry of a chain)", async () => {
    const w = new World(backend());
    const a = account({ id: w.id(), ledger: w.ledger, flags: AccountFlags.linked });
    const b = account({ id: w.id(), ledger: w.ledger });
    expect(await w.submitAccounts(a, b)).toEqual(["created", "created"]);
    expect(await w.submitAccounts(a, b)).toEqual(["exists", "linked_event_failed"]);
  });
});
