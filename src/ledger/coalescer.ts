/**
 * Request coalescing in front of the ledger port.
 *
 * Concurrent `createAccounts` / `createTransfers` calls are merged into one ledger request of at
 * most BATCH_MAX events; each caller's events stay contiguous and in order, and each caller gets
 * back exactly the slice of results for its own events (tigerbeetle-node 0.17 returns one result
 * per event, in order, so the slice is direct).
 *
 * Merging must never change an answer, so a request is NOT merged when that could change how the
 * ledger treats its events:
 * - a request whose last event has `linked` set (open chain) is submitted in a batch of its own:
 *   it then fails alone with `linked_event_chain_open` instead of swallowing the next request;
 * - imported and non-imported events never share a batch (the ledger judges `imported` against
 *   the batch's first event); a request that mixes both is submitted alone;
 * - a request larger than BATCH_MAX is rejected with the same error as the real client
 *   (RequestError ERR_TOO_MUCH_DATA);
 * - if the merged ledger request fails as a whole (client error), every caller in it gets that
 *   error, exactly as if it had sent its own request.
 *
 * Scheduling: at most one create request per operation is in flight; calls arriving meanwhile
 * (or within the same event-loop turn) queue and go out together when it completes. Reads pass
 * straight through. Hand-written because no library knows TigerBeetle's batch semantics.
 */
import {
  AccountFlags,
  ErrorCodes,
  RequestError,
  TransferFlags,
  type Account,
  type Client,
  type CreateAccountResult,
  type CreateTransferResult,
  type Transfer,
} from "tigerbeetle-node";

/** TigerBeetle's maximum events per request (1 MiB message / 128 B events). */
export const BATCH_MAX = 8189;

/** Batch "compatibility class": requests merge only within the same class. */
type BatchClass = "plain" | "imported" | "alone";

interface Pending<E, R> {
  events: E[];
  cls: BatchClass;
  /** True if the request must be the last one of its batch (open linked chain). */
  closesBatch: boolean;
  resolve: (results: R[]) => void;
  reject: (err: unknown) => void;
}

export interface CoalescerStats {
  /** Ledger requests actually sent (create operations only). */
  batches: number;
  /** Caller requests received (create operations only). */
  requests: number;
  /** Events sent. */
  events: number;
}

class Lane<E extends { flags: number }, R> {
  private queue: Pending<E, R>[] = [];
  private inFlight = false;
  private scheduled = false;

  constructor(
    private readonly submit: (batch: E[]) => Promise<R[]>,
    private readonly linkedFlag: number,
    private readonly importedFlag: number,
    private readonly stats: CoalescerStats,
  ) {}

  request(events: E[]): Promise<R[]> {
    if (events.length > BATCH_MAX) {
      return Promise.reject(new RequestError(ErrorCodes.ERR_TOO_MUCH_DATA));
    }
    this.stats.requests += 1;
    if (events.length === 0) return Promise.resolve([]);
    let imported = 0;
    for (const e of events) if ((e.flags & this.importedFlag) !== 0) imported += 1;
    const cls: BatchClass =
      imported === 0 ? "plain" : imported === events.length ? "imported" : "alone";
    const last = events[events.length - 1] as E;
    const closesBatch = (last.flags & this.linkedFlag) !== 0;
    return new Promise<R[]>((resolve, reject) => {
      // Copy the array (not the events): the caller may reuse its array after we return.
      this.queue.push({ events: events.slice(), cls, closesBatch, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.inFlight || this.scheduled || this.queue.length === 0) return;
    this.scheduled = true;
    // Let calls that arrive in the same event-loop turn join the batch.
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  /** Take the longest prefix of the queue that may share one batch. */
  private take(): Pending<E, R>[] {
    const first = this.queue[0] as Pending<E, R>;
    const taken: Pending<E, R>[] = [first];
    let size = first.events.length;
    if (first.cls !== "alone" && !first.closesBatch) {
      // Merge the following compatible requests, stopping at the first one that does not fit so
      // requests still reach the ledger in arrival order.
      for (let i = 1; i < this.queue.length; i++) {
        const p = this.queue[i] as Pending<E, R>;
        if (p.cls !== first.cls || size + p.events.length > BATCH_MAX) break;
        taken.push(p);
        size += p.events.length;
        if (p.closesBatch) break;
      }
    }
    this.queue = this.queue.slice(taken.length);
    return taken;
  }

  private async flush(): Promise<void> {
    if (this.inFlight || this.queue.length === 0) return;
    this.inFlight = true;
    const taken = this.take();
    const batch: E[] = [];
    for (const p of taken) for (const e of p.events) batch.push(e);
    this.stats.batches += 1;
    this.stats.events += batch.length;
    try {
      const results = await this.submit(batch);
      if (results.length !== batch.length) {
        throw new Error(`ledger returned ${results.length} results for ${batch.length} events`);
      }
      let offset = 0;
      for (const p of taken) {
        p.resolve(results.slice(offset, offset + p.events.length));
        offset += p.events.length;
      }
    } catch (err) {
      for (const p of taken) p.reject(err);
    } finally {
      this.inFlight = false;
      this.schedule();
    }
  }
}

export interface CoalescedClient extends Client {
  readonly stats: CoalescerStats;
}

/** Wrap a ledger client so concurrent create calls share ledger requests. */
export function createCoalescedClient(inner: Client): CoalescedClient {
  const stats: CoalescerStats = { batches: 0, requests: 0, events: 0 };
  const accounts = new Lane<Account, CreateAccountResult>(
    (b) => inner.createAccounts(b),
    AccountFlags.linked,
    AccountFlags.imported,
    stats,
  );
  const transfers = new Lane<Transfer, CreateTransferResult>(
    (b) => inner.createTransfers(b),
    TransferFlags.linked,
    TransferFlags.imported,
    stats,
  );
  return {
    stats,
    createAccounts: (batch) => accounts.request(batch),
    createTransfers: (batch) => transfers.request(batch),
    lookupAccounts: (ids) => inner.lookupAccounts(ids),
    lookupTransfers: (ids) => inner.lookupTransfers(ids),
    getAccountTransfers: (f) => inner.getAccountTransfers(f),
    getAccountBalances: (f) => inner.getAccountBalances(f),
    queryAccounts: (f) => inner.queryAccounts(f),
    queryTransfers: (f) => inner.queryTransfers(f),
    destroy: () => inner.destroy(),
  };
}
