/**
 * The ledger backend the conformance suite and the model test run against.
 *
 * Default: the embedded engine (src/ledger/embedded) in a fresh temporary data directory, with an
 * injected clock that only moves when a test calls `advanceTime` (so expiry is tested without
 * sleeping). With `TB_ADDRESSES` set: a real TigerBeetle cluster through tigerbeetle-node
 * (`TB_CLUSTER_ID`, default 0). The cluster is not reset between runs, so every id, ledger and
 * user_data value a test uses comes from `uniqueId()` / `uniqueLedger()`, and `advanceTime` really
 * sleeps. With `LEDGER_CONFORMANCE_COALESCE=1` every client is wrapped in the daemon's request
 * coalescer (src/ledger/coalescer.ts), to check that coalescing never changes an answer.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import {
  AccountFilterFlags,
  AccountFlags,
  createClient,
  CreateAccountStatus,
  CreateTransferStatus,
  QueryFilterFlags,
  type Account,
  type AccountFilter,
  type Client,
  type QueryFilter,
  type Transfer,
} from "tigerbeetle-node";
import { createEmbeddedClient, type EmbeddedClient } from "../../src/ledger/embedded/index.js";
import { createCoalescedClient } from "../../src/ledger/coalescer.js";
import { newAccount, newTransfer } from "../../src/domain/records.js";

const wrap = (c: Client): Client => (process.env.LEDGER_CONFORMANCE_COALESCE === "1" ? createCoalescedClient(c) : c);

export type BackendKind = "embedded" | "tigerbeetle";

export interface Backend {
  readonly kind: BackendKind;
  /** The current client (a new object after `restart()`). */
  readonly client: Client;
  /** Move cluster time forward: the embedded clock jumps, a real cluster is waited for. */
  advanceTime(seconds: number): Promise<void>;
  /** The cluster clock as the backend sees it (embedded: exact; real cluster: local wall clock). */
  nowNs(): bigint;
  /** Give background work (expiry pulses) a chance to run; does not move the embedded clock. */
  settle(): Promise<void>;
  /** A fresh, never used 128-bit id (never 0 or 2^128-1). */
  uniqueId(): bigint;
  /** A fresh ledger number (u32, nonzero), so queries by ledger only see this test's objects. */
  uniqueLedger(): number;
  /** Embedded: write a snapshot now (later restarts restore it, then replay the log). Real cluster: nothing. */
  checkpoint(): Promise<void>;
  /** Embedded: destroy the client and reopen the same data directory. Real cluster: reconnect. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export const BATCH_MAX = 8189;
export const U64_MAX = (1n << 64n) - 1n;
export const U128_MAX = (1n << 128n) - 1n;
export const NS_PER_S = 1_000_000_000n;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Ids: random high bits per process run, a counter in the low bits: unique across runs. */
function idSource(): { uniqueId: () => bigint; uniqueLedger: () => number } {
  const prefix = BigInt(`0x${randomBytes(10).toString("hex")}`) | 1n; // 80 random bits, nonzero
  let counter = 0n;
  // Ledgers: a random u32 region per run so a real cluster's old data never shows up in queries.
  let ledger = 1_000 + (randomBytes(4).readUInt32BE(0) % 2_000_000_000);
  return {
    uniqueId: () => {
      counter += 1n;
      return (prefix << 48n) | counter;
    },
    uniqueLedger: () => {
      ledger += 1;
      return ledger;
    },
  };
}

interface Closable {
  close(): Promise<void> | void;
}
function hasClose(x: object): x is Closable {
  return "close" in x && typeof (x as { close: unknown }).close === "function";
}

async function disposeClient(client: Client): Promise<void> {
  if (hasClose(client)) await client.close();
  else client.destroy();
}

export interface BackendOptions {
  /** Embedded only: snapshot once this much log accumulated (small values exercise snapshots). */
  snapshotMinLogBytes?: number;
}

