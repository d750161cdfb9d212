/**
 * Data-directory layout and small filesystem helpers shared by the log, snapshots and lock.
 *
 *   <dataDir>/LOCK                               owner pid (see lock.ts)
 *   <dataDir>/log-<first seq, 20 digits>.wal     append-only log segments (see wal.ts)
 *   <dataDir>/snapshot-<seq, 20 digits>.snap     state after commit <seq> (see snapshot.ts)
 *   <dataDir>/*.tmp                              unfinished snapshots; deleted on open
 */
import fs from "node:fs";
import path from "node:path";

/** Raised when on-disk state is damaged somewhere a crash cannot explain: the engine refuses to start. */
export class LedgerCorruptionError extends Error {
  readonly file: string;
  /** Byte offset of the damage, or -1 when the file as a whole is unusable. */
  readonly offset: number;
  constructor(file: string, offset: number, reason: string) {
    const where = offset >= 0 ? `is corrupt at byte offset ${offset}` : "is unusable";
    super(`embedded ledger: ${file} ${where}: ${reason}; refusing to start (restore the data directory from a backup, or move the damaged file aside knowingly)`);
    this.name = "LedgerCorruptionError";
    this.file = file;
    this.offset = offset;
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

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.promises.open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
