/**
 * Balancing and closing transfers, per docs/reference/transfer.md (flags.balancing_debit,
 * flags.balancing_credit, flags.closing_debit, flags.closing_credit), docs/reference/account.md
 * (flags.closed) and docs/coding/recipes/close-account.md.
 */
import { describe, expect, it } from "vitest";
import { AccountFlags, amount_max, TransferFlags } from "tigerbeetle-node";
import { account, bal } from "../../support/ledger-backend.js";
import { useBackend, World } from "./fixture.js";

const backend = useBackend();
const BD = TransferFlags.balancing_debit;
const BC = TransferFlags.balancing_credit;
const P = TransferFlags.pending;
const L = TransferFlags.linked;
const CD = TransferFlags.closing_debit;
const CC = TransferFlags.closing_credit;
const VOID = TransferFlags.void_pending_transfer;
const POST = TransferFlags.post_pending_transfer;

describe("balancing transfers", () => {
  it("balancing_debit moves at most what keeps debits <= credits, and records the amount moved", async () => {
    const w = new World(backend());
    const [a, sink, x] = await w.plain(3);
    await w.fund(a, 100n);
    expect(await w.submit(w.t({ debit_account_id: a, credit_account_id: x, amount: 30n }))).toEqual(["created"]);
    const t = w.t({ debit_account_id: a, credit_account_id: sink, amount: 1000n, flags: BD });
    expect(await w.submit(t)).toEqual(["created"]);
    expect((await w.transfer(t.id))?.amount).toBe(70n);
    await w.expectBalances(a, bal(0n, 100n, 0n, 100n));
    await w.expectBalances(sink, bal(0n, 0n, 0n, 70n));
    // nothing left: a balancing transfer of zero is created (0.16+)
    const z = w.t({ debit_account_id: a, credit_account_id: sink, amount: amount_max, flags: BD });
    expect(await w.submit(z)).toEqual(["created"]);
    expect((await w.transfer(z.id))?.amount).toBe(0n);
    await w.expectBalances(a, bal(0n, 100n, 0n, 100n));
  });

  it("balancing_debit with a smaller amount moves that amount; pending debits count against the limit", async () => {
    const w = new World(backend());
    const [a, sink] = await w.plain(2);
    await w.fund(a, 100n);
    expect(
      await w.submit(
        w.t({ debit_account_id: a, credit_account_id: sink, amount: 40n, flags: P }),
        w.t({ debit_account_id: a, credit_account_id: sink, amount: 25n, flags: BD }),
        w.t({ debit_account_id: a, credit_account_id: sink, amount: amount_max, flags: BD }),
      ),
    ).toEqual(["created", "created", "created"]);
    await w.expectBalances(a, bal(40n, 60n, 0n, 100n));
  });

  it("balancing_credit moves at most what keeps credits <= debits", async () => {
    const w = new World(backend());
    const [c, x, source] = await w.plain(3);
    expect(await w.submit(w.t({ debit_account_id: c, credit_account_id: x, amount: 80n }))).toEqual(["created"]);
    expect(await w.submit(w.t({ debit_account_id: source, credit_account_id: c, amount: 30n, flags: P }))).toEqual(["created"]);
    const t = w.t({ debit_account_id: source, credit_account_id: c, amount: 1000n, flags: BC });
    expect(await w.submit(t)).toEqual(["created"]);
    expect((await w.transfer(t.id))?.amount).toBe(50n);
    await w.expectBalances(c, bal(0n, 80n, 30n, 50n));
  });

  it("both balancing flags: the smaller of the two limits", async () => {
    const w = new World(backend());
    const [dr, cr, x] = await w.plain(3);
    await w.fund(dr, 100n);
    expect(await w.submit(w.t({ debit_account_id: cr, credit_account_id: x, amount: 35n }))).toEqual(["created"]);
    const t = w.t({ debit_account_id: dr, credit_account_id: cr, amount: amount_max, flags: BD | BC });
    expect(await w.submit(t)).toEqual(["created"]);
    expect((await w.transfer(t.id))?.amount).toBe(35n);
    await w.expectBalances(dr, bal(0n, 35n, 0n, 100n));
    await w.expectBalances(cr, bal(0n, 35n, 0n, 35n));
  });

  it("a pending balancing transfer reserves the clamped amount", async () => {
    const w = new World(backend());
    const [a, sink] = await w.plain(2);
    await w.fund(a, 20n);
    const t = w.t({ debit_account_id: a, credit_account_id: sink, amount: 50n, flags: P | BD });
    expect(await w.submit(t)).toEqual(["created"]);
    expect((await w.transfer(t.id))?.amount).toBe(20n);
    await w.expectBalances(a, bal(20n, 0n, 0n, 20n));
    expect(await w.submit(w.t({ pending_id: t.id, amount: amount_max, flags: POST, ledger: 0, code: 0 }))).toEqual(["created"]);
    await w.expectBalances(a, bal(0n, 20n, 0n, 20n));
  });

  it("balancing transfers skip exceeds_credits on a debits_must_not_exceed_credits account", async () => {
    const w = new World(backend());
    const [wallet] = await w.accounts({ flags: AccountFlags.debits_must_not_exceed_credits });
    const [sink] = await w.plain(1);
    await w.fund(wallet, 15n);
    expect(
      await w.submit(
        w.t({ debit_account_id: wallet, credit_account_id: sink, amount: 100n }),
        w.t({ debit_account_id: wallet, credit_account_id: sink, amount: 100n, flags: BD }),
      ),
    ).toEqual(["exceeds_credits", "created"]);
    await w.expectBalances(wallet, bal(0n, 15n, 0n, 15n));
  });

  it("retrying a balancing transfer: exists when the amount covers what was moved, else exists_with_different_amount", async () => {
    const w = new World(backend());
    const [a, sink] = await w.plain(2);
    await w.fund(a, 70n);
    const t = w.t({ debit_account_id: a, credit_account_id: sink, amount: 1000n, flags: BD });
    expect(await w.submit(t)).toEqual(["created"]);
    expect(await w.submit(t, { ...t, amount: 70n }, { ...t, amount: amount_max }, { ...t, amount: 69n })).toEqual([
      "exists",
      "exists",
      "exists",
      "exists_with_different_amount",
    ]);
    await w.expectBalances(a, bal(0n, 70n, 0n, 70n));
  });
});

