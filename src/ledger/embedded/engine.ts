/**
 * The embedded ledger's durability layer and Client: a deterministic state machine (the core,
 * see state-machine.contract.ts) behind a write-ahead log with group commit, snapshots, recovery
 * and a data-directory lock. Design and measurements: docs/adr/0010-embedded-engine-durability.md.
 *
 * Write path (one "flush" at a time):
 *   1. calls append their validated, copied events to a FIFO queue;
 *   2. a flush takes every queued write (up to `flushMaxBytes`), and for each: pulses first if a
 *      pending transfer is due, applies it to the state machine (getting its results) and seals
 *      it as one log record;
 *   3. one write + one fdatasync (libuv thread pool, off the event loop) for the whole flush;
 *   4. only then are the results handed back. Calls that arrive meanwhile wait for the next flush.
 * Reads are ordered after every write submitted before them and are never served while a flush is
 * in flight, so a read never observes state that is not yet on disk.
 *
 * If the state machine throws or the disk fails in the middle of a flush, memory is ahead of the
 * disk: the engine stops (every call rejects with the cause) and must be reopened, which replays
 * exactly what is durable.
 */
import fs from "node:fs";
import path from "node:path";
import {
  ErrorCodes,
  RequestError,
  type Account,
  type AccountBalance,
  type AccountFilter,
  type Client,
  type CreateAccountResult,
  type CreateTransferResult,
  type QueryFilter,
  type Transfer,
} from "tigerbeetle-node";
import type { Commit, StateMachine } from "./state-machine.contract.js";
import {
  EVENT_SIZE,
  checkAccount,
  checkAccountFilter,
  checkId,
  checkQueryFilter,
  checkAndEncodeTransfers,
  decodeAccounts,
  encodeAccounts,
} from "./codec.js";
import { LEDGER_DIR_MODE, LEDGER_FILE_MODE, LedgerCorruptionError, fsyncDirSync, listDataDir, segmentName, type DataLoss } from "./files.js";
import { lockDataDir, type DirLock } from "./lock.js";
import { readSnapshotChunks, readSnapshotSeq, writeSnapshot } from "./snapshot.js";
import {
  RECORD_HEADER_SIZE,
  SEGMENT_HEADER_SIZE,
  SegmentWriter,
  fsyncDirAsync,
  fsyncDirWith,
  nodeLogFileOps,
  scanSegment,
  sealRecord,
  writeSegmentFile,
  type LogFileOps,
  type LogRecord,
} from "./wal.js";

/** Events per request, as tigerbeetle-node 0.17 enforces client-side (1 MiB message, 128-byte events). */
export const BATCH_MAX = 8189;

export interface StateMachineFactory {
  create(): StateMachine;
  restore(chunks: Iterable<Uint8Array>): StateMachine;
}

export interface EmbeddedClientOptions {
  /** Data directory (created if missing). Only one process may open it at a time. */
  dataDir: string;
  /** Wall clock in nanoseconds; injectable so tests move time (expiry) without sleeping. */
  clock?: () => bigint;
  /** Take a snapshot once the log since the last one exceeds max(this, last snapshot size). Default 64 MiB. */
  snapshotMinLogBytes?: number;
  /** Upper bound on the bytes one group-commit flush writes (whole batches only). Default 4 MiB. */
  flushMaxBytes?: number;
  /**
   * States up to this size are copied for a snapshot (a short pause) and written while writes
   * continue; larger ones are written in place while writes wait. Default 256 MiB.
   */
  snapshotCopyMaxBytes?: number;
  /** Longest time an idle engine waits before checking for due pending transfers. Default 1000 ms. */
  pulseIntervalMs?: number;
  /**
   * Accept one damage that recovery refuses (the daemon's LEDGER_ACCEPT_DATA_LOSS): the exact token
   * the refusal printed (`<file>@<offset>` or `<file>@missing`). Any other damage is still refused.
   */
  acceptDataLoss?: string;
  /** Where recovery reports a cut torn tail (warn) or an accepted loss (error). Default: stderr. */
  log?: EngineLog;
  /** File operations of the log's write side (tests simulate power loss with their own). */
  logFileOps?: LogFileOps;
}

