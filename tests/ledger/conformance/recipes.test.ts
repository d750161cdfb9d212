/**
 * Recipes from docs/coding/recipes/: balance bounds (balance-bounds.md, with AMOUNT_MAX as the
 * "as much as possible" amount of 0.16+), correcting transfers (correcting-transfers.md) and
 * multi-debit transfers (multi-debit-credit-transfers.md). The close-account recipe is in
 * balancing-closing.test.ts.
 */
import { describe, expect, it } from "vitest";
import { AccountFlags, amount_max, TransferFlags } from "tigerbeetle-node";
import { bal } from "../../support/ledger-backend.js";
import { useBackend, World } from "./fixture.js";

const backend = useBackend();
const L = TransferFlags.linked;

describe("recipes", () => {
  it("balance bounds, credit-balance target: a transfer that would exceed the upper bound fails as a whole", async () => {
    const w = new World(backend());
    const [destination] = await w.accounts({ flags: AccountFlags.debits_must_not_exceed_credits });
    const [control] = await w.accounts({ flags: AccountFlags.credits_must_not_exceed_debits });
    const [source, operator] = await w.plain(2);
    const limit = 100n;
    const bounded = (amount: bigint) => {
      const pendingId = w.id();
      return [
        w.t({ debit_account_id: source, credit_account_id: destination, amount, flags: L }),
        w.t({ debit_account_id: control, credit_account_id: operator, amount: limit, flags: L }),
        w.t({ id: pendingId, debit_account_id: destination, credit_account_id: control, amount: amount_max, flags: L | TransferFlags.balancing_debit | TransferFlags.pending }),
        w.t({ pending_id: pendingId, flags: L | TransferFlags.void_pending_transfer, ledger: 0, code: 0 }),
        w.t({ debit_account_id: operator, credit_account_id: control, amount: limit }),
      ];
    };
    expect(await w.submit(...bounded(60n))).toEqual(["created", "created", "created", "created", "created"]);
    await w.expectBalances(destination, bal(0n, 0n, 0n, 60n));
    expect(await w.submit(...bounded(60n))).toEqual([
      "linked_event_failed",
      "linked_event_failed",
      "exceeds_debits",
      "linked_event_failed",
      "linked_event_failed",
    ]);
    await w.expectBalances(destination, bal(0n, 0n, 0n, 60n));
    expect(await w.submit(...bounded(40n))).toEqual(["created", "created", "created", "created", "created"]);
    await w.expectBalances(destination, bal(0n, 0n, 0n, 100n));
    // The control account's net balance is back to zero.
    const c = await w.balances(control);
    expect(c.debits_posted - c.credits_posted).toBe(0n);
    expect(c.debits_pending + c.credits_pending).toBe(0n);
  });

  it("balance bounds, debit-balance target", async () => {
    const w = new World(backend());
    const [destination] = await w.accounts({ flags: AccountFlags.credits_must_not_exceed_debits });
    const [control] = await w.accounts({ flags: AccountFlags.debits_must_not_exceed_credits });
    const [source, operator] = await w.plain(2);
    const limit = 50n;
    const bounded = (amount: bigint) => {
      const pendingId = w.id();
      return [
        w.t({ debit_account_id: destination, credit_account_id: source, amount, flags: L }),
        w.t({ debit_account_id: operator, credit_account_id: control, amount: limit, flags: L }),
        w.t({ id: pendingId, debit_account_id: control, credit_account_id: destination, amount: amount_max, flags: L | TransferFlags.balancing_credit | TransferFlags.pending }),
        w.t({ pending_id: pendingId, flags: L | TransferFlags.void_pending_transfer, ledger: 0, code: 0 }),
        w.t({ debit_account_id: control, credit_account_id: operator, amount: limit }),
      ];
    };
    expect(await w.submit(...bounded(50n))).toEqual(["created", "created", "created", "created", "created"]);
    expect(await w.submit(...bounded(1n))).toEqual([
      "linked_event_failed",
      "linked_event_failed",
      "exceeds_credits",
      "linked_event_failed",
      "linked_event_failed",
    ]);
    await w.expectBalances(destination, bal(0n, 50n, 0n, 0n));
  });

  it("correcting transfers: a mistaken transfer is reversed by a transfer the other way", async () => {
    const w = new World(backend());
    const [customer, merchant] = await w.plain(2);
    const wrong = w.t({ debit_account_id: customer, credit_account_id: merchant, amount: 100n, user_data_128: 1n });
    expect(await w.submit(wrong)).toEqual(["created"]);
    const correction = w.t({ debit_account_id: merchant, credit_account_id: customer, amount: 100n, user_data_128: 1n, code: 2 });
    const right = w.t({ debit_account_id: customer, credit_account_id: merchant, amount: 90n, user_data_128: 1n });
    expect(await w.submit({ ...correction, flags: L }, right)).toEqual(["created", "created"]);
    await w.expectBalances(customer, bal(0n, 190n, 0n, 100n));
    await w.expectBalances(merchant, bal(0n, 100n, 0n, 190n));
    // The original transfer is immutable.
    expect((await w.transfer(wrong.id))?.amount).toBe(100n);
  });

  it("multi-debit, multi-credit transfers through a linked chain on a clearing account", async () => {
    const w = new World(backend());
    const [a, b] = await w.accounts({ flags: AccountFlags.debits_must_not_exceed_credits }, { flags: AccountFlags.debits_must_not_exceed_credits });
    const [clearing, x, y] = await w.plain(3);
    await w.fund(a, 30n);
    await w.fund(b, 20n);
    expect(
      await w.submit(
        w.t({ debit_account_id: a, credit_account_id: clearing, amount: 30n, flags: L }),
        w.t({ debit_account_id: b, credit_account_id: clearing, amount: 20n, flags: L }),
        w.t({ debit_account_id: clearing, credit_account_id: x, amount: 25n, flags: L }),
        w.t({ debit_account_id: clearing, credit_account_id: y, amount: 25n }),
      ),
    ).toEqual(["created", "created", "created", "created"]);
    await w.expectBalances(clearing, bal(0n, 50n, 0n, 50n));
    expect(
      await w.submit(
        w.t({ debit_account_id: a, credit_account_id: clearing, amount: 1n, flags: L }),
        w.t({ debit_account_id: clearing, credit_account_id: x, amount: 1n }),
      ),
    ).toEqual(["exceeds_credits", "linked_event_failed"]);
    await w.expectBalances(x, bal(0n, 0n, 0n, 25n));
  });
});
