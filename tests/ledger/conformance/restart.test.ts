/**
 * What a client sees must not depend on the client (or, embedded, the process) being restarted:
 * balances, flags, transfers, idempotency (exists / id_already_failed), pending transfers and their
 * timeouts all survive. Also: results are capped at 8189 per query and page correctly.
 */
import { describe, expect, it } from "vitest";
import { AccountFlags, amount_max, TransferFlags } from "tigerbeetle-node";
import { accountFilter, bal, BATCH_MAX, eventually, queryFilter, U128_MAX } from "../../support/ledger-backend.js";
import { useBackend, World } from "./fixture.js";

const backend = useBackend();
const P = TransferFlags.pending;

describe("restart and large results", () => {
  it("state, idempotency and pending timeouts survive a restart", async () => {
    const w = new World(backend());
    const [wallet] = await w.accounts({ flags: AccountFlags.debits_must_not_exceed_credits | AccountFlags.history });
    const [a, b, big, sink] = await w.plain(4);
    await w.fund(wallet, 100n);
    const huge = w.t({ debit_account_id: big, credit_account_id: sink, amount: U128_MAX - 1n });
    const hold = w.t({ debit_account_id: wallet, credit_account_id: a, amount: 30n, flags: P, timeout: 1 });
    const keep = w.t({ debit_account_id: wallet, credit_account_id: a, amount: 20n, flags: P });
    const close = w.t({ debit_account_id: b, credit_account_id: a, amount: 0n, flags: P | TransferFlags.closing_debit });
    const failed = w.t({ debit_account_id: wallet, credit_account_id: a, amount: 1000n });
    expect(await w.submit(huge, hold, keep, close, failed)).toEqual(["created", "created", "created", "created", "exceeds_credits"]);
    const ids = [wallet, a, b, big, sink];
    const before = await w.b.client.lookupAccounts(ids);
    const transfersBefore = await w.b.client.lookupTransfers([huge.id, hold.id, keep.id, close.id]);
    const history = await w.b.client.getAccountBalances(accountFilter({ account_id: wallet }));

    await w.b.restart();

    expect(await w.b.client.lookupAccounts(ids)).toEqual(before);
    expect(await w.b.client.lookupTransfers([huge.id, hold.id, keep.id, close.id, failed.id])).toEqual(transfersBefore);
    expect(await w.b.client.getAccountBalances(accountFilter({ account_id: wallet }))).toEqual(history);
    expect(await w.submit(huge, { ...failed, amount: 1n })).toEqual(["exists", "id_already_failed"]);
    expect(await w.submit(w.t({ debit_account_id: b, credit_account_id: a, amount: 1n }))).toEqual(["debit_account_already_closed"]);

    // the timeout still runs after the restart
    await w.b.advanceTime(1.5);
    expect(await eventually(w.b, async () => (await w.balances(wallet)).debits_pending === 20n)).toBe(true);
    expect(
      await w.submit(
        w.t({ pending_id: hold.id, flags: TransferFlags.post_pending_transfer, amount: amount_max, ledger: 0, code: 0 }),
        w.t({ pending_id: keep.id, flags: TransferFlags.post_pending_transfer, amount: amount_max, ledger: 0, code: 0 }),
      ),
    ).toEqual(["pending_transfer_expired", "created"]);
    await w.expectBalances(wallet, bal(0n, 20n, 0n, 100n));

    await w.b.restart();
    await w.expectBalances(wallet, bal(0n, 20n, 0n, 100n));
    expect(await w.isClosed(b)).toBe(true);
  });

  it("queries return at most 8189 results and page by timestamp", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    const n = BATCH_MAX + 11;
    const events = Array.from({ length: n }, (_, i) => w.t({ debit_account_id: a, credit_account_id: b, amount: BigInt(i + 1) }));
    for (let i = 0; i < n; i += BATCH_MAX) {
      const results = await w.createTransfers(events.slice(i, i + BATCH_MAX));
      expect(results.every((r) => r.status === 0xffffffff)).toBe(true);
    }
    const first = await w.b.client.getAccountTransfers(accountFilter({ account_id: a }));
    expect(first).toHaveLength(BATCH_MAX);
    expect(first.map((t) => t.id)).toEqual(events.slice(0, BATCH_MAX).map((t) => t.id));
    const rest = await w.b.client.getAccountTransfers(accountFilter({ account_id: a, timestamp_min: first[BATCH_MAX - 1].timestamp + 1n }));
    expect(rest.map((t) => t.id)).toEqual(events.slice(BATCH_MAX).map((t) => t.id));
    const q = await w.b.client.queryTransfers(queryFilter({ ledger: w.ledger, flags: 1 }));
    expect(q).toHaveLength(BATCH_MAX);
    expect(q[0].id).toBe(events[n - 1].id);
    await w.expectBalances(a, bal(0n, (BigInt(n) * BigInt(n + 1)) / 2n, 0n, 0n));
  });
});
