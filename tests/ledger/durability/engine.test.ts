/**
 * The embedded engine through its Client: what survives a restart, what a damaged data directory
 * does, the directory lock, the client-side errors, and expiry driven by an injected clock.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  AccountFilterFlags,
  AccountFlags,
  CreateAccountStatus,
  CreateTransferStatus,
  ErrorCodes,
  QueryFilterFlags,
  RequestError,
  TransferFlags,
  amount_max,
  type Account,
  type AccountFilter,
  type Client,
  type QueryFilter,
  type Transfer,
} from "tigerbeetle-node";
import { BATCH_MAX, LedgerCorruptionError, createEmbeddedClient, type EmbeddedClient } from "../../../src/ledger/embedded/index.js";
import { newAccount, newTransfer } from "../../../src/domain/records.js";

const S = 1_000_000_000n;
let dir: string;
let now_ns: bigint;
const clock = (): bigint => now_ns;
const open = (extra: { snapshotMinLogBytes?: number; pulseIntervalMs?: number; dataDir?: string } = {}): EmbeddedClient =>
  createEmbeddedClient({ dataDir: dir, clock, ...extra });

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "engine-test-"));
  now_ns = 1_700_000_000n * S;
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function account(id: bigint, flags = AccountFlags.history): Account {
  return newAccount({ id, ledger: 1, code: 10, flags });
}
function transfer(id: bigint, debit: bigint, credit: bigint, amount: bigint, extra: Partial<Transfer> = {}): Transfer {
  return newTransfer({ id, debit_account_id: debit, credit_account_id: credit, amount, ledger: 1, code: 20, ...extra });
}
const all: QueryFilter = { user_data_128: 0n, user_data_64: 0n, user_data_32: 0, ledger: 0, code: 0, timestamp_min: 0n, timestamp_max: 0n, limit: BATCH_MAX, flags: QueryFilterFlags.none };
const of = (account_id: bigint, limit = BATCH_MAX): AccountFilter => ({ account_id, user_data_128: 0n, user_data_64: 0n, user_data_32: 0, code: 0, timestamp_min: 0n, timestamp_max: 0n, limit, flags: AccountFilterFlags.debits | AccountFilterFlags.credits });
const statuses = (r: { status: CreateTransferStatus }[]): string[] => r.map((x) => CreateTransferStatus[x.status]!);

/** Everything a client can observe, for comparing two engines or one engine across a restart. */
async function observe(c: Client, accountIds: bigint[]): Promise<unknown> {
  return {
    accounts: await c.queryAccounts(all),
    transfers: await c.queryTransfers(all),
    reversed: await c.queryTransfers({ ...all, flags: QueryFilterFlags.reversed, limit: 7 }),
    perAccount: await Promise.all(accountIds.map((id) => c.getAccountTransfers(of(id)))),
    balances: await Promise.all(accountIds.map((id) => c.getAccountBalances(of(id)))),
  };
}

/** A workload touching every kind of state: balances, linked chains, pending/posted/voided/expired, transient failures. */
async function workload(c: Client, step: (i: number) => Promise<void> = async () => {}): Promise<void> {
  expect((await c.createAccounts([account(1n), account(2n), account(3n, AccountFlags.history | AccountFlags.debits_must_not_exceed_credits)])).map((r) => CreateAccountStatus[r.status])).toEqual(["created", "created", "created"]);
  let id = 100n;
  for (let i = 0; i < 30; i++) {
    now_ns += S / 10n;
    await c.createTransfers([transfer(id++, 1n, 3n, 10n), transfer(id++, 3n, 2n, 4n, { flags: TransferFlags.linked }), transfer(id++, 2n, 1n, 1n)]);
    await step(i);
  }
  // A linked chain that fails as a whole, and a transient failure (exceeds_credits) to remember.
  expect(statuses(await c.createTransfers([transfer(900n, 1n, 2n, 5n, { flags: TransferFlags.linked }), transfer(901n, 3n, 1n, 1_000_000n)]))).toEqual(["linked_event_failed", "exceeds_credits"]);
  // Pending: one to expire, one to post partially, one to void.
  expect(statuses(await c.createTransfers([
    transfer(1000n, 1n, 2n, 50n, { flags: TransferFlags.pending, timeout: 5 }),
    transfer(1001n, 1n, 2n, 60n, { flags: TransferFlags.pending, timeout: 3600 }),
    transfer(1002n, 2n, 1n, 70n, { flags: TransferFlags.pending }),
  ]))).toEqual(["created", "created", "created"]);
  expect(statuses(await c.createTransfers([
    transfer(1003n, 0n, 0n, 25n, { pending_id: 1001n, flags: TransferFlags.post_pending_transfer }),
    transfer(1007n, 0n, 0n, amount_max, { pending_id: 1008n, flags: TransferFlags.post_pending_transfer }),
    transfer(1004n, 0n, 0n, 0n, { pending_id: 1002n, flags: TransferFlags.void_pending_transfer }),
  ]))).toEqual(["created", "pending_transfer_not_found", "created"]);
  now_ns += 6n * S; // 1000 is now past its deadline: the next operation expires it first
  await c.lookupAccounts([1n]);
}