/** The slice of a pino logger the engine uses. */
export interface EngineLog {
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

/** The default EngineLog: one JSON line per event on stderr. */
export const stderrLog: EngineLog = {
  warn: (fields, msg) => console.error(JSON.stringify({ level: "warn", msg, ...fields })),
  error: (fields, msg) => console.error(JSON.stringify({ level: "error", msg, ...fields })),
};

export interface EmbeddedStats {
  accounts: number;
  transfers: number;
  pending_open: number;
  /** Commits (log records) applied since the data directory was created. */
  commit_seq: bigint;
  /** Seq covered by the newest snapshot (0n: none). */
  snapshot_seq: bigint;
  /** Group-commit flushes (write + fdatasync) since open, and the requests they carried. */
  flushes: number;
  flushed_requests: number;
  log_bytes_since_snapshot: number;
  /** Commits replayed from the log when this engine opened, and whether a torn tail was cut. */
  recovered_commits: number;
  torn_tail_truncated: boolean;
  /** The LEDGER_ACCEPT_DATA_LOSS token this open accepted (commits were dropped), or null. */
  accepted_data_loss: string | null;
  /** Time to open: restoring the snapshot, then replaying the log after it (ms). */
  open_restore_ms: number;
  open_replay_ms: number;
  last_snapshot_error: string | null;
  /** Snapshots written since open; size and duration of the last one (writes wait meanwhile). */
  snapshots_taken: number;
  last_snapshot_bytes: number;
  last_snapshot_ms: number;
  /** How long writes waited for the last snapshot (the copy, or the whole write when in place). */
  last_snapshot_pause_ms: number;
}

export type EmbeddedClient = Client & {
  /** Finish queued work, make it durable, release the data directory. Idempotent. */
  close(): Promise<void>;
  /** Take a snapshot now (after everything queued before it is durable). */
  snapshot(): Promise<void>;
  /** Resolves once everything submitted so far is durable and answered, and no snapshot is being written. */
  drain(): Promise<void>;
  stats(): EmbeddedStats;
};

const KIND_CREATE_ACCOUNTS = 1;
const KIND_CREATE_TRANSFERS = 2;
const KIND_PULSE = 3;

type Settle<T> = { resolve: (v: T) => void; reject: (e: unknown) => void };

type WriteReq =
  | ({ kind: "create_accounts"; events: Account[]; ticket: number } & Settle<CreateAccountResult[]>)
  | ({ kind: "create_transfers"; body: Uint8Array; count: number; ticket: number } & Settle<CreateTransferResult[]>)
  | { kind: "pulse"; ticket: number };

interface ReadReq {
  ticket: number;
  run: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** Real time in ns (µs resolution, monotonic within the process). */
function defaultClock(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

function commitOf(rec: LogRecord, file: string): Commit {
  const { kind, now_ns, count, body } = rec;
  switch (kind) {
    case KIND_CREATE_ACCOUNTS:
      return { kind: "create_accounts", now_ns, events: decodeAccounts(body, count) };
    case KIND_CREATE_TRANSFERS:
      return { kind: "create_transfers_wire", now_ns, body, count };
    case KIND_PULSE:
      return { kind: "pulse", now_ns };
    default:
      throw new LedgerCorruptionError(file, rec.offset, `record ${rec.seq} has unknown kind ${kind}`);
  }
}

export function applyCommit(core: StateMachine, c: Commit): void {
  switch (c.kind) {
    case "create_accounts":
      core.createAccounts(c.events, c.now_ns);
      return;
    case "create_transfers":
      core.createTransfers(c.events, c.now_ns);
      return;
    case "create_transfers_wire":
      core.createTransfersWire(c.body, c.count, c.now_ns);
      return;
    case "pulse":
      core.pulse(c.now_ns);
      return;
  }
}

class Engine {
  private readonly dir: string;
  private readonly clock: () => bigint;
  private readonly snapshotMinLogBytes: number;
  private readonly flushMaxBytes: number;
  private readonly pulseIntervalMs: number;
  private readonly snapshotCopyMaxBytes: number;
  private readonly factory: StateMachineFactory;
  private readonly lock: DirLock;
  private readonly acceptDataLoss: string | null;
  private readonly log: EngineLog;
  private readonly ops: LogFileOps;
  private acceptedDataLoss: string | null = null;
  private core: StateMachine;
  private writer: SegmentWriter;
  private seq = 0n;
  private snapshotSeq = 0n;
  private lastSnapshotBytes = 0;
  private logBytesSinceSnapshot = 0;

  private writes: WriteReq[] = [];
  private writesHead = 0;
  private reads: ReadReq[] = [];
  private writeTicket = 0;
  private durableTicket = 0;
  private pulseQueued = false;
  private flushing = false;
  private scheduled = false;
  private snapshotting: Promise<void> | null = null;
  /** True while the core must not change (a snapshot is reading its live memory). */
  private writesFrozen = false;
  private closing = false;
  private released = false;
  private failure: Error | null = null;
  private drained: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  private timerDueMs = Infinity;

  private flushes = 0;
  private flushedRequests = 0;
  private recoveredCommits = 0;
  private openRestoreMs = 0;
  private openReplayMs = 0;
  private tornTailTruncated = false;
  private lastSnapshotError: string | null = null;
  private snapshotsTaken = 0;
  private lastSnapshotMs = 0;
  private lastSnapshotPauseMs = 0;

  constructor(options: EmbeddedClientOptions, factory: StateMachineFactory) {
    this.dir = path.resolve(options.dataDir);
    this.clock = options.clock ?? defaultClock;
    this.snapshotMinLogBytes = options.snapshotMinLogBytes ?? 64 * 1024 * 1024;
    this.flushMaxBytes = options.flushMaxBytes ?? 4 * 1024 * 1024;
    this.pulseIntervalMs = options.pulseIntervalMs ?? 1000;
    this.snapshotCopyMaxBytes = options.snapshotCopyMaxBytes ?? 256 * 1024 * 1024;
    this.factory = factory;
    this.acceptDataLoss = options.acceptDataLoss ?? null;
    this.log = options.log ?? stderrLog;
    this.ops = options.logFileOps ?? nodeLogFileOps;
    if (fs.mkdirSync(this.dir, { recursive: true, mode: LEDGER_DIR_MODE }) !== undefined) fsyncDirSync(path.dirname(this.dir)); // a new directory's entry is durable too
    restrictModes(this.dir, this.log);
    this.lock = lockDataDir(this.dir);
    try {
      const { core, writer } = this.recover();
      this.core = core;
      this.writer = writer;
    } catch (err) {
      this.lock.release();
      throw err;
    }
    this.armTimer();
  }

  // ---------------------------------------------------------------- recovery

  /**
   * Restore and replay; on a damage the operator accepted (its exact token), set the damaged part
   * aside, say so at error level, and recover once more. Any other damage throws.
   */
  private recover(): { core: StateMachine; writer: SegmentWriter } {
    try {
      return this.recoverOnce();
    } catch (err) {
      if (!(err instanceof LedgerCorruptionError) || err.loss === null || err.acceptToken !== this.acceptDataLoss) throw err;
      this.log.error(
        { file: err.file, offset: err.offset, accepted: err.acceptToken, damage: err.message },
        "embedded ledger: LEDGER_ACCEPT_DATA_LOSS accepted this damage: every commit from it on is dropped and acknowledged writes may be lost (damaged bytes kept as *.damaged; there is no audit log yet, this line is the record)",
      );
      this.discard(err.loss);
      this.acceptedDataLoss = err.acceptToken;
      this.snapshotSeq = 0n;
      this.lastSnapshotBytes = 0;
      this.logBytesSinceSnapshot = 0;
      this.recoveredCommits = 0;
      this.tornTailTruncated = false;
      return this.recoverOnce();
    }
  }

  /** Set aside what an accepted loss drops: the log from the damage on, and every later segment. */
  private discard(loss: DataLoss): void {
    const segs = listDataDir(this.dir).segments;
    let after: bigint;
    if (loss.kind === "cut") {
      const seg = segs.find((x) => x.file === loss.file);
      if (!seg) throw new Error(`cannot accept the loss: ${loss.file} is gone`);
      const bytes = fs.readFileSync(loss.file);
      const aside = `${loss.file}.at-${loss.offset}.damaged`;
      fs.writeFileSync(aside, bytes.subarray(loss.offset), { mode: LEDGER_FILE_MODE, flush: true });
      if (loss.offset < SEGMENT_HEADER_SIZE) writeSegmentFile(loss.file, seg.seq, this.ops);
      else {
        fs.truncateSync(loss.file, loss.offset);
        const fd = fs.openSync(loss.file, "r+");
        fs.fsyncSync(fd);
        fs.closeSync(fd);
      }
      after = seg.seq;
    } else {
      for (const x of segs) if (x.seq >= loss.seq) fs.renameSync(x.file, `${x.file}.damaged`);
      writeSegmentFile(loss.file, loss.seq, this.ops);
      after = loss.seq;
    }
    for (const x of segs) if (x.seq > after && fs.existsSync(x.file)) fs.renameSync(x.file, `${x.file}.damaged`);
    fsyncDirSync(this.dir);
  }

  private recoverOnce(): { core: StateMachine; writer: SegmentWriter } {
    const listing = listDataDir(this.dir);
    for (const t of listing.temps) this.ops.unlink(t);
    let core: StateMachine;
    const t0 = performance.now();
    const newest = listing.snapshots.at(-1);
    if (newest) {
      const seq = readSnapshotSeq(newest.file);
      if (seq !== newest.seq) throw new LedgerCorruptionError(newest.file, 8, `snapshot header says seq ${seq}, file name says ${newest.seq}`);
      try {
        core = this.factory.restore(readSnapshotChunks(newest.file));
      } catch (err) {
        if (err instanceof LedgerCorruptionError) throw err;
        throw new LedgerCorruptionError(newest.file, -1, `state machine could not restore it: ${(err as Error).message}`);
      }
      this.snapshotSeq = seq;
      this.lastSnapshotBytes = fs.statSync(newest.file).size;
    } else {
      core = this.factory.create();
    }
    const S = this.snapshotSeq;
    const t1 = performance.now();
    this.openRestoreMs = t1 - t0;
    const segs = listing.segments;
    // Segments before S + 1 are obsolete (a snapshot at S is taken only after rotating to a new
    // segment log-(S+1)). So the log must continue at exactly S + 1: a snapshot without
    // log-(S+1), or a log that starts later, means commits are missing.
    const relevant = segs.filter((x) => x.seq > S);
    if ((S > 0n || relevant.length > 0) && relevant[0]?.seq !== S + 1n) {
      const file = path.join(this.dir, segmentName(S + 1n));
      const found = relevant[0] ? `the log starts at ${path.basename(relevant[0].file)}` : "no log segment follows it";
      throw new LedgerCorruptionError(file, -1, `missing: ${S === 0n ? "the data directory has no snapshot" : `the newest snapshot ends at commit ${S}`} and ${found}; commits after ${S} that were acknowledged may be lost`, { kind: "missing", file, seq: S + 1n });
    }
    let seq = S;
    let expectNext: bigint | null = null;
    for (let i = 0; i < relevant.length; i++) {
      const seg = relevant[i]!;
      if (expectNext !== null && seg.seq !== expectNext) {
        const file = path.join(this.dir, segmentName(expectNext));
        throw new LedgerCorruptionError(file, -1, `missing: the previous segment ends at commit ${expectNext - 1n} but the next one is ${path.basename(seg.file)}`, { kind: "missing", file, seq: expectNext });
      }
      const isLast = i === relevant.length - 1;
      const scan = scanSegment(seg.file, { isLast, firstSeq: seg.seq, repair: true }, (rec) => {
        if (rec.body.length !== rec.count * (rec.kind === KIND_PULSE ? 0 : EVENT_SIZE)) {
          throw new LedgerCorruptionError(seg.file, rec.offset, `record ${rec.seq} has ${rec.body.length} body bytes for ${rec.count} events`, { kind: "cut", file: seg.file, offset: rec.offset });
        }
        applyCommit(core, commitOf(rec, seg.file));
        seq = rec.seq;
        this.recoveredCommits++;
      });
      if (scan.torn) {
        this.tornTailTruncated = true;
        this.log.warn(
          { file: seg.file, offset: scan.torn.offset, bytes: scan.torn.bytes, reason: scan.torn.reason, last_commit: seq.toString() },
          "embedded ledger: cut a torn tail (an incomplete last write a crash left at a page boundary; it was never acknowledged)",
        );
      }
      expectNext = scan.lastSeq === null ? seg.seq : scan.lastSeq + 1n;
      this.logBytesSinceSnapshot += scan.validEnd;
    }
    this.seq = seq;
    this.openReplayMs = performance.now() - t1;
    // Everything obsolete can go now that the snapshot restored and the log replayed cleanly.
    let removed = false;
    for (const s of listing.snapshots.slice(0, -1)) {
      this.ops.unlink(s.file);
      removed = true;
    }
    for (const s of segs) {
      if (s.seq > S) continue;
      this.ops.unlink(s.file);
      removed = true;
    }
    let writer: SegmentWriter;
    const last = relevant.at(-1);
    if (last) {
      writer = SegmentWriter.openExisting(last.file, last.seq, this.ops);
    } else {
      writer = SegmentWriter.create(path.join(this.dir, segmentName(seq + 1n)), seq + 1n, this.ops);
    }
    if (removed) fsyncDirWith(this.ops, this.dir);
    return { core, writer };
  }

  // ---------------------------------------------------------------- write path

  guard(): void {
    if (this.failure) throw this.failure;
    if (this.closing) throw new RequestError(ErrorCodes.ERR_CLIENT_CLOSED);
  }

  submitAccounts(events: Account[]): Promise<CreateAccountResult[]> {
    return new Promise<CreateAccountResult[]>((resolve, reject) => {
      this.guard();
      this.writes.push({ kind: "create_accounts", events, ticket: ++this.writeTicket, resolve, reject });
      this.schedule();
    });
  }

  /** `body`: `count` transfers, validated and encoded (checkAndEncodeTransfers); owned by the engine. */
  submitTransfers(body: Uint8Array, count: number): Promise<CreateTransferResult[]> {
    return new Promise<CreateTransferResult[]>((resolve, reject) => {
      this.guard();
      this.writes.push({ kind: "create_transfers", body, count, ticket: ++this.writeTicket, resolve, reject });
      this.schedule();
    });
  }

  private pulseDue(): boolean {
    const due = this.core.nextExpiryNs();
    return due !== null && due <= this.clock();
  }

  private queuePulse(): void {
    if (this.pulseQueued) return;
    this.pulseQueued = true;
    this.writes.push({ kind: "pulse", ticket: ++this.writeTicket });
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.flushing || this.writesFrozen) return;
    this.scheduled = true;
    // setImmediate (not a microtask): lets every call made in this turn, and the continuations of
    // the previous flush's callers, join the next flush.
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing || this.writesFrozen || this.failure) return;
    if (this.writesHead >= this.writes.length) {
      this.serveReads();
      this.maybeFinishDrain();
      return;
    }
    this.flushing = true;
    // Take whole requests, FIFO, up to flushMaxBytes (always at least one).
    const start = this.writesHead;
    let end = start;
    let bytes = 0;
    while (end < this.writes.length) {
      const w = this.writes[end]!;
      const size = 2 * RECORD_HEADER_SIZE + (w.kind === "pulse" ? 0 : (w.kind === "create_accounts" ? w.events.length : w.count) * EVENT_SIZE);
      if (end > start && bytes + size > this.flushMaxBytes) break;
      bytes += size;
      end++;
    }
    const batch = this.writes.slice(start, end);
    this.writesHead = end;
    // Drop taken requests from the queue (they hold the callers' events) once they are all taken,
    // or in bulk when the queue never empties.
    if (this.writesHead === this.writes.length) {
      this.writes = [];
      this.writesHead = 0;
    } else if (this.writesHead > 1024) {
      this.writes = this.writes.slice(this.writesHead);
      this.writesHead = 0;
    }
    const buf = Buffer.allocUnsafeSlow(bytes);
    let used = 0;
    const results: unknown[] = new Array<unknown>(batch.length);
    try {
      for (let i = 0; i < batch.length; i++) {
        const w = batch[i]!;
        const now_ns = this.clock();
        const due = this.core.nextExpiryNs();
        if (due !== null && due <= now_ns) {
          this.core.pulse(now_ns);
          used = sealRecord(buf, used, { seq: ++this.seq, kind: KIND_PULSE, now_ns, count: 0 }, 0);
        }
        if (w.kind === "pulse") {
          this.pulseQueued = false;
          continue;
        }
        const bodyAt = used + RECORD_HEADER_SIZE;
        if (w.kind === "create_accounts") {
          const n = w.events.length;
          encodeAccounts(w.events, buf, bodyAt);
          results[i] = this.core.createAccounts(w.events, now_ns);
          used = sealRecord(buf, used, { seq: ++this.seq, kind: KIND_CREATE_ACCOUNTS, now_ns, count: n }, n * EVENT_SIZE);
        } else {
          const n = w.count;
          // The log record's body is the request's encoded bytes, applied as they are.
          buf.set(w.body, bodyAt);
          results[i] = this.core.createTransfersWire(w.body, n, now_ns);
          used = sealRecord(buf, used, { seq: ++this.seq, kind: KIND_CREATE_TRANSFERS, now_ns, count: n }, n * EVENT_SIZE);
        }
      }
      if (used > 0) await this.writer.append(buf.subarray(0, used));
    } catch (err) {
      this.fail(err, batch);
      return;
    }
    this.flushes++;
    this.flushedRequests += batch.length;
    this.logBytesSinceSnapshot += used;
    this.durableTicket = batch[batch.length - 1]!.ticket;
    this.flushing = false;
    for (let i = 0; i < batch.length; i++) {
      const w = batch[i]!;
      if (w.kind === "create_accounts") w.resolve(results[i] as CreateAccountResult[]);
      else if (w.kind === "create_transfers") w.resolve(results[i] as CreateTransferResult[]);
    }
    this.serveReads();
    this.armTimer();
    if (!this.snapshotting && this.logBytesSinceSnapshot >= Math.max(this.snapshotMinLogBytes, this.lastSnapshotBytes)) {
      void this.takeSnapshot();
      return;
    }
    if (this.writesHead < this.writes.length) this.schedule();
    else this.maybeFinishDrain();
  }

