/**
 * The contract between the embedded engine's deterministic core (the state machine) and its
 * durability layer (the log + snapshots + client in src/ledger/embedded/index.ts).
 *
 * Determinism is the whole point: replaying the same sequence of `Commit`s on an empty state
 * machine (or on a restored snapshot followed by the commits after it) must reproduce exactly the
 * same state and the same results. So the state machine never reads a clock, a random source or
 * the environment: the cluster time of every write comes in as `now_ns`.
 */
import type {
  Account,
  AccountBalance,
  AccountFilter,
  CreateAccountResult,
  CreateTransferResult,
  QueryFilter,
  Transfer,
} from "tigerbeetle-node";

/** One durable write, as the log records it. */
export type Commit =
  | { kind: "create_accounts"; now_ns: bigint; events: Account[] }
  | { kind: "create_transfers"; now_ns: bigint; events: Transfer[] }
  /** A create_transfers record's body as logged (TigerBeetle's 128-byte layout, `count` events). */
  | { kind: "create_transfers_wire"; now_ns: bigint; body: Uint8Array; count: number }
  /** Expire every open pending transfer whose deadline (timestamp + timeout) is <= now_ns. */
  | { kind: "pulse"; now_ns: bigint };

export interface StateMachine {
  /**
   * Apply a create_accounts batch. `now_ns` is the wall clock; the state machine derives strictly
   * increasing event timestamps from max(now_ns, last timestamp + 1) as TigerBeetle does.
   * Returns one result per event (tigerbeetle-node 0.17 shape, including `created`).
   * Batch-level validation that the real client does before sending (batch too large) is the
   * client's job, not this one's.
   */
  createAccounts(events: readonly Account[], now_ns: bigint): CreateAccountResult[];
  createTransfers(events: readonly Transfer[], now_ns: bigint): CreateTransferResult[];
  /**
   * The same batch already encoded in TigerBeetle's 128-byte wire layout (`count` events, as a
   * log record body holds them; the engine's codec validated them): the same results and state
   * as createTransfers(decodeTransfers(body, count), now_ns). `body` is only read.
   */
  createTransfersWire(body: Uint8Array, count: number, now_ns: bigint): CreateTransferResult[];
  /** Expire due pending transfers at now_ns (releases their pending amounts). Returns how many. */
  pulse(now_ns: bigint): number;
  /** Earliest deadline (ns) among open pending transfers with a timeout, or null if none. */
  nextExpiryNs(): bigint | null;
  /** Timestamp of the last event applied (0n when empty). */
  lastTimestampNs(): bigint;

  lookupAccounts(ids: readonly bigint[]): Account[];
  lookupTransfers(ids: readonly bigint[]): Transfer[];
  getAccountTransfers(filter: AccountFilter): Transfer[];
  getAccountBalances(filter: AccountFilter): AccountBalance[];
  queryAccounts(filter: QueryFilter): Account[];
  queryTransfers(filter: QueryFilter): Transfer[];

  /** Counts, for stats and benchmarks. */
  stats(): { accounts: number; transfers: number; pending_open: number };

  /**
   * Serialize the complete state as a sequence of chunks (written in order to a snapshot file).
   * `restoreStateMachine(chunks)` (exported next to the implementation) must rebuild an
   * identical machine.
   */
  snapshotChunks(): Iterable<Uint8Array>;
}