describe("restart", () => {
  it("recovers accounts, transfers, balances, history, pending/expired state and remembered failures", async () => {
    const c = open();
    await workload(c);
    const before = await observe(c, [1n, 2n, 3n]);
    const a1 = (await c.lookupAccounts([1n]))[0]!;
    expect(a1.debits_pending).toBe(0n); // 1000 expired, 1001 posted, 1002 voided
    await c.close();

    const r = open();
    expect(r.stats().recovered_commits).toBeGreaterThan(30);
    expect(await observe(r, [1n, 2n, 3n])).toEqual(before);
    // Retries answer exactly as TigerBeetle would after the restart.
    expect(statuses(await r.createTransfers([
      transfer(100n, 1n, 3n, 10n),
      transfer(901n, 3n, 1n, 1_000_000n),
      transfer(1005n, 0n, 0n, 0n, { pending_id: 1000n, flags: TransferFlags.post_pending_transfer }),
      transfer(1006n, 0n, 0n, 0n, { pending_id: 1001n, flags: TransferFlags.void_pending_transfer }),
    ]))).toEqual(["exists", "id_already_failed", "pending_transfer_expired", "pending_transfer_already_posted"]);
    // New writes continue the timestamp sequence.
    const last = (await r.queryTransfers({ ...all, flags: QueryFilterFlags.reversed, limit: 1 }))[0]!;
    const next = await r.createTransfers([transfer(2000n, 1n, 2n, 1n)]);
    expect(next[0]!.timestamp).toBeGreaterThan(last.timestamp);
    await r.close();
  });

  it("a snapshot plus the log after it recovers exactly what a full log replay recovers", async () => {
    const plainDir = path.join(dir, "plain");
    const snapDir = path.join(dir, "snap");
    const start = now_ns;
    const plain = open({ dataDir: plainDir, snapshotMinLogBytes: 1 << 30 });
    await workload(plain);
    await plain.close();
    now_ns = start;
    const snapped = open({ dataDir: snapDir, snapshotMinLogBytes: 1 << 30 });
    await workload(snapped, async (i) => {
      if (i === 10 || i === 20) await snapped.snapshot();
    });
    expect(snapped.stats().snapshot_seq).toBeGreaterThan(0n);
    await snapped.close();
    // Old snapshots and log segments were rotated away.
    expect(fs.readdirSync(snapDir).filter((f) => f.endsWith(".snap")).length).toBe(1);

    const a = open({ dataDir: plainDir });
    const b = open({ dataDir: snapDir });
    expect(a.stats().snapshot_seq).toBe(0n);
    expect(b.stats().recovered_commits).toBeLessThan(a.stats().recovered_commits);
    expect(await observe(b, [1n, 2n, 3n])).toEqual(await observe(a, [1n, 2n, 3n]));
    await a.close();
    await b.close();
  });

  it.each([
    ["copied, while writes continue", 1 << 28],
    ["in place, while writes wait", 0],
  ])("takes snapshots on its own as the log grows (%s), and restarts from them", async (_mode, snapshotCopyMaxBytes) => {
    const c = createEmbeddedClient({ dataDir: dir, clock, snapshotMinLogBytes: 4096, snapshotCopyMaxBytes });
    await workload(c);
    const before = await observe(c, [1n, 2n, 3n]);
    // A copied snapshot is written while writes continue: wait for it rather than race it.
    await c.drain();
    expect(c.stats().snapshot_seq).toBeGreaterThan(0n);
    await c.close();
    const r = open();
    expect(await observe(r, [1n, 2n, 3n])).toEqual(before);
    await r.close();
  });
});