  private fail(err: unknown, batch: WriteReq[]): void {
    const cause = err instanceof Error ? err : new Error(String(err));
    this.failure = new Error(`embedded ledger stopped: ${cause.message} (reopen the data directory to recover what is durable)`, { cause });
    this.flushing = false;
    for (const w of batch) if (w.kind !== "pulse") w.reject(this.failure);
    this.rejectQueued(this.failure);
    this.release();
  }

  private rejectQueued(err: unknown): void {
    for (let i = this.writesHead; i < this.writes.length; i++) {
      const w = this.writes[i]!;
      if (w.kind !== "pulse") w.reject(err);
    }
    this.writes = [];
    this.writesHead = 0;
    const reads = this.reads;
    this.reads = [];
    for (const r of reads) r.reject(err);
    this.maybeFinishDrain();
  }

  // ---------------------------------------------------------------- read path

  submitRead<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.guard();
      if (!this.pulseQueued && this.pulseDue()) this.queuePulse();
      const ticket = this.writeTicket;
      if (!this.flushing && ticket <= this.durableTicket) {
        resolve(run());
        return;
      }
      this.reads.push({ ticket, run, resolve: resolve as (v: unknown) => void, reject });
    });
  }

  private serveReads(): void {
    if (this.flushing || this.reads.length === 0) return;
    let i = 0;
    for (; i < this.reads.length; i++) {
      const r = this.reads[i]!;
      if (r.ticket > this.durableTicket) break;
      try {
        r.resolve(r.run());
      } catch (err) {
        r.reject(err);
      }
    }
    this.reads = i === this.reads.length ? [] : this.reads.slice(i);
  }

  // ---------------------------------------------------------------- expiry timer

  private armTimer(): void {
    if (this.released) return;
    const due = this.core.nextExpiryNs();
    let delayMs = this.pulseIntervalMs;
    if (due !== null) {
      const until = Number(due - this.clock()) / 1e6;
      delayMs = Math.min(delayMs, Math.max(1, Math.ceil(until)));
    }
    const at = Date.now() + delayMs;
    if (this.timer && at >= this.timerDueMs) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDueMs = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerDueMs = Infinity;
      if (this.released || this.failure) return;
      if (!this.closing && !this.pulseQueued && this.pulseDue()) this.queuePulse();
      this.armTimer();
    }, delayMs);
    this.timer.unref();
  }

  // ---------------------------------------------------------------- snapshots

  private takeSnapshot(): Promise<void> {
    if (this.snapshotting) return this.snapshotting;
    this.writesFrozen = true;
    const run = async (): Promise<void> => {
      const S = this.seq;
      const logBytesAtS = this.logBytesSinceSnapshot;
      const t0 = performance.now();
      try {
        // Rotate first: later commits go to a segment that starts at S + 1.
        if (this.writer.size > SEGMENT_HEADER_SIZE || this.writer.firstSeq !== S + 1n) {
          const next = SegmentWriter.create(path.join(this.dir, segmentName(S + 1n)), S + 1n, this.ops);
          this.writer.closeSync();
          this.writer = next;
        }
        // The core's chunks are views of live memory. Small states are copied (a short pause) and
        // written while writes continue; large ones are written in place while writes wait.
        let source: Iterable<Uint8Array> | null = null;
        if (this.lastSnapshotBytes <= this.snapshotCopyMaxBytes) {
          const copies: Uint8Array[] = [];
          let copied = 0;
          for (const chunk of this.core.snapshotChunks()) {
            copied += chunk.length;
            if (copied > this.snapshotCopyMaxBytes) break;
            const c = Buffer.allocUnsafeSlow(chunk.length);
            c.set(chunk);
            copies.push(c);
          }
          if (copied <= this.snapshotCopyMaxBytes) source = copies;
        }
        let written: { bytes: number };
        if (source) {
          this.lastSnapshotPauseMs = performance.now() - t0;
          this.writesFrozen = false;
          if (this.writesHead < this.writes.length) this.schedule();
          written = await writeSnapshot(this.dir, S, source, { ops: this.ops });
        } else {
          // Nothing else writes meanwhile, so one sync at the end is enough (and fastest).
          written = await writeSnapshot(this.dir, S, this.core.snapshotChunks(), { syncEveryBytes: 0, ops: this.ops });
          this.lastSnapshotPauseMs = performance.now() - t0;
          this.writesFrozen = false;
        }
        this.snapshotSeq = S;
        this.lastSnapshotBytes = written.bytes;
        // Commits after S (written while a copied snapshot was being saved) stay counted.
        this.logBytesSinceSnapshot -= logBytesAtS;
        this.lastSnapshotError = null;
        this.snapshotsTaken++;
        this.lastSnapshotMs = performance.now() - t0;
        const listing = listDataDir(this.dir);
        for (const s of listing.snapshots) if (s.seq < S) this.ops.unlink(s.file);
        for (const s of listing.segments) if (s.seq <= S) this.ops.unlink(s.file);
        await fsyncDirAsync(this.ops, this.dir);
      } catch (err) {
        // The log is intact, so a failed snapshot costs replay time only; retry after as much log again.
        this.lastSnapshotError = (err as Error).message;
        this.lastSnapshotBytes = Math.max(this.lastSnapshotBytes, this.logBytesSinceSnapshot * 2);
      }
    };
    this.snapshotting = run().finally(() => {
      this.snapshotting = null;
      this.writesFrozen = false;
      if (this.writesHead < this.writes.length) this.schedule();
      else this.maybeFinishDrain();
    });
    return this.snapshotting;
  }

  async snapshotNow(): Promise<void> {
    this.guard();
    await this.idle();
    this.guard();
    await this.takeSnapshot();
    if (this.lastSnapshotError) throw new Error(`snapshot failed: ${this.lastSnapshotError}`);
  }

  // ---------------------------------------------------------------- shutdown

  private isIdle(): boolean {
    return !this.flushing && !this.scheduled && !this.snapshotting && this.writesHead >= this.writes.length && this.reads.length === 0;
  }

  /** Resolves once everything queued so far is durable and answered. */
  idle(): Promise<void> {
    if (this.isIdle() || this.failure) return Promise.resolve();
    return new Promise<void>((resolve) => this.drained.push(resolve));
  }

  private maybeFinishDrain(): void {
    if (!(this.isIdle() || this.failure)) return;
    const waiters = this.drained;
    this.drained = [];
    for (const w of waiters) w();
  }

  async close(): Promise<void> {
    if (this.released) return;
    this.closing = true;
    await this.idle();
    this.release();
  }

  destroy(): void {
    if (this.released) return;
    this.closing = true;
    this.rejectQueued(new RequestError(ErrorCodes.ERR_CLIENT_CLOSED));
    if (this.isIdle()) this.release();
    else void this.idle().then(() => this.release());
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    try {
      this.writer.closeSync();
    } finally {
      this.lock.release();
    }
  }

  // ---------------------------------------------------------------- reads on the core

  get machine(): StateMachine {
    return this.core;
  }

  stats(): EmbeddedStats {
    const s = this.core.stats();
    return {
      accounts: s.accounts,
      transfers: s.transfers,
      pending_open: s.pending_open,
      commit_seq: this.seq,
      snapshot_seq: this.snapshotSeq,
      flushes: this.flushes,
      flushed_requests: this.flushedRequests,
      log_bytes_since_snapshot: this.logBytesSinceSnapshot,
      recovered_commits: this.recoveredCommits,
      torn_tail_truncated: this.tornTailTruncated,
      accepted_data_loss: this.acceptedDataLoss,
      open_restore_ms: Math.round(this.openRestoreMs),
      open_replay_ms: Math.round(this.openReplayMs),
      last_snapshot_error: this.lastSnapshotError,
      snapshots_taken: this.snapshotsTaken,
      last_snapshot_bytes: this.lastSnapshotBytes,
      last_snapshot_ms: Math.round(this.lastSnapshotMs),
      last_snapshot_pause_ms: Math.round(this.lastSnapshotPauseMs),
    };
  }
}

