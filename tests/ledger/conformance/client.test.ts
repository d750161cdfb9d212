/**
 * The client's own behaviour (tigerbeetle-node 0.17 Client): concurrent requests each get their
 * own results, and a destroyed client refuses requests with ERR_CLIENT_CLOSED.
 */
import { describe, expect, it } from "vitest";
import { AccountFlags, ErrorCodes, RequestError, TransferFlags } from "tigerbeetle-node";
import { account, bal, openBackend } from "../../support/ledger-backend.js";
import { useBackend, World } from "./fixture.js";

const backend = useBackend();

describe("client behaviour", () => {
  it("many concurrent requests: each gets the results for its own events, chains stay intact", async () => {
    const w = new World(backend());
    const [wallet] = await w.accounts({ flags: AccountFlags.debits_must_not_exceed_credits });
    const [sink, bank] = await w.plain(2);
    await w.fund(wallet, 50n);
    const requests = Array.from({ length: 100 }, (_, i) => {
      if (i % 10 === 9) {
        // a chain that must fail as a unit: it spends 1 and then fails
        return [
          w.t({ debit_account_id: bank, credit_account_id: sink, amount: 1n, flags: TransferFlags.linked }),
          w.t({ debit_account_id: sink, credit_account_id: sink, amount: 1n }),
        ];
      }
      return [w.t({ debit_account_id: wallet, credit_account_id: sink, amount: 1n })];
    });
    const results = await Promise.all(requests.map((events) => w.b.client.createTransfers(events)));
    let created = 0;
    results.forEach((r, i) => {
      expect(r).toHaveLength(requests[i].length);
      if (i % 10 === 9) expect(r.map((x) => x.status)).toEqual([1, 12]); // linked_event_failed, accounts_must_be_different
      else {
        expect([0xffffffff, 54]).toContain(r[0].status); // created or exceeds_credits
        if (r[0].status === 0xffffffff) created++;
      }
    });
    expect(created).toBe(50);
    await w.expectBalances(wallet, bal(0n, 50n, 0n, 50n));
    await w.expectBalances(sink, bal(0n, 0n, 0n, 50n));
    await w.expectBalances(bank, bal(0n, 0n, 0n, 0n));
  });

  it("concurrent requests never merge: an open chain fails alone, imported and plain requests stay apart", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    await w.b.advanceTime(1);
    const [lastA] = await w.b.client.lookupAccounts([b]);
    const requests: Array<() => Promise<string[]>> = [];
    for (let i = 0; i < 40; i++) {
      if (i % 4 === 0) {
        // ends with `linked`: must fail on its own
        requests.push(async () => w.submit(w.t({ debit_account_id: a, credit_account_id: b, amount: 1n, flags: TransferFlags.linked })));
      } else if (i === 2) {
        // one imported request among plain ones
        const acc = account({ id: w.id(), ledger: w.ledger, flags: AccountFlags.imported, timestamp: lastA.timestamp + 1n });
        requests.push(async () => w.submitAccounts(acc));
      } else {
        requests.push(async () => w.submit(w.t({ debit_account_id: a, credit_account_id: b, amount: 2n })));
      }
    }
    const results = await Promise.all(requests.map((f) => f()));
    results.forEach((r, i) => {
      if (i % 4 === 0) expect(r).toEqual(["linked_event_chain_open"]);
      else expect(r).toEqual(["created"]);
    });
    await w.expectBalances(a, bal(0n, 2n * 29n, 0n, 0n));
  });

  it("a destroyed client refuses requests with ERR_CLIENT_CLOSED; destroy is idempotent", async () => {
    const b = await openBackend();
    const client = b.client;
    const a = account({ id: b.uniqueId(), ledger: b.uniqueLedger() });
    expect((await client.createAccounts([a])).map((r) => r.status)).toEqual([0xffffffff]);
    client.destroy();
    client.destroy();
    for (const p of [client.lookupAccounts([a.id]), client.createAccounts([{ ...a, id: b.uniqueId() }])]) {
      const err = await p.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RequestError);
      expect((err as RequestError).code).toBe(ErrorCodes.ERR_CLIENT_CLOSED);
    }
    // A new client on the same backend (embedded: the same data directory) sees the account.
    await b.restart();
    expect((await b.client.lookupAccounts([a.id])).map((x) => x.id)).toEqual([a.id]);
    await b.close();
  });
});