function lastSegment(): string {
  const segs = fs.readdirSync(dir).filter((f) => f.endsWith(".wal")).sort();
  return path.join(dir, segs.at(-1)!);
}

describe("damaged data directory", () => {
  it("cuts a torn tail (a crash in the middle of an append) and continues", async () => {
    const c = open();
    await c.createAccounts([account(1n), account(2n)]);
    await c.createTransfers([transfer(10n, 1n, 2n, 5n)]);
    const sizeBefore = fs.statSync(lastSegment()).size;
    // A batch spanning a page boundary: its chain, then filler transfers of 0.
    const filler = Array.from({ length: 40 }, (_, i) => transfer(100n + BigInt(i), 2n, 1n, 0n));
    await c.createTransfers([transfer(11n, 1n, 2n, 7n, { flags: TransferFlags.linked }), transfer(12n, 2n, 1n, 1n), ...filler]);
    await c.close();
    // Keep only the part of the last record before a page boundary, as a crash mid-write leaves it.
    fs.truncateSync(lastSegment(), (Math.floor(sizeBefore / 4096) + 1) * 4096);

    const r = open();
    expect(r.stats().torn_tail_truncated).toBe(true);
    expect((await r.lookupTransfers([10n, 11n, 12n])).map((t) => t.id)).toEqual([10n]);
    expect((await r.lookupAccounts([1n]))[0]!.debits_posted).toBe(5n);
    expect(statuses(await r.createTransfers([transfer(11n, 1n, 2n, 7n)]))).toEqual(["created"]);
    await r.close();
    const again = open();
    expect(again.stats().torn_tail_truncated).toBe(false);
    expect((await again.lookupAccounts([1n]))[0]!.debits_posted).toBe(12n);
    await again.close();
  });

  it("recovers from a crash in the middle of a snapshot (unfinished .tmp, lock of a dead process)", async () => {
    const c = open();
    await workload(c);
    const before = await observe(c, [1n, 2n, 3n]);
    await c.close();
    fs.writeFileSync(path.join(dir, "snapshot-00000000000000000099.snap.tmp"), Buffer.alloc(1000, 7));
    fs.writeFileSync(path.join(dir, "LOCK"), "pid 999999999 start 1\n");
    const r = open();
    expect(await observe(r, [1n, 2n, 3n])).toEqual(before);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    await r.close();
  });

  it("refuses to start when the log is damaged before its tail, naming the file and offset", async () => {
    const c = open();
    await c.createAccounts([account(1n), account(2n)]);
    for (let i = 0; i < 5; i++) await c.createTransfers([transfer(10n + BigInt(i), 1n, 2n, 5n)]);
    await c.close();
    const file = lastSegment();
    const bytes = fs.readFileSync(file);
    bytes[32 + 40 + 17] ^= 0x04; // inside the body of the first record (create_accounts), after the segment header
    fs.writeFileSync(file, bytes);
    expect(() => open()).toThrow(LedgerCorruptionError);
    expect(() => open()).toThrow(`${file} is corrupt at byte offset 32: complete record with a body checksum mismatch`);
    expect(fs.statSync(file).size).toBe(bytes.length); // nothing was cut
  });

  it("refuses to start when the snapshot is damaged", async () => {
    const c = open();
    await workload(c);
    await c.snapshot();
    await c.close();
    const snap = path.join(dir, fs.readdirSync(dir).find((f) => f.endsWith(".snap"))!);
    const bytes = fs.readFileSync(snap);
    bytes[Math.floor(bytes.length / 2)] ^= 0x20;
    fs.writeFileSync(snap, bytes);
    expect(() => open()).toThrow(new RegExp(`${snap.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} is corrupt at byte offset \\d+`));
  });

  it("refuses to start when log segments are missing", async () => {
    const c = open({ snapshotMinLogBytes: 1 << 30 });
    await c.createAccounts([account(1n), account(2n)]);
    await c.snapshot();
    await c.createTransfers([transfer(10n, 1n, 2n, 5n)]);
    await c.snapshot();
    await c.createTransfers([transfer(11n, 1n, 2n, 5n)]);
    await c.close();
    for (const f of fs.readdirSync(dir)) if (f.endsWith(".snap")) fs.rmSync(path.join(dir, f));
    expect(() => open()).toThrow(/missing: the data directory has no snapshot and the log starts at log-\d+\.wal/);
  });
});