/**
 * Ledger files are the daemon user's alone (issue 12: under umask 022 the log was world-readable).
 * New files are created 0600 and directories 0700; a looser existing directory or file is tightened.
 */
function restrictModes(dir: string, log: EngineLog): void {
  const tighten = (p: string, mode: number): void => {
    const st = fs.statSync(p);
    if ((st.mode & 0o777) === mode) return;
    fs.chmodSync(p, mode);
    log.warn({ path: p, mode_was: (st.mode & 0o777).toString(8), mode_now: mode.toString(8) }, "embedded ledger: tightened the permissions of a ledger path");
  };
  tighten(dir, LEDGER_DIR_MODE);
  const l = listDataDir(dir);
  for (const f of [...l.segments, ...l.snapshots]) tighten(f.file, LEDGER_FILE_MODE);
}

function tooMuch(n: number): void {
  if (n > BATCH_MAX) throw new RequestError(ErrorCodes.ERR_TOO_MUCH_DATA);
}

function checkBatch<T>(batch: unknown, check: (v: unknown, i: number) => T): T[] {
  if (!Array.isArray(batch)) throw new TypeError("Batch must be an Array.");
  tooMuch(batch.length);
  const out = new Array<T>(batch.length);
  for (let i = 0; i < batch.length; i++) out[i] = check(batch[i], i);
  return out;
}

