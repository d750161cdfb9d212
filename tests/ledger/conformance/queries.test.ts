/**
 * Lookups and queries, per docs/reference/requests/lookup_accounts.md, lookup_transfers.md,
 * get_account_transfers.md, get_account_balances.md, query_accounts.md, query_transfers.md,
 * docs/reference/account-filter.md, query-filter.md and account-balance.md.
 */
import { beforeAll, describe, expect, it } from "vitest";
import {
  AccountFilterFlags,
  AccountFlags,
  ErrorCodes,
  QueryFilterFlags,
  RequestError,
  TransferFlags,
  amount_max,
  type Account,
  type AccountFilter,
  type Transfer,
} from "tigerbeetle-node";
import { account, accountFilter, bal, BATCH_MAX, eventually, queryFilter, U128_MAX, U64_MAX, type Balances } from "../../support/ledger-backend.js";
import { useBackend, World } from "./fixture.js";

const backend = useBackend();
const D = AccountFilterFlags.debits;
const C = AccountFilterFlags.credits;
const R = AccountFilterFlags.reversed;
/** 2^63: the smallest u64 above the largest timestamp TigerBeetle can assign (2^63-1). */
const TS_INVALID_LOW = 1n << 63n;

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => null,
    (e: unknown) => e,
  );
}

function rand64(): bigint {
  return BigInt.asUintN(64, BigInt(Math.floor(Math.random() * 2 ** 52)) * 4096n + 1n);
}
function rand32(): number {
  return 1 + Math.floor(Math.random() * 0xfffffff0);
}

describe("lookup_accounts / lookup_transfers", () => {
  it("returns found objects in request order and omits missing ids", async () => {
    const w = new World(backend());
    const [a, b, c] = await w.plain(3);
    const missing = w.id();
    const found = await w.b.client.lookupAccounts([c, missing, a, 0n, U128_MAX, b]);
    expect(found.map((x) => x.id)).toEqual([c, a, b]);
    expect(await w.b.client.lookupAccounts([])).toEqual([]);
    expect(await w.b.client.lookupAccounts([missing])).toEqual([]);

    const t1 = w.t({ debit_account_id: a, credit_account_id: b, amount: 1n });
    const t2 = w.t({ debit_account_id: b, credit_account_id: c, amount: 2n });
    expect(await w.submit(t1, t2)).toEqual(["created", "created"]);
    const transfers = await w.b.client.lookupTransfers([t2.id, missing, t1.id]);
    expect(transfers.map((x) => x.id)).toEqual([t2.id, t1.id]);
    expect(transfers[0]).toMatchObject({ debit_account_id: b, credit_account_id: c, amount: 2n, ledger: w.ledger });
    expect(await w.b.client.lookupTransfers([])).toEqual([]);
  });

  it("8189 ids per lookup; 8190 is refused by the client with ERR_TOO_MUCH_DATA", async () => {
    const w = new World(backend());
    const [a] = await w.plain(1);
    const ids = Array.from({ length: BATCH_MAX }, (_, i) => (i === 100 ? a : w.id()));
    expect((await w.b.client.lookupAccounts(ids)).map((x) => x.id)).toEqual([a]);
    expect(await w.b.client.lookupTransfers(ids)).toEqual([]);
    for (const p of [w.b.client.lookupAccounts([...ids, a]), w.b.client.lookupTransfers([...ids, a])]) {
      const err = await rejection(p);
      expect(err).toBeInstanceOf(RequestError);
      expect((err as RequestError).code).toBe(ErrorCodes.ERR_TOO_MUCH_DATA);
    }
  });
});