describe("one process per data directory", () => {
  it("refuses a second open with the owner's pid, and allows it after close", async () => {
    const c = open();
    expect(() => open()).toThrow(`data directory ${dir} is in use by pid ${process.pid}`);
    await c.close();
    const again = open();
    again.destroy();
    open().destroy();
  });
});

describe("client-side errors, as tigerbeetle-node raises them", () => {
  it("rejects batches of more than 8189 events with ERR_TOO_MUCH_DATA, and accepts 8189", async () => {
    const c = open();
    await c.createAccounts([account(1n), account(2n)]);
    const many = (n: number): Transfer[] => Array.from({ length: n }, (_, i) => transfer(10n + BigInt(i), 1n, 2n, 1n));
    for (const call of [
      () => c.createTransfers(many(BATCH_MAX + 1)),
      () => c.createAccounts(Array.from({ length: BATCH_MAX + 1 }, (_, i) => account(100n + BigInt(i)))),
      () => c.lookupAccounts(Array.from({ length: BATCH_MAX + 1 }, (_, i) => BigInt(i + 1))),
      () => c.lookupTransfers(Array.from({ length: BATCH_MAX + 1 }, (_, i) => BigInt(i + 1))),
    ]) {
      const err = await call().then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(RequestError);
      expect((err as RequestError).code).toBe(ErrorCodes.ERR_TOO_MUCH_DATA);
    }
    expect(c.stats().transfers).toBe(0);
    const ok = await c.createTransfers(many(BATCH_MAX));
    expect(ok.every((r) => r.status === CreateTransferStatus.created)).toBe(true);
    await c.createTransfers([transfer(1_000_000n, 1n, 2n, 1n)]);
    // A filter asking for more results than one reply holds is refused before anything runs,
    // as tigerbeetle-node does; 8189 is served in full.
    for (const call of [
      () => c.getAccountTransfers(of(1n, BATCH_MAX + 1)),
      () => c.getAccountBalances(of(1n, 100_000)),
      () => c.queryTransfers({ ...all, limit: 0xffff_ffff }),
      () => c.queryAccounts({ ...all, limit: 10_000 }),
    ]) {
      const err = await call().then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(RequestError);
      expect((err as RequestError).code).toBe(ErrorCodes.ERR_TOO_MUCH_DATA);
    }
    expect((await c.getAccountTransfers(of(1n, BATCH_MAX))).length).toBe(BATCH_MAX);
    expect((await c.queryTransfers(all)).length).toBe(BATCH_MAX);
    expect((await c.getAccountBalances(of(1n))).length).toBe(BATCH_MAX); // account 1 keeps history
    await c.close();
  });

  it("rejects every call after destroy() with ERR_CLIENT_CLOSED", async () => {
    const c = open();
    await c.createAccounts([account(1n)]);
    c.destroy();
    for (const call of [() => c.createAccounts([account(2n)]), () => c.createTransfers([]), () => c.lookupAccounts([1n]), () => c.queryAccounts(all), () => c.getAccountTransfers(of(1n))]) {
      const err = await call().then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(RequestError);
      expect((err as RequestError).code).toBe(ErrorCodes.ERR_CLIENT_CLOSED);
    }
    const r = open();
    expect((await r.lookupAccounts([1n])).length).toBe(1);
    await r.close();
  });

  it("rejects malformed events with a TypeError naming the field, and logs nothing", async () => {
    const c = open();
    await c.createAccounts([account(1n), account(2n)]);
    const seq = c.stats().commit_seq;
    const bad = { ...transfer(10n, 1n, 2n, 1n), amount: 5 } as unknown as Transfer;
    // The messages are tigerbeetle-node's own.
    await expect(c.createTransfers([transfer(9n, 1n, 2n, 1n), bad])).rejects.toThrow(new TypeError("amount must be a BigInt"));
    await expect(c.createTransfers([{ ...transfer(11n, 1n, 2n, 1n), id: 1n << 128n }])).rejects.toThrow(new TypeError("id must fit in 128 bits"));
    await expect(c.createTransfers([{ ...transfer(11n, 1n, 2n, 1n), id: -1n }])).rejects.toThrow(new TypeError("id must be positive"));
    await expect(c.createAccounts([{ ...account(3n), code: 65536 }])).rejects.toThrow(new TypeError("code must be a u16."));
    await expect(c.createAccounts([{ ...account(3n), user_data_64: -1n }])).rejects.toThrow(new TypeError("user_data_64 must be an unsigned 64-bit BigInt"));
    await expect(c.createAccounts([{ ...account(3n), ledger: undefined } as unknown as Account])).rejects.toThrow(new TypeError("ledger must be defined"));
    // Stricter than the native binding, which would wrap -1 to 4294967295 silently.
    await expect(c.createAccounts([{ ...account(3n), ledger: -1 }])).rejects.toThrow(new TypeError("ledger must be a u32."));
    await expect(c.lookupAccounts(["1" as unknown as bigint])).rejects.toThrow(new TypeError("lookup must be a BigInt"));
    await expect(c.createTransfers({} as unknown as Transfer[])).rejects.toThrow(new TypeError("Batch must be an Array."));
    expect(c.stats().commit_seq).toBe(seq);
    expect((await c.lookupTransfers([9n])).length).toBe(0);
    await c.close();
  });
});