/**
 * A filter's limit is how many results it asks for; tigerbeetle-node refuses, before sending, a
 * request whose results cannot fit one reply (more than 8189) with ERR_TOO_MUCH_DATA.
 */
function checkLimit<F extends { limit: number }>(f: F): F {
  if (f.limit > BATCH_MAX) throw new RequestError(ErrorCodes.ERR_TOO_MUCH_DATA);
  return f;
}

/** Open (lock, recover) a data directory and return a Client over it. Synchronous. */
export function openEmbeddedClient(options: EmbeddedClientOptions, factory: StateMachineFactory): EmbeddedClient {
  const engine = new Engine(options, factory);
  const core = (): StateMachine => engine.machine;
  // Everything that can throw synchronously becomes a rejection, as in the real client.
  const attempt = <T>(f: () => Promise<T>): Promise<T> => {
    try {
      return f();
    } catch (err) {
      return Promise.reject(err);
    }
  };
  return {
    createAccounts: (batch: Account[]) =>
      attempt(() => {
        engine.guard();
        const events = checkBatch(batch, checkAccount);
        return engine.submitAccounts(events);
      }),
    createTransfers: (batch: Transfer[]) =>
      attempt(() => {
        engine.guard();
        if (!Array.isArray(batch)) throw new TypeError("Batch must be an Array.");
        tooMuch(batch.length);
        return engine.submitTransfers(checkAndEncodeTransfers(batch), batch.length);
      }),
    lookupAccounts: (batch: bigint[]) =>
      attempt(() => {
        engine.guard();
        const ids = checkBatch(batch, checkId);
        return engine.submitRead<Account[]>(() => core().lookupAccounts(ids));
      }),
    lookupTransfers: (batch: bigint[]) =>
      attempt(() => {
        engine.guard();
        const ids = checkBatch(batch, checkId);
        return engine.submitRead<Transfer[]>(() => core().lookupTransfers(ids));
      }),
    getAccountTransfers: (filter: AccountFilter) =>
      attempt(() => {
        engine.guard();
        const f = checkLimit(checkAccountFilter(filter));
        return engine.submitRead<Transfer[]>(() => core().getAccountTransfers(f));
      }),
    getAccountBalances: (filter: AccountFilter) =>
      attempt(() => {
        engine.guard();
        const f = checkLimit(checkAccountFilter(filter));
        return engine.submitRead<AccountBalance[]>(() => core().getAccountBalances(f));
      }),
    queryAccounts: (filter: QueryFilter) =>
      attempt(() => {
        engine.guard();
        const f = checkLimit(checkQueryFilter(filter));
        return engine.submitRead<Account[]>(() => core().queryAccounts(f));
      }),
    queryTransfers: (filter: QueryFilter) =>
      attempt(() => {
        engine.guard();
        const f = checkLimit(checkQueryFilter(filter));
        return engine.submitRead<Transfer[]>(() => core().queryTransfers(f));
      }),
    destroy: () => engine.destroy(),
    close: () => engine.close(),
    snapshot: () => engine.snapshotNow(),
    drain: () => engine.idle(),
    stats: () => engine.stats(),
  };
}
