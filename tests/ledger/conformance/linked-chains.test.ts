/**
 * Linked transfer chains, per docs/coding/linked-events.md and Transfer.flags.linked in
 * docs/reference/transfer.md: a chain succeeds or fails as a unit, later events in a chain see the
 * effects of earlier ones, and the chain is invisible to later events when it fails.
 */
import { describe, expect, it } from "vitest";
import { AccountFlags, TransferFlags } from "tigerbeetle-node";
import { bal } from "../../support/ledger-backend.js";
import { useBackend, World } from "./fixture.js";

const backend = useBackend();
const L = TransferFlags.linked;

describe("linked transfer chains", () => {
  it("a chain whose events all succeed is applied", async () => {
    const w = new World(backend());
    const [a, b, c] = await w.plain(3);
    expect(
      await w.submit(
        w.t({ debit_account_id: a, credit_account_id: b, amount: 5n, flags: L }),
        w.t({ debit_account_id: b, credit_account_id: c, amount: 3n, flags: L }),
        w.t({ debit_account_id: c, credit_account_id: a, amount: 1n }),
      ),
    ).toEqual(["created", "created", "created"]);
    await w.expectBalances(a, bal(0n, 5n, 0n, 1n));
    await w.expectBalances(b, bal(0n, 3n, 0n, 5n));
    await w.expectBalances(c, bal(0n, 1n, 0n, 3n));
  });

  it("one failure fails the whole chain; the failing event keeps its own code and balances are unchanged", async () => {
    const w = new World(backend());
    const [a, b, c] = await w.plain(3);
    const events = [
      w.t({ debit_account_id: a, credit_account_id: b, amount: 5n, flags: L }),
      w.t({ debit_account_id: b, credit_account_id: c, amount: 3n, flags: L }),
      w.t({ debit_account_id: c, credit_account_id: c, amount: 1n, flags: L }),
      w.t({ debit_account_id: c, credit_account_id: a, amount: 1n }),
    ];
    expect(await w.submit(...events)).toEqual([
      "linked_event_failed",
      "linked_event_failed",
      "accounts_must_be_different",
      "linked_event_failed",
    ]);
    for (const id of [a, b, c]) await w.expectBalances(id, bal(0n, 0n, 0n, 0n));
    expect(await w.b.client.lookupTransfers(events.map((e) => e.id))).toEqual([]);
  });

  it("the last event of a batch must not be linked: linked_event_chain_open", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    const lone = w.t({ debit_account_id: a, credit_account_id: b, amount: 1n, flags: L });
    expect(await w.submit(lone)).toEqual(["linked_event_chain_open"]);
    const ok = w.t({ debit_account_id: a, credit_account_id: b, amount: 2n });
    const c1 = w.t({ debit_account_id: a, credit_account_id: b, amount: 4n, flags: L });
    const c2 = w.t({ debit_account_id: a, credit_account_id: b, amount: 8n, flags: L });
    expect(await w.submit(ok, c1, c2)).toEqual(["created", "linked_event_failed", "linked_event_chain_open"]);
    await w.expectBalances(a, bal(0n, 2n, 0n, 0n));
    // linked_event_chain_open wins over the event's own validation errors
    expect(await w.submit(w.t({ debit_account_id: a, credit_account_id: a, amount: 1n, code: 0, flags: L }))).toEqual([
      "linked_event_chain_open",
    ]);
  });

  it("chains in one batch are independent of each other and of unlinked events", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    expect(
      await w.submit(
        w.t({ debit_account_id: a, credit_account_id: b, amount: 1n, flags: L }),
        w.t({ debit_account_id: a, credit_account_id: b, amount: 2n }),
        w.t({ debit_account_id: a, credit_account_id: b, amount: 4n, flags: L }),
        w.t({ debit_account_id: a, credit_account_id: b, amount: 8n, ledger: 0 }),
        w.t({ debit_account_id: a, credit_account_id: b, amount: 16n }),
        w.t({ debit_account_id: a, credit_account_id: b, amount: 32n, code: 0 }),
        w.t({ debit_account_id: a, credit_account_id: b, amount: 64n, flags: L }),
        w.t({ debit_account_id: a, credit_account_id: b, amount: 128n }),
      ),
    ).toEqual([
      "created",
      "created",
      "linked_event_failed",
      "ledger_must_not_be_zero",
      "created",
      "code_must_not_be_zero",
      "created",
      "created",
    ]);
    await w.expectBalances(a, bal(0n, 1n + 2n + 16n + 64n + 128n, 0n, 0n));
  });

  it("later events in a chain see earlier ones; later events in the batch do not see a failed chain", async () => {
    const w = new World(backend());
    const [wallet] = await w.accounts({ flags: AccountFlags.debits_must_not_exceed_credits });
    const [bank, shop] = await w.plain(2);
    expect(
      await w.submit(
        // chain 1: deposit then spend the deposit: succeeds because the spend sees the deposit
        w.t({ debit_account_id: bank, credit_account_id: wallet, amount: 10n, flags: L }),
        w.t({ debit_account_id: wallet, credit_account_id: shop, amount: 10n }),
        // chain 2: deposit, spend, then fail: everything rolls back
        w.t({ debit_account_id: bank, credit_account_id: wallet, amount: 50n, flags: L }),
        w.t({ debit_account_id: wallet, credit_account_id: shop, amount: 50n, flags: L }),
        w.t({ debit_account_id: wallet, credit_account_id: wallet, amount: 1n }),
        // after the failed chain the wallet has nothing to spend
        w.t({ debit_account_id: wallet, credit_account_id: shop, amount: 1n }),
      ),
    ).toEqual([
      "created",
      "created",
      "linked_event_failed",
      "linked_event_failed",
      "accounts_must_be_different",
      "exceeds_credits",
    ]);
    await w.expectBalances(wallet, bal(0n, 10n, 0n, 10n));
    await w.expectBalances(shop, bal(0n, 0n, 0n, 10n));
    await w.expectBalances(bank, bal(0n, 10n, 0n, 0n));
  });

  it("a chain that fails on balance limits is all-or-nothing (multi-leg transfer)", async () => {
    const w = new World(backend());
    const [payer] = await w.accounts({ flags: AccountFlags.debits_must_not_exceed_credits });
    const [x, y, z] = await w.plain(3);
    await w.fund(payer, 10n);
    expect(
      await w.submit(
        w.t({ debit_account_id: payer, credit_account_id: x, amount: 4n, flags: L }),
        w.t({ debit_account_id: payer, credit_account_id: y, amount: 4n, flags: L }),
        w.t({ debit_account_id: payer, credit_account_id: z, amount: 4n }),
      ),
    ).toEqual(["linked_event_failed", "linked_event_failed", "exceeds_credits"]);
    await w.expectBalances(payer, bal(0n, 0n, 0n, 10n));
    expect(
      await w.submit(
        w.t({ debit_account_id: payer, credit_account_id: x, amount: 4n, flags: L }),
        w.t({ debit_account_id: payer, credit_account_id: y, amount: 4n, flags: L }),
        w.t({ debit_account_id: payer, credit_account_id: z, amount: 2n }),
      ),
    ).toEqual(["created", "created", "created"]);
    await w.expectBalances(payer, bal(0n, 10n, 0n, 10n));
  });

  it("the same id twice in a chain: the second is exists, which fails the chain; a retried chain fails with exists", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    const t = w.t({ debit_account_id: a, credit_account_id: b, amount: 3n, flags: L });
    expect(await w.submit(t, { ...t, flags: 0 })).toEqual(["linked_event_failed", "exists_with_different_flags"]);
    expect(await w.submit(t, t, w.t({ debit_account_id: a, credit_account_id: b, amount: 1n }))).toEqual([
      "linked_event_failed",
      "exists",
      "linked_event_failed",
    ]);
    await w.expectBalances(a, bal(0n, 0n, 0n, 0n));
    const u = w.t({ debit_account_id: a, credit_account_id: b, amount: 1n, flags: L });
    const v = w.t({ debit_account_id: a, credit_account_id: b, amount: 2n });
    expect(await w.submit(u, v)).toEqual(["created", "created"]);
    expect(await w.submit(u, v)).toEqual(["exists", "linked_event_failed"]);
    await w.expectBalances(a, bal(0n, 3n, 0n, 0n));
  });

  it("a failed chain leaves later pending/closing effects out too (closing rolled back)", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    expect(
      await w.submit(
        w.t({ debit_account_id: a, credit_account_id: b, amount: 0n, flags: L | TransferFlags.pending | TransferFlags.closing_debit }),
        w.t({ debit_account_id: b, credit_account_id: b, amount: 1n }),
      ),
    ).toEqual(["linked_event_failed", "accounts_must_be_different"]);
    expect(await w.isClosed(a)).toBe(false);
    expect(await w.submit(w.t({ debit_account_id: a, credit_account_id: b, amount: 1n }))).toEqual(["created"]);
  });
});