describe("closing transfers and closed accounts", () => {
  it("the close-account recipe: balance to zero and close in linked chains; voiding re-opens", async () => {
    const w = new World(backend());
    const [A] = await w.accounts({ flags: AccountFlags.debits_must_not_exceed_credits });
    const [B] = await w.accounts({ flags: AccountFlags.credits_must_not_exceed_debits });
    const [C, X] = await w.plain(2);
    expect(
      await w.submit(
        w.t({ debit_account_id: X, credit_account_id: A, amount: 20n }),
        w.t({ debit_account_id: A, credit_account_id: X, amount: 10n }),
        w.t({ debit_account_id: B, credit_account_id: X, amount: 30n }),
        w.t({ debit_account_id: X, credit_account_id: B, amount: 5n }),
      ),
    ).toEqual(["created", "created", "created", "created"]);
    const T1 = w.t({ debit_account_id: A, credit_account_id: C, amount: amount_max, flags: BD | L });
    const T2 = w.t({ debit_account_id: A, credit_account_id: C, amount: 0n, flags: CD | P });
    const T3 = w.t({ debit_account_id: C, credit_account_id: B, amount: amount_max, flags: BC | L });
    const T4 = w.t({ debit_account_id: C, credit_account_id: B, amount: 0n, flags: CC | P });
    expect(await w.submit(T1, T2, T3, T4)).toEqual(["created", "created", "created", "created"]);
    expect((await w.b.client.lookupTransfers([T1.id, T3.id])).map((t) => t.amount)).toEqual([10n, 25n]);
    await w.expectBalances(A, bal(0n, 20n, 0n, 20n));
    await w.expectBalances(B, bal(0n, 30n, 0n, 30n));
    await w.expectBalances(C, bal(0n, 25n, 0n, 10n));
    expect((await w.account(A)).flags).toBe(AccountFlags.debits_must_not_exceed_credits | AccountFlags.closed);
    expect((await w.account(B)).flags).toBe(AccountFlags.credits_must_not_exceed_debits | AccountFlags.closed);
    expect(await w.isClosed(C)).toBe(false);

    expect(
      await w.submit(
        w.t({ debit_account_id: X, credit_account_id: A, amount: 1n }),
        w.t({ debit_account_id: B, credit_account_id: X, amount: 1n }),
      ),
    ).toEqual(["credit_account_already_closed", "debit_account_already_closed"]);

    const T5 = w.t({ debit_account_id: A, credit_account_id: C, amount: 0n, pending_id: T2.id, flags: VOID });
    const T6 = w.t({ debit_account_id: C, credit_account_id: B, amount: 0n, pending_id: T4.id, flags: VOID });
    expect(await w.submit(T5, T6)).toEqual(["created", "created"]);
    expect((await w.account(A)).flags).toBe(AccountFlags.debits_must_not_exceed_credits);
    expect((await w.account(B)).flags).toBe(AccountFlags.credits_must_not_exceed_debits);
    await w.expectBalances(A, bal(0n, 20n, 0n, 20n));
    await w.expectBalances(C, bal(0n, 25n, 0n, 10n));
    expect(await w.submit(w.t({ debit_account_id: X, credit_account_id: A, amount: 1n }))).toEqual(["created"]);
  });

  it("a closed account accepts voids of its pending transfers but not posts (the closing transfer included)", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    const p1 = w.t({ debit_account_id: a, credit_account_id: b, amount: 10n, flags: P });
    const p2 = w.t({ debit_account_id: b, credit_account_id: a, amount: 7n, flags: P });
    const close = w.t({ debit_account_id: a, credit_account_id: b, amount: 5n, flags: P | CD });
    expect(await w.submit(p1, p2, close)).toEqual(["created", "created", "created"]);
    expect(await w.isClosed(a)).toBe(true);
    expect(await w.isClosed(b)).toBe(false);
    await w.expectBalances(a, bal(15n, 0n, 7n, 0n));
    const res = (id: bigint, flags: number) => w.t({ pending_id: id, flags, amount: flags === POST ? amount_max : 0n, ledger: 0, code: 0 });
    expect(await w.submit(res(p1.id, POST), res(p2.id, POST), res(close.id, POST))).toEqual([
      "debit_account_already_closed",
      "credit_account_already_closed",
      "debit_account_already_closed",
    ]);
    expect(await w.submit(res(p1.id, VOID), res(p2.id, VOID))).toEqual(["created", "created"]);
    await w.expectBalances(a, bal(5n, 0n, 0n, 0n));
    expect(await w.isClosed(a)).toBe(true);
    expect(await w.submit(res(close.id, VOID))).toEqual(["created"]);
    expect(await w.isClosed(a)).toBe(false);
    await w.expectBalances(a, bal(0n, 0n, 0n, 0n));
  });

  it("closing_credit closes the credit account; closing both sides closes both", async () => {
    const w = new World(backend());
    const [a, b, c, d] = await w.plain(4);
    expect(
      await w.submit(
        w.t({ debit_account_id: a, credit_account_id: b, amount: 0n, flags: P | CC }),
        w.t({ debit_account_id: c, credit_account_id: d, amount: 0n, flags: P | CC | CD }),
      ),
    ).toEqual(["created", "created"]);
    expect([await w.isClosed(a), await w.isClosed(b), await w.isClosed(c), await w.isClosed(d)]).toEqual([false, true, true, true]);
    expect(
      await w.submit(
        w.t({ debit_account_id: a, credit_account_id: b, amount: 1n }),
        w.t({ debit_account_id: b, credit_account_id: a, amount: 1n }),
        w.t({ debit_account_id: a, credit_account_id: c, amount: 0n }),
        // closing an already closed account is refused like any other transfer
        w.t({ debit_account_id: b, credit_account_id: a, amount: 0n, flags: P | CD }),
      ),
    ).toEqual(["credit_account_already_closed", "debit_account_already_closed", "credit_account_already_closed", "debit_account_already_closed"]);
    await w.expectBalances(a, bal(0n, 0n, 0n, 0n));
  });

  it("an account's flags include `closed` once closed: resubmitting the original account is exists_with_different_flags", async () => {
    // create_account_exists compares the stored account's flags (src/state_machine.zig), and a
    // closing transfer sets flags.closed on the stored account.
    const w = new World(backend());
    const original = account({ id: w.id(), ledger: w.ledger, flags: AccountFlags.history });
    const [other] = await w.plain(1);
    expect(await w.submitAccounts(original)).toEqual(["created"]);
    const close = w.t({ debit_account_id: original.id, credit_account_id: other, amount: 0n, flags: P | CD });
    expect(await w.submit(close)).toEqual(["created"]);
    expect(
      await w.submitAccounts(original, { ...original, flags: AccountFlags.history | AccountFlags.closed }),
    ).toEqual(["exists_with_different_flags", "exists"]);
    expect(await w.submit(w.t({ pending_id: close.id, flags: VOID, ledger: 0, code: 0 }))).toEqual(["created"]);
    expect(await w.submitAccounts(original)).toEqual(["exists"]);
  });

  it("closing transfers must be pending", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    expect(
      await w.submit(
        w.t({ debit_account_id: a, credit_account_id: b, amount: 0n, flags: CD }),
        w.t({ debit_account_id: a, credit_account_id: b, amount: 0n, flags: CC }),
      ),
    ).toEqual(["closing_transfer_must_be_pending", "closing_transfer_must_be_pending"]);
    expect([await w.isClosed(a), await w.isClosed(b)]).toEqual([false, false]);
  });
});