describe("get_account_transfers / get_account_balances", () => {
  let w: World;
  let A: bigint;
  let B: bigint;
  let X: bigint;
  let t: Transfer[];
  let ts: bigint[];
  /** A's balances after each of its transfers, in order. */
  let aBalances: Balances[];
  const ids = (list: Transfer[]) => list.map((x) => x.id);

  beforeAll(async () => {
    w = new World(backend());
    [A] = await w.accounts({ flags: AccountFlags.history });
    [B, X] = await w.plain(2);
    const pend = w.t({ debit_account_id: A, credit_account_id: B, amount: 6n, code: 10, user_data_128: 102n, user_data_64: 202n, user_data_32: 302, flags: TransferFlags.pending });
    t = [
      w.t({ debit_account_id: A, credit_account_id: B, amount: 1n, code: 10, user_data_128: 100n, user_data_64: 200n, user_data_32: 300 }),
      w.t({ debit_account_id: B, credit_account_id: A, amount: 2n, code: 20, user_data_128: 100n, user_data_64: 201n, user_data_32: 300 }),
      w.t({ debit_account_id: A, credit_account_id: X, amount: 3n, code: 10, user_data_128: 101n, user_data_64: 200n, user_data_32: 301 }),
      w.t({ debit_account_id: X, credit_account_id: A, amount: 4n, code: 20, user_data_128: 101n, user_data_64: 201n, user_data_32: 301 }),
      w.t({ debit_account_id: B, credit_account_id: X, amount: 5n, code: 10, user_data_128: 100n, user_data_64: 200n, user_data_32: 300 }),
      pend,
      w.t({ pending_id: pend.id, amount: amount_max, flags: TransferFlags.post_pending_transfer, ledger: 0, code: 0 }),
    ];
    const results = await w.createTransfers(t);
    expect(results.map((r) => r.status)).toEqual(t.map(() => 0xffffffff));
    ts = results.map((r) => r.timestamp);
    aBalances = [bal(0n, 1n, 0n, 0n), bal(0n, 1n, 0n, 2n), bal(0n, 4n, 0n, 2n), bal(0n, 4n, 0n, 6n), bal(6n, 4n, 0n, 6n), bal(0n, 10n, 0n, 6n)];
  });

  const get = (f: Partial<AccountFilter>) => w.b.client.getAccountTransfers(accountFilter({ account_id: A, ...f }));
  const balances = (f: Partial<AccountFilter>) => w.b.client.getAccountBalances(accountFilter({ account_id: A, ...f }));

  it("debits, credits or both, in timestamp order; reversed", async () => {
    const [t0, t1, t2, t3, , t5, t6] = t;
    expect(ids(await get({}))).toEqual(ids([t0, t1, t2, t3, t5, t6]));
    expect(ids(await get({ flags: D }))).toEqual(ids([t0, t2, t5, t6]));
    expect(ids(await get({ flags: C }))).toEqual(ids([t1, t3]));
    expect(ids(await get({ flags: D | C | R }))).toEqual(ids([t6, t5, t3, t2, t1, t0]));
    expect(ids(await get({ flags: C | R }))).toEqual(ids([t3, t1]));
    const all = await get({});
    expect(all.map((x) => x.timestamp)).toEqual([ts[0], ts[1], ts[2], ts[3], ts[5], ts[6]]);
    expect(all[5]).toMatchObject({ amount: 6n, code: 10, user_data_128: 102n, debit_account_id: A, credit_account_id: B });
  });

  it("limit, timestamp_min and timestamp_max (inclusive), and paging with a timestamp cursor", async () => {
    const [t0, t1, t2, t3, , t5, t6] = t;
    expect(ids(await get({ limit: 2 }))).toEqual(ids([t0, t1]));
    expect(ids(await get({ limit: 2, flags: D | C | R }))).toEqual(ids([t6, t5]));
    expect(ids(await get({ timestamp_min: ts[2] }))).toEqual(ids([t2, t3, t5, t6]));
    expect(ids(await get({ timestamp_max: ts[3] }))).toEqual(ids([t0, t1, t2, t3]));
    expect(ids(await get({ timestamp_min: ts[1], timestamp_max: ts[3] }))).toEqual(ids([t1, t2, t3]));
    expect(ids(await get({ timestamp_min: ts[1], timestamp_max: ts[3], flags: D | C | R }))).toEqual(ids([t3, t2, t1]));
    expect(ids(await get({ timestamp_min: ts[4], timestamp_max: ts[4] }))).toEqual([]);
    expect(ids(await get({ timestamp_min: ts[2], timestamp_max: ts[2] }))).toEqual(ids([t2]));
    expect(ids(await get({ timestamp_min: ts[6] + 1n }))).toEqual([]);
    const pages: bigint[] = [];
    let cursor = 0n;
    for (;;) {
      const page = await get({ limit: 4, timestamp_min: cursor });
      pages.push(...ids(page));
      if (page.length < 4) break;
      cursor = page[page.length - 1].timestamp + 1n;
    }
    expect(pages).toEqual(ids([t0, t1, t2, t3, t5, t6]));
  });

  it("user_data_128 / user_data_64 / user_data_32 / code filters, combined with AND", async () => {
    const [t0, t1, t2, t3, , t5, t6] = t;
    expect(ids(await get({ code: 10 }))).toEqual(ids([t0, t2, t5, t6]));
    expect(ids(await get({ code: 20 }))).toEqual(ids([t1, t3]));
    expect(ids(await get({ user_data_128: 100n }))).toEqual(ids([t0, t1]));
    expect(ids(await get({ user_data_128: 102n }))).toEqual(ids([t5, t6]));
    expect(ids(await get({ user_data_64: 200n }))).toEqual(ids([t0, t2]));
    expect(ids(await get({ user_data_32: 301 }))).toEqual(ids([t2, t3]));
    expect(ids(await get({ code: 10, user_data_128: 100n }))).toEqual(ids([t0]));
    expect(ids(await get({ code: 20, user_data_64: 201n, user_data_32: 301, flags: C }))).toEqual(ids([t3]));
    expect(ids(await get({ code: 20, flags: D }))).toEqual([]);
    expect(ids(await get({ user_data_128: 999n }))).toEqual([]);
  });

  it("invalid filters return nothing", async () => {
    const invalid: Array<Partial<AccountFilter>> = [
      { account_id: 0n },
      { account_id: U128_MAX },
      { timestamp_min: U64_MAX },
      { timestamp_max: U64_MAX },
      // A bound outside 1..2^63-1 (other than 0) is invalid, not "no match" (state_machine.zig).
      { timestamp_min: TS_INVALID_LOW },
      { timestamp_max: TS_INVALID_LOW },
      { timestamp_min: U64_MAX - 1n },
      { timestamp_max: U64_MAX - 1n },
      { timestamp_min: ts[0], timestamp_max: TS_INVALID_LOW },
      { timestamp_min: ts[3], timestamp_max: ts[1] },
      { limit: 0 },
      { flags: AccountFilterFlags.none },
      { flags: AccountFilterFlags.reversed },
      { flags: 0xffff },
      { flags: D | C | (1 << 5) },
    ];
    for (const f of invalid) {
      expect(await get(f)).toEqual([]);
      expect(await balances(f)).toEqual([]);
    }
    expect(await get({ account_id: w.id() })).toEqual([]);
  });

  it("a limit larger than 8189 is refused by the client with ERR_TOO_MUCH_DATA", async () => {
    for (const p of [get({ limit: 10_000 }), balances({ limit: 10_000 })]) {
      const err = await rejection(p);
      expect(err).toBeInstanceOf(RequestError);
      expect((err as RequestError).code).toBe(ErrorCodes.ERR_TOO_MUCH_DATA);
    }
    expect(await get({ limit: BATCH_MAX })).toHaveLength(6);
  });

  it("get_account_balances: the account's balances after each matching transfer (history accounts only)", async () => {
    const all = await balances({});
    expect(all.map((x) => x.timestamp)).toEqual([ts[0], ts[1], ts[2], ts[3], ts[5], ts[6]]);
    expect(all.map((x) => ({ debits_pending: x.debits_pending, debits_posted: x.debits_posted, credits_pending: x.credits_pending, credits_posted: x.credits_posted }))).toEqual(aBalances);
    const rev = await balances({ flags: D | C | R, limit: 2 });
    expect(rev.map((x) => x.timestamp)).toEqual([ts[6], ts[5]]);
    const credits = await balances({ flags: C });
    expect(credits.map((x) => x.timestamp)).toEqual([ts[1], ts[3]]);
    expect(credits[1]).toMatchObject(aBalances[3]);
    const byCode = await balances({ code: 10, timestamp_min: ts[2] });
    expect(byCode.map((x) => x.timestamp)).toEqual([ts[2], ts[5], ts[6]]);
    // B has no history flag: no balances, but its transfers are still listed.
    expect(await w.b.client.getAccountBalances(accountFilter({ account_id: B }))).toEqual([]);
    expect(await w.b.client.getAccountTransfers(accountFilter({ account_id: B }))).toHaveLength(5);
    // the latest balance equals the account
    const [acc] = await w.b.client.lookupAccounts([A]);
    expect(aBalances[5]).toEqual({ debits_pending: acc.debits_pending, debits_posted: acc.debits_posted, credits_pending: acc.credits_pending, credits_posted: acc.credits_posted });
  });
});

