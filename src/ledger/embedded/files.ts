/**
 * Data-directory layout and small filesystem helpers shared by the log, snapshots and lock.
 *
 *   <dataDir>/LOCK                               owner pid (see lock.ts)
 *   <dataDir>/log-<first seq, 20 digits>.wal     append-only log segments (see wal.ts)
 *   <dataDir>/snapshot-<seq, 20 digits>.snap     state after commit <seq> (see snapshot.ts)
 *   <dataDir>/*.tmp                              unfinished snapshots or segments; deleted on open
 *   <dataDir>/*.damaged                          log bytes set aside when an operator accepted a loss
 */
import fs from "node:fs";
import path from "node:path";

/** Ledger files are private to the daemon's user whatever the umask (issue 12). */
export const LEDGER_FILE_MODE = 0o600;
export const LEDGER_DIR_MODE = 0o700;

/**
 * What accepting a damage throws away: everything in the log from `offset` in `file` on (and any
 * later segment), or a missing segment `file` that recovery then creates empty.
 */
export type DataLoss = { kind: "cut"; file: string; offset: number } | { kind: "missing"; file: string; seq: bigint };

/** The value of LEDGER_ACCEPT_DATA_LOSS (engine option `acceptDataLoss`) that accepts this loss. */
export function acceptToken(loss: DataLoss): string {
  return loss.kind === "cut" ? `${path.basename(loss.file)}@${loss.offset}` : `${path.basename(loss.file)}@missing`;
}

/**
 * Raised when on-disk state is damaged somewhere a crash cannot explain: the engine refuses to
 * start. When the damage can be accepted (the log from some point on is dropped), `loss` says what
 * and `acceptToken` is the value that accepts exactly this damage and no other.
 */
export class LedgerCorruptionError extends Error {
  readonly file: string;
  /** Byte offset of the damage, or -1 when the file as a whole is unusable. */
  readonly offset: number;
  readonly loss: DataLoss | null;
  readonly acceptToken: string | null;
  constructor(file: string, offset: number, reason: string, loss: DataLoss | null = null) {
    const where = offset >= 0 ? `is corrupt at byte offset ${offset}` : "is unusable";
    const token = loss ? acceptToken(loss) : null;
    const how = token
      ? `restore the data directory from a backup, or accept losing every commit from this point on by restarting once with LEDGER_ACCEPT_DATA_LOSS=${token} (damaged bytes are kept beside the log as *.damaged files)`
      : "restore the data directory from a backup";
    super(`embedded ledger: ${file} ${where}: ${reason}; refusing to start (${how})`);
    this.name = "LedgerCorruptionError";
    this.file = file;
    this.offset = offset;
    this.loss = loss;
    this.acceptToken = token;
  }
}

const SEQ_DIGITS = 20;

export function segmentName(firstSeq: bigint): string {
  return `log-${firstSeq.toString().padStart(SEQ_DIGITS, "0")}.wal`;
}
export function snapshotName(seq: bigint): string {
  return `snapshot-${seq.toString().padStart(SEQ_DIGITS, "0")}.snap`;
}

export interface DirListing {
  segments: { seq: bigint; file: string }[];
  snapshots: { seq: bigint; file: string }[];
  temps: string[];
}

export function listDataDir(dir: string): DirListing {
  const segments: DirListing["segments"] = [];
  const snapshots: DirListing["snapshots"] = [];
  const temps: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    let m = /^log-(\d{20})\.wal$/.exec(name);
    if (m) {
      segments.push({ seq: BigInt(m[1]!), file: path.join(dir, name) });
      continue;
    }
    m = /^snapshot-(\d{20})\.snap$/.exec(name);
    if (m) {
      snapshots.push({ seq: BigInt(m[1]!), file: path.join(dir, name) });
      continue;
    }
    if (name.endsWith(".tmp")) temps.push(path.join(dir, name));
  }
  const bySeq = (a: { seq: bigint }, b: { seq: bigint }): number => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0);
  segments.sort(bySeq);
  snapshots.sort(bySeq);
  return { segments, snapshots, temps };
}

/** fsync a directory so that creates, renames and unlinks in it are durable. */
export function fsyncDirSync(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether `dir` holds an embedded ledger (any log segment or snapshot). False if it does not exist. */
export function hasLedgerState(dir: string): boolean {
  if (!fs.existsSync(dir)) return false;
  const l = listDataDir(dir);
  return l.segments.length > 0 || l.snapshots.length > 0;
}
