/**
 * Timestamps, per docs/coding/time.md and the `timestamp` fields of docs/reference/account.md and
 * transfer.md: assigned by the cluster in nanoseconds since the UNIX epoch, unique and strictly
 * increasing across accounts and transfers; every event of a batch gets its own.
 */
import { describe, expect, it } from "vitest";
import { CreateAccountStatus, QueryFilterFlags } from "tigerbeetle-node";
import { account, queryFilter, transferStatuses } from "../../support/ledger-backend.js";
import { useBackend, World } from "./fixture.js";

const backend = useBackend();

describe("timestamps", () => {
  it("are nanoseconds since the UNIX epoch", async () => {
    const w = new World(backend());
    const [a] = await w.plain(1);
    const ts = (await w.account(a)).timestamp;
    const wall_ns = BigInt(Date.now()) * 1_000_000n;
    const day_ns = 86_400n * 1_000_000_000n;
    expect(ts).toBeGreaterThan(wall_ns - day_ns);
    expect(ts).toBeLessThan(wall_ns + day_ns);
  });

  it("are unique and strictly increasing across accounts and transfers, batches and events", async () => {
    const w = new World(backend());
    const seen: bigint[] = [];
    for (let round = 0; round < 5; round++) {
      const accs = Array.from({ length: 3 }, () => account({ id: w.id(), ledger: w.ledger }));
      const ra = await w.createAccounts(accs);
      seen.push(...ra.map((r) => r.timestamp));
      const [x, y, z] = accs.map((a) => a.id);
      const trs = [
        w.t({ debit_account_id: x, credit_account_id: y, amount: 1n }),
        w.t({ debit_account_id: y, credit_account_id: z, amount: 1n }),
        w.t({ debit_account_id: z, credit_account_id: z, amount: 1n }), // fails, still gets a timestamp
        w.t({ debit_account_id: z, credit_account_id: x, amount: 1n }),
      ];
      const rt = await w.createTransfers(trs);
      expect(transferStatuses(rt)).toEqual(["created", "created", "accounts_must_be_different", "created"]);
      seen.push(...rt.map((r) => r.timestamp));
      // the stored objects carry the timestamps the results reported
      const stored = await w.b.client.lookupTransfers([trs[0].id, trs[3].id]);
      expect(stored.map((t) => t.timestamp)).toEqual([rt[0].timestamp, rt[3].timestamp]);
      expect((await w.b.client.lookupAccounts([x])).map((a) => a.timestamp)).toEqual([ra[0].timestamp]);
    }
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]);
  });

  it("query order (by timestamp) equals creation order", async () => {
    const w = new World(backend());
    const ids = await w.plain(5);
    const got = await w.b.client.queryAccounts(queryFilter({ ledger: w.ledger }));
    expect(got.map((a) => a.id)).toEqual(ids);
    const rev = await w.b.client.queryAccounts(queryFilter({ ledger: w.ledger, flags: QueryFilterFlags.reversed }));
    expect(rev.map((a) => a.id)).toEqual([...ids].reverse());
  });

  it("keep increasing when the cluster clock does not move (embedded) or moves (cluster)", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    const stamps: bigint[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await w.createTransfers([w.t({ debit_account_id: a, credit_account_id: b, amount: 1n })]);
      stamps.push(r[0].timestamp);
    }
    await w.b.advanceTime(0.01);
    const r = await w.createTransfers([w.t({ debit_account_id: a, credit_account_id: b, amount: 1n })]);
    stamps.push(r[0].timestamp);
    for (let i = 1; i < stamps.length; i++) expect(stamps[i]).toBeGreaterThan(stamps[i - 1]);
  });
  it("a result carries its event's own timestamp; only plain `exists` carries the original's", async () => {
    // state_machine.zig: an event's timestamp is its slot in the batch (consecutive within a batch);
    // `exists` answers with the existing object's timestamp, exists_with_different_* like any failure.
    const w = new World(backend());
    const acc = account({ id: w.id(), ledger: w.ledger, code: 10 });
    const [created] = await w.createAccounts([acc]);
    const fresh = account({ id: w.id(), ledger: w.ledger, code: 10 });
    const ra = await w.createAccounts([acc, { ...acc, code: 11 }, { ...acc, user_data_64: 5n }, fresh]);
    expect(ra.map((r) => r.status)).toEqual([CreateAccountStatus.exists, CreateAccountStatus.exists_with_different_code, CreateAccountStatus.exists_with_different_user_data_64, CreateAccountStatus.created]);
    expect(ra[0].timestamp).toBe(created.timestamp);
    expect(ra[1].timestamp).toBe(ra[3].timestamp - 2n);
    expect(ra[2].timestamp).toBe(ra[3].timestamp - 1n);
    expect(ra[1].timestamp).toBeGreaterThan(created.timestamp);

    const [x, y] = await w.plain(2);
    const t = w.t({ debit_account_id: x, credit_account_id: y, amount: 5n });
    const [first] = await w.createTransfers([t]);
    const u = w.t({ debit_account_id: y, credit_account_id: x, amount: 1n });
    const rt = await w.createTransfers([t, { ...t, amount: 6n }, { ...t, credit_account_id: x, debit_account_id: y }, u]);
    expect(transferStatuses(rt)).toEqual(["exists", "exists_with_different_amount", "exists_with_different_debit_account_id", "created"]);
    expect(rt[0].timestamp).toBe(first.timestamp);
    expect(rt[1].timestamp).toBe(rt[3].timestamp - 2n);
    expect(rt[2].timestamp).toBe(rt[3].timestamp - 1n);
    expect(rt[1].timestamp).toBeGreaterThan(first.timestamp);
  });
});