export async function openBackend(options: BackendOptions = {}): Promise<Backend> {
  const ids = idSource();
  const addresses = process.env.TB_ADDRESSES;
  if (addresses !== undefined && addresses.trim() !== "") {
    const args = {
      cluster_id: BigInt(process.env.TB_CLUSTER_ID ?? "0"),
      replica_addresses: addresses.split(",").map((a) => a.trim()),
    };
    let client = createClient(args);
    let outer = wrap(client);
    return {
      kind: "tigerbeetle",
      get client() {
        return outer;
      },
      // A real cluster assigns timestamps from its own clock: wait, plus a margin for the pulse.
      advanceTime: (seconds) => sleep(Math.ceil(seconds * 1000) + 50),
      nowNs: () => BigInt(Date.now()) * 1_000_000n,
      settle: () => sleep(100),
      checkpoint: async () => undefined,
      uniqueId: ids.uniqueId,
      uniqueLedger: ids.uniqueLedger,
      restart: async () => {
        client.destroy();
        client = createClient(args);
        outer = wrap(client);
      },
      close: async () => client.destroy(),
    };
  }

  const dataDir = await mkdtemp(join(tmpdir(), "ledger-conformance-"));
  // Start at the real wall clock (nanoseconds) so timestamps look like TigerBeetle's.
  let now_ns = BigInt(Date.now()) * 1_000_000n;
  const clock = () => now_ns;
  const open = (): EmbeddedClient => createEmbeddedClient({ dataDir, clock, snapshotMinLogBytes: options.snapshotMinLogBytes });
  let client: EmbeddedClient = open();
  let outer = wrap(client);
  return {
    kind: "embedded",
    get client() {
      return outer;
    },
    advanceTime: async (seconds) => {
      now_ns += BigInt(Math.round(seconds * 1e9));
      await sleep(0);
    },
    nowNs: () => now_ns,
    settle: () => sleep(20),
    checkpoint: () => client.snapshot(),
    uniqueId: ids.uniqueId,
    uniqueLedger: ids.uniqueLedger,
    restart: async () => {
      await disposeClient(client);
      client = open();
      outer = wrap(client);
    },
    close: async () => {
      await disposeClient(client);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Builders and small helpers shared by the conformance files and the model test.

export function account(fields: Partial<Account> & { id: bigint; ledger: number }): Account {
  return newAccount({ code: 1, flags: AccountFlags.none, ...fields });
}

export const transfer = newTransfer;

export function accountFilter(fields: Partial<AccountFilter> & { account_id: bigint }): AccountFilter {
  return {
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    code: 0,
    timestamp_min: 0n,
    timestamp_max: 0n,
    limit: BATCH_MAX,
    flags: AccountFilterFlags.debits | AccountFilterFlags.credits,
    ...fields,
  };
}

export function queryFilter(fields: Partial<QueryFilter>): QueryFilter {
  return {
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    ledger: 0,
    code: 0,
    timestamp_min: 0n,
    timestamp_max: 0n,
    limit: BATCH_MAX,
    flags: QueryFilterFlags.none,
    ...fields,
  };
}

/** Status names of create_accounts results, for readable assertions. */
export function accountStatuses(results: ReadonlyArray<{ status: CreateAccountStatus }>): string[] {
  return results.map((r) => CreateAccountStatus[r.status] ?? `unknown(${r.status})`);
}

/** Status names of create_transfers results, for readable assertions. */
export function transferStatuses(results: ReadonlyArray<{ status: CreateTransferStatus }>): string[] {
  return results.map((r) => CreateTransferStatus[r.status] ?? `unknown(${r.status})`);
}

export interface Balances {
  debits_pending: bigint;
  debits_posted: bigint;
  credits_pending: bigint;
  credits_posted: bigint;
}

export function balancesOf(a: Balances): Balances {
  return {
    debits_pending: a.debits_pending,
    debits_posted: a.debits_posted,
    credits_pending: a.credits_pending,
    credits_posted: a.credits_posted,
  };
}

export function bal(debits_pending: bigint, debits_posted: bigint, credits_pending: bigint, credits_posted: bigint): Balances {
  return { debits_pending, debits_posted, credits_pending, credits_posted };
}

/** Poll `check` (with `settle()` in between) until it returns true or the tries run out. */
export async function eventually(backend: Backend, check: () => Promise<boolean>, tries = 100): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true;
    await backend.settle();
  }
  return check();
}