describe("query_accounts / query_transfers", () => {
  let w: World;
  let accs: Account[];
  let accTs: bigint[];
  let trs: Transfer[];
  let trTs: bigint[];
  const tag128 = { a: 0n, b: 0n };
  const tag64 = rand64();
  const tag32 = rand32();

  beforeAll(async () => {
    w = new World(backend());
    tag128.a = w.id();
    tag128.b = w.id();
    accs = [
      account({ id: w.id(), ledger: w.ledger, code: 1, user_data_128: tag128.a, user_data_64: tag64, user_data_32: tag32 }),
      account({ id: w.id(), ledger: w.ledger, code: 2, user_data_128: tag128.a, user_data_64: tag64 }),
      account({ id: w.id(), ledger: w.ledger, code: 1, user_data_128: tag128.b, user_data_32: tag32 }),
      account({ id: w.id(), ledger: w.ledger, code: 2, user_data_128: tag128.b, user_data_64: tag64, user_data_32: tag32 }),
    ];
    const r = await w.createAccounts(accs);
    expect(r.map((x) => x.status)).toEqual(accs.map(() => 0xffffffff));
    accTs = r.map((x) => x.timestamp);
    const [a0, a1, a2, a3] = accs.map((x) => x.id);
    trs = [
      w.t({ debit_account_id: a0, credit_account_id: a1, amount: 1n, code: 5, user_data_128: tag128.a, user_data_64: tag64 }),
      w.t({ debit_account_id: a1, credit_account_id: a2, amount: 2n, code: 6, user_data_128: tag128.a, user_data_32: tag32 }),
      w.t({ debit_account_id: a2, credit_account_id: a3, amount: 3n, code: 5, user_data_128: tag128.b, user_data_64: tag64, user_data_32: tag32 }),
      w.t({ debit_account_id: a3, credit_account_id: a0, amount: 4n, code: 6, user_data_128: tag128.b }),
    ];
    const rt = await w.createTransfers(trs);
    expect(rt.map((x) => x.status)).toEqual(trs.map(() => 0xffffffff));
    trTs = rt.map((x) => x.timestamp);
  });

  const qa = (f: Parameters<typeof queryFilter>[0]) => w.b.client.queryAccounts(queryFilter(f));
  const qt = (f: Parameters<typeof queryFilter>[0]) => w.b.client.queryTransfers(queryFilter(f));
  const aid = (list: Account[]) => list.map((x) => x.id);
  const tid = (list: Transfer[]) => list.map((x) => x.id);

  it("query_accounts by each field and by combinations (AND), in timestamp order", async () => {
    const [a0, a1, a2, a3] = accs;
    expect(aid(await qa({ ledger: w.ledger }))).toEqual(aid([a0, a1, a2, a3]));
    expect(aid(await qa({ user_data_128: tag128.a }))).toEqual(aid([a0, a1]));
    expect(aid(await qa({ ledger: w.ledger, user_data_64: tag64 }))).toEqual(aid([a0, a1, a3]));
    expect(aid(await qa({ ledger: w.ledger, user_data_32: tag32 }))).toEqual(aid([a0, a2, a3]));
    expect(aid(await qa({ ledger: w.ledger, code: 2 }))).toEqual(aid([a1, a3]));
    expect(aid(await qa({ user_data_128: tag128.b, code: 1 }))).toEqual(aid([a2]));
    expect(aid(await qa({ user_data_128: tag128.b, user_data_64: tag64, user_data_32: tag32, ledger: w.ledger, code: 2 }))).toEqual(aid([a3]));
    expect(aid(await qa({ user_data_128: tag128.a, ledger: w.ledger + 1 }))).toEqual([]);
    expect((await qa({ user_data_128: tag128.a }))[0]).toEqual({ ...a0, debits_posted: 1n, credits_posted: 4n, timestamp: accTs[0] });
  });

  it("query_accounts: reversed, limit, timestamp range", async () => {
    const [a0, a1, a2, a3] = accs;
    expect(aid(await qa({ ledger: w.ledger, flags: QueryFilterFlags.reversed }))).toEqual(aid([a3, a2, a1, a0]));
    expect(aid(await qa({ ledger: w.ledger, limit: 3 }))).toEqual(aid([a0, a1, a2]));
    expect(aid(await qa({ ledger: w.ledger, limit: 1, flags: QueryFilterFlags.reversed }))).toEqual(aid([a3]));
    expect(aid(await qa({ ledger: w.ledger, timestamp_min: accTs[1], timestamp_max: accTs[2] }))).toEqual(aid([a1, a2]));
    expect(aid(await qa({ timestamp_min: accTs[1], timestamp_max: accTs[2] }))).toEqual(aid([a1, a2]));
    expect(aid(await qa({ ledger: w.ledger, timestamp_min: accTs[3] + 1n }))).toEqual([]);
  });

  it("query_transfers by each field, combinations, reversed, limit, timestamp range", async () => {
    const [t0, t1, t2, t3] = trs;
    expect(tid(await qt({ ledger: w.ledger }))).toEqual(tid([t0, t1, t2, t3]));
    expect(tid(await qt({ user_data_128: tag128.a }))).toEqual(tid([t0, t1]));
    expect(tid(await qt({ ledger: w.ledger, user_data_64: tag64 }))).toEqual(tid([t0, t2]));
    expect(tid(await qt({ ledger: w.ledger, user_data_32: tag32 }))).toEqual(tid([t1, t2]));
    expect(tid(await qt({ ledger: w.ledger, code: 6 }))).toEqual(tid([t1, t3]));
    expect(tid(await qt({ user_data_128: tag128.b, code: 5, user_data_64: tag64, user_data_32: tag32 }))).toEqual(tid([t2]));
    expect(tid(await qt({ ledger: w.ledger, flags: QueryFilterFlags.reversed, limit: 3 }))).toEqual(tid([t3, t2, t1]));
    expect(tid(await qt({ timestamp_min: trTs[1], timestamp_max: trTs[2] }))).toEqual(tid([t1, t2]));
    expect(tid(await qt({ ledger: w.ledger, timestamp_max: trTs[0] }))).toEqual(tid([t0]));
    const got = await qt({ user_data_128: tag128.b, code: 6 });
    expect(got).toEqual([{ ...t3, timestamp: trTs[3] }]);
  });

  it("invalid query filters return nothing; a limit over 8189 is refused with ERR_TOO_MUCH_DATA", async () => {
    const invalid = [
      { ledger: w.ledger, timestamp_min: U64_MAX },
      { ledger: w.ledger, timestamp_max: U64_MAX },
      { ledger: w.ledger, timestamp_min: TS_INVALID_LOW },
      { ledger: w.ledger, timestamp_max: TS_INVALID_LOW },
      { ledger: w.ledger, timestamp_min: U64_MAX - 1n },
      { ledger: w.ledger, timestamp_max: U64_MAX - 1n },
      { ledger: w.ledger, timestamp_min: accTs[0], timestamp_max: TS_INVALID_LOW },
      { ledger: w.ledger, timestamp_min: accTs[3], timestamp_max: accTs[0] },
      { ledger: w.ledger, limit: 0 },
      { ledger: w.ledger, flags: 0xffff },
      { ledger: w.ledger, flags: 2 },
    ];
    for (const f of invalid) {
      expect(await qa(f)).toEqual([]);
      expect(await qt(f)).toEqual([]);
    }
    for (const p of [qa({ ledger: w.ledger, limit: 10_000 }), qt({ ledger: w.ledger, limit: 10_000 })]) {
      const err = await rejection(p);
      expect(err).toBeInstanceOf(RequestError);
      expect((err as RequestError).code).toBe(ErrorCodes.ERR_TOO_MUCH_DATA);
    }
  });
});