describe("durability and ordering of calls", () => {
  it("group-commits concurrent calls: many requests per fsync, each answered with its own results", async () => {
    const c = open();
    await c.createAccounts([account(1n), account(2n)]);
    const calls = Array.from({ length: 200 }, (_, i) => c.createTransfers([transfer(10n + BigInt(i), 1n, 2n, 1n), transfer(10n + BigInt(i), 1n, 2n, 1n)]));
    const results = await Promise.all(calls);
    for (const r of results) expect(statuses(r)).toEqual(["created", "exists"]);
    const s = c.stats();
    expect(s.flushes).toBeLessThan(s.flushed_requests);
    await c.close();
  });

  it("orders a read after the writes submitted before it, and answers it only once they are durable", async () => {
    const c = open();
    const order: string[] = [];
    const created = c.createAccounts([account(1n), account(2n)]).then((r) => {
      order.push("write");
      return r;
    });
    const seen = c.lookupAccounts([1n, 2n]).then((r) => {
      order.push("read");
      return r;
    });
    // A read issued while that write's flush is on its way to disk waits for it too.
    await new Promise((r) => setImmediate(r));
    const during = c.lookupAccounts([2n]).then((r) => {
      order.push("read during flush");
      return r;
    });
    expect((await seen).length).toBe(2);
    expect((await during).length).toBe(1);
    await created;
    expect(order).toEqual(["write", "read", "read during flush"]);
    await c.close();
  });
});

describe("expiry with an injected clock", () => {
  it("releases a pending transfer's funds at timestamp + timeout, before the next operation", async () => {
    const c = open();
    await c.createAccounts([account(1n), account(2n)]);
    const [res] = await c.createTransfers([transfer(10n, 1n, 2n, 40n, { flags: TransferFlags.pending, timeout: 10 })]);
    expect(res!.status).toBe(CreateTransferStatus.created);
    now_ns += 9n * S;
    expect((await c.lookupAccounts([1n]))[0]!.debits_pending).toBe(40n);
    now_ns += 2n * S;
    expect((await c.lookupAccounts([1n]))[0]!.debits_pending).toBe(0n);
    expect(statuses(await c.createTransfers([transfer(11n, 0n, 0n, 40n, { pending_id: 10n, flags: TransferFlags.post_pending_transfer })]))).toEqual(["pending_transfer_expired"]);
    await c.close();
    // The expiry is part of the log: a replay reaches the same state.
    const r = open();
    expect((await r.lookupAccounts([1n]))[0]!.debits_pending).toBe(0n);
    expect(r.stats().pending_open).toBe(0);
    await r.close();
  });

  it("expires pending transfers while idle (no calls), from its own timer", async () => {
    const c = open({ pulseIntervalMs: 5 });
    await c.createAccounts([account(1n), account(2n)]);
    await c.createTransfers([transfer(10n, 1n, 2n, 40n, { flags: TransferFlags.pending, timeout: 1 })]);
    expect(c.stats().pending_open).toBe(1);
    now_ns += 2n * S;
    for (let i = 0; i < 400 && c.stats().pending_open > 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(c.stats().pending_open).toBe(0);
    await c.close();
  });
});
