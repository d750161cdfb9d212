/**
 * Imported accounts and transfers, per Account.flags.imported / Transfer.flags.imported in
 * docs/reference/account.md and docs/reference/transfer.md, and the imported_* results of
 * docs/reference/requests/create_accounts.md and create_transfers.md.
 */
import { describe, expect, it } from "vitest";
import { AccountFlags, QueryFilterFlags, TransferFlags } from "tigerbeetle-node";
import { account, bal, queryFilter } from "../../support/ledger-backend.js";
import { useBackend, World } from "./fixture.js";

const backend = useBackend();
const IA = AccountFlags.imported;
const IT = TransferFlags.imported;

/**
 * Let cluster time move past everything committed, and return the latest timestamp of any account
 * or transfer: imported timestamps must be after it and before the cluster clock.
 */
async function importWindow(w: World): Promise<bigint> {
  await w.b.advanceTime(1);
  const last = queryFilter({ limit: 1, flags: QueryFilterFlags.reversed });
  const [acc] = await w.b.client.queryAccounts(last);
  const [tr] = await w.b.client.queryTransfers(last);
  const a = acc?.timestamp ?? 0n;
  const t = tr?.timestamp ?? 0n;
  return (a > t ? a : t) + 1_000n;
}

describe("imported events", () => {
  it("imports accounts and transfers with their own timestamps", async () => {
    const w = new World(backend());
    const base = await importWindow(w);
    const a = account({ id: w.id(), ledger: w.ledger, flags: IA, timestamp: base + 1n });
    const b = account({ id: w.id(), ledger: w.ledger, flags: IA | AccountFlags.history, timestamp: base + 2n });
    expect(await w.submitAccounts(a, b)).toEqual(["created", "created"]);
    const t = w.t({ debit_account_id: a.id, credit_account_id: b.id, amount: 100n, flags: IT, timestamp: base + 3n });
    const p = w.t({ debit_account_id: a.id, credit_account_id: b.id, amount: 7n, flags: IT | TransferFlags.pending, timestamp: base + 4n });
    const post = w.t({ pending_id: p.id, amount: 5n, flags: IT | TransferFlags.post_pending_transfer, timestamp: base + 5n });
    const results = await w.createTransfers([t, p, post]);
    expect(results.map((r) => r.status)).toEqual([0xffffffff, 0xffffffff, 0xffffffff]);
    expect(await w.b.client.lookupAccounts([a.id, b.id])).toMatchObject([{ timestamp: base + 1n }, { timestamp: base + 2n }]);
    expect(await w.b.client.lookupTransfers([t.id, p.id, post.id])).toMatchObject([
      { timestamp: base + 3n },
      { timestamp: base + 4n },
      { timestamp: base + 5n },
    ]);
    await w.expectBalances(a.id, bal(0n, 105n, 0n, 0n));
    await w.expectBalances(b.id, bal(0n, 0n, 0n, 105n));
    // Events after the import get cluster timestamps, later than the imported ones.
    const after = w.t({ debit_account_id: a.id, credit_account_id: b.id, amount: 1n });
    expect(await w.submit(after)).toEqual(["created"]);
    expect((await w.transfer(after.id))?.timestamp).toBeGreaterThan(base + 5n);
  });

  it("a batch cannot mix imported and non-imported events: the first event decides", async () => {
    const w = new World(backend());
    const base = await importWindow(w);
    const imp = account({ id: w.id(), ledger: w.ledger, flags: IA, timestamp: base + 1n });
    const plain = account({ id: w.id(), ledger: w.ledger });
    expect(await w.submitAccounts(imp, plain)).toEqual(["created", "imported_event_expected"]);
    const plain2 = account({ id: w.id(), ledger: w.ledger });
    const imp2 = account({ id: w.id(), ledger: w.ledger, flags: IA, timestamp: base + 2n });
    expect(await w.submitAccounts(plain2, imp2)).toEqual(["created", "imported_event_not_expected"]);

    const base2 = await importWindow(w);
    const t1 = w.t({ debit_account_id: imp.id, credit_account_id: plain2.id, amount: 1n, flags: IT, timestamp: base2 + 1n });
    const t2 = w.t({ debit_account_id: imp.id, credit_account_id: plain2.id, amount: 2n });
    expect(await w.submit(t1, t2)).toEqual(["created", "imported_event_expected"]);
    const t3 = w.t({ debit_account_id: imp.id, credit_account_id: plain2.id, amount: 4n });
    const t4 = w.t({ debit_account_id: imp.id, credit_account_id: plain2.id, amount: 8n, flags: IT, timestamp: base2 + 2n });
    expect(await w.submit(t3, t4)).toEqual(["created", "imported_event_not_expected"]);
    await w.expectBalances(imp.id, bal(0n, 5n, 0n, 0n));
  });

  it("imported timestamps must be in range (0 < ts < 2^63) and not ahead of the cluster clock", async () => {
    const w = new World(backend());
    const base = await importWindow(w);
    const mk = (timestamp: bigint) => account({ id: w.id(), ledger: w.ledger, flags: IA, timestamp });
    expect(await w.submitAccounts(mk(0n), mk(1n << 63n), mk((1n << 64n) - 1n), mk((1n << 63n) - 1n), mk(base + 1n))).toEqual([
      "imported_event_timestamp_out_of_range",
      "imported_event_timestamp_out_of_range",
      "imported_event_timestamp_out_of_range",
      "imported_event_timestamp_must_not_advance",
      "created",
    ]);
    const [a, b] = await w.plain(2);
    const base2 = await importWindow(w);
    const mt = (timestamp: bigint) => w.t({ debit_account_id: a, credit_account_id: b, amount: 1n, flags: IT, timestamp });
    expect(await w.submit(mt(0n), mt(1n << 63n), mt(1n << 62n), mt(base2 + 1n))).toEqual([
      "imported_event_timestamp_out_of_range",
      "imported_event_timestamp_out_of_range",
      "imported_event_timestamp_must_not_advance",
      "created",
    ]);
    await w.expectBalances(a, bal(0n, 1n, 0n, 0n));
  });

  it("imported timestamps must not regress, nor reuse any object's timestamp", async () => {
    const w = new World(backend());
    const base = await importWindow(w);
    const a = account({ id: w.id(), ledger: w.ledger, flags: IA, timestamp: base + 10n });
    const b = account({ id: w.id(), ledger: w.ledger, flags: IA, timestamp: base + 20n });
    expect(await w.submitAccounts(a, b)).toEqual(["created", "created"]);
    expect(
      await w.submitAccounts(
        account({ id: w.id(), ledger: w.ledger, flags: IA, timestamp: base + 20n }),
        account({ id: w.id(), ledger: w.ledger, flags: IA, timestamp: base + 15n }),
        account({ id: w.id(), ledger: w.ledger, flags: IA, timestamp: base + 21n }),
      ),
    ).toEqual(["imported_event_timestamp_must_not_regress", "imported_event_timestamp_must_not_regress", "created"]);

    const t = (timestamp: bigint, amount = 1n) => w.t({ debit_account_id: a.id, credit_account_id: b.id, amount, flags: IT, timestamp });
    expect(await w.submit(t(base + 30n))).toEqual(["created"]);
    expect(
      await w.submit(
        t(base + 30n), // same timestamp as the last transfer (a new id)
        t(base + 25n), // before the last transfer
        t(base + 31n),
      ),
    ).toEqual(["imported_event_timestamp_must_not_regress", "imported_event_timestamp_must_not_regress", "created"]);
    // An account may not take a transfer's timestamp, nor a transfer an account's.
    expect(await w.submitAccounts(account({ id: w.id(), ledger: w.ledger, flags: IA, timestamp: base + 31n }))).toEqual([
      "imported_event_timestamp_must_not_regress",
    ]);
    expect(await w.submitAccounts(account({ id: w.id(), ledger: w.ledger, flags: IA, timestamp: base + 40n }))).toEqual(["created"]);
    expect(await w.submit(t(base + 40n), t(base + 41n))).toEqual(["imported_event_timestamp_must_not_regress", "created"]);
    await w.expectBalances(a.id, bal(0n, 3n, 0n, 0n));
  });

  it("an imported transfer must postdate both of its accounts and cannot have a timeout", async () => {
    const w = new World(backend());
    const base = await importWindow(w);
    const dr = account({ id: w.id(), ledger: w.ledger, flags: IA, timestamp: base + 10n });
    const cr = account({ id: w.id(), ledger: w.ledger, flags: IA, timestamp: base + 20n });
    expect(await w.submitAccounts(dr, cr)).toEqual(["created", "created"]);
    const t = (timestamp: bigint, extra = {}) =>
      w.t({ debit_account_id: dr.id, credit_account_id: cr.id, amount: 1n, flags: IT, timestamp, ...extra });
    expect(
      await w.submit(
        t(base + 5n),
        t(base + 15n),
        t(base + 25n, { flags: IT | TransferFlags.pending, timeout: 1 }),
        t(base + 26n, { flags: IT | TransferFlags.pending }),
      ),
    ).toEqual([
      "imported_event_timestamp_must_postdate_debit_account",
      "imported_event_timestamp_must_postdate_credit_account",
      "imported_event_timeout_must_be_zero",
      "created",
    ]);
    await w.expectBalances(dr.id, bal(1n, 0n, 0n, 0n));
  });

  it("re-importing the same events answers exists (idempotency before the timestamp checks)", async () => {
    const w = new World(backend());
    const base = await importWindow(w);
    const a = account({ id: w.id(), ledger: w.ledger, flags: IA | AccountFlags.linked, timestamp: base + 1n });
    const b = account({ id: w.id(), ledger: w.ledger, flags: IA, timestamp: base + 2n });
    expect(await w.submitAccounts(a, b)).toEqual(["created", "created"]);
    expect(await w.submitAccounts({ ...a, flags: IA }, b)).toEqual(["exists_with_different_flags", "exists"]);
    const t = w.t({ debit_account_id: a.id, credit_account_id: b.id, amount: 3n, flags: IT, timestamp: base + 3n });
    expect(await w.submit(t)).toEqual(["created"]);
    expect(await w.submit(t, { ...t, timestamp: base + 4n })).toEqual(["exists", "exists"]);
    await w.expectBalances(a.id, bal(0n, 3n, 0n, 0n));
  });

  it("an imported linked chain that fails leaves the last timestamp unchanged so it can be resubmitted", async () => {
    const w = new World(backend());
    const base = await importWindow(w);
    const a = account({ id: w.id(), ledger: w.ledger, flags: IA | AccountFlags.linked, timestamp: base + 1n });
    const bad = account({ id: w.id(), ledger: 0, flags: IA, timestamp: base + 2n });
    expect(await w.submitAccounts(a, bad)).toEqual(["linked_event_failed", "ledger_must_not_be_zero"]);
    expect(await w.submitAccounts(a, { ...bad, ledger: w.ledger })).toEqual(["created", "created"]);
  });
});