describe("get_account_balances over a long history", () => {
  it("every entry equals the running balance, through pending, post, void and expiry", async () => {
    const w = new World(backend());
    const [h] = await w.accounts({ flags: AccountFlags.history });
    const [x] = await w.plain(1);
    type Bal = { debits_pending: bigint; debits_posted: bigint; credits_pending: bigint; credits_posted: bigint };
    const run: Bal = { debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n };
    const expected: Array<Bal & { timestamp: bigint }> = [];
    const open: Array<{ id: bigint; amount: bigint; debit: boolean }> = [];
    const P = TransferFlags.pending;
    for (let i = 0; i < 120; i++) {
      const amount = BigInt((i * 7919) % 97);
      const debit = i % 3 === 0;
      let t: Transfer;
      if (i % 5 === 1) {
        t = w.t({ debit_account_id: debit ? h : x, credit_account_id: debit ? x : h, amount, flags: P });
      } else if (i % 5 === 3 && open.length > 0) {
        const p = open.shift()!;
        const post = i % 2 === 1;
        t = w.t({ pending_id: p.id, amount: post ? amount_max : 0n, ledger: 0, code: 0, flags: post ? TransferFlags.post_pending_transfer : TransferFlags.void_pending_transfer });
        if (p.debit) run.debits_pending -= p.amount;
        else run.credits_pending -= p.amount;
        if (post && p.debit) run.debits_posted += p.amount;
        if (post && !p.debit) run.credits_posted += p.amount;
      } else {
        t = w.t({ debit_account_id: debit ? h : x, credit_account_id: debit ? x : h, amount });
      }
      const [r] = await w.createTransfers([t]);
      expect(r.status).toBe(0xffffffff);
      if (t.flags === P) {
        open.push({ id: t.id, amount, debit });
        if (debit) run.debits_pending += amount;
        else run.credits_pending += amount;
      } else if (t.pending_id === 0n) {
        if (debit) run.debits_posted += amount;
        else run.credits_posted += amount;
      }
      expected.push({ ...run, timestamp: r.timestamp });
    }
    // One more pending that expires: the balance changes without a transfer, so no entry for it,
    // but the next transfer's entry shows the released balance.
    const exp = w.t({ debit_account_id: h, credit_account_id: x, amount: 5n, flags: P, timeout: 1 });
    const [re] = await w.createTransfers([exp]);
    expected.push({ ...run, debits_pending: run.debits_pending + 5n, timestamp: re.timestamp });
    await w.b.advanceTime(1.5);
    expect(await eventually(w.b, async () => (await w.balances(h)).debits_pending === run.debits_pending)).toBe(true);
    const last = w.t({ debit_account_id: x, credit_account_id: h, amount: 1n });
    const [rl] = await w.createTransfers([last]);
    run.credits_posted += 1n;
    expected.push({ ...run, timestamp: rl.timestamp });

    const all = await w.b.client.getAccountBalances(accountFilter({ account_id: h }));
    expect(all).toEqual(expected);
    expect(await w.balances(h)).toEqual({ debits_pending: run.debits_pending, debits_posted: run.debits_posted, credits_pending: run.credits_pending, credits_posted: run.credits_posted });
    const some = await w.b.client.getAccountBalances(accountFilter({ account_id: h, flags: AccountFilterFlags.credits | AccountFilterFlags.reversed, limit: 7, timestamp_max: expected[100].timestamp }));
    const creditTs = new Set((await w.b.client.getAccountTransfers(accountFilter({ account_id: h, flags: AccountFilterFlags.credits }))).map((t) => t.timestamp));
    expect(some).toEqual(expected.filter((e) => creditTs.has(e.timestamp) && e.timestamp <= expected[100].timestamp).reverse().slice(0, 7));
  });
});

