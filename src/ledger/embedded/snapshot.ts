/**
 * Snapshot files: the state machine's `snapshotChunks()` after commit `seq`, framed and checksummed.
 *
 * Layout (little endian):
 *   header  32 bytes: u32 magic "MQS1", u32 version 1, u64 seq, u64 0, u32 0, u32 crc32(bytes 0..27)
 *   chunks  repeated: u32 length, u32 crc32(chunk), chunk bytes
 *   trailer 24 bytes: u32 0xFFFFFFFF, u32 chunk count, u64 total chunk bytes,
 *                     u32 running crc32 of all chunk bytes, u32 crc32(trailer bytes 0..19)
 *
 * Written atomically: `<name>.tmp`, fsync, rename, fsync the directory. A snapshot file that exists
 * under its final name was therefore completely written, so any checksum failure in it is
 * corruption (never a crash) and the engine refuses to start.
 */
import fs from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import { LEDGER_FILE_MODE, LedgerCorruptionError, snapshotName } from "./files.js";
import { fsyncDirAsync, nodeLogFileOps, type LogFileOps } from "./wal.js";

const MAGIC = 0x3153514d; // bytes "MQS1"
const VERSION = 1;
const HEADER_SIZE = 32;
const FRAME_SIZE = 8;
const TRAILER_SIZE = 24;
const TRAILER_MARK = 0xffff_ffff;
/** Small chunks are coalesced into writes of about this size. */
const WRITE_BUFFER = 4 * 1024 * 1024;
/**
 * By default fdatasync the snapshot every 16 MiB (like RocksDB's bytes_per_sync): on ext4 a log
 * commit can have to wait for other dirty data to reach the disk, so a snapshot written while the
 * log keeps fsyncing must not pile up hundreds of MiB of it. (0: sync once at the end, for when
 * nothing else is writing.)
 */
const SYNC_EVERY = 16 * 1024 * 1024;

export interface SnapshotWritten {
  file: string;
  bytes: number;
  chunks: number;
}

function writeAll(ops: LogFileOps, fd: number, data: Uint8Array, position: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const step = (off: number): void => {
      if (off >= data.length) return resolve();
      ops.write(fd, data, off, data.length - off, position + off, (err, n) => (err ? reject(err) : step(off + n)));
    };
    step(0);
  });
}

/**
 * Write `chunks` as the snapshot after commit `seq` into `dir`, atomically. Each chunk is copied or
 * written before the next one is pulled, so the producer may reuse its buffers. The caller must
 * keep the state machine unchanged until this resolves.
 */
export async function writeSnapshot(dir: string, seq: bigint, chunks: Iterable<Uint8Array>, opts: { syncEveryBytes?: number; ops?: LogFileOps } = {}): Promise<SnapshotWritten> {
  const syncEvery = opts.syncEveryBytes ?? SYNC_EVERY;
  const ops = opts.ops ?? nodeLogFileOps;
  const final = path.join(dir, snapshotName(seq));
  const tmp = `${final}.tmp`;
  const { O_WRONLY, O_CREAT, O_TRUNC } = fs.constants;
  const fd = ops.open(tmp, O_WRONLY | O_CREAT | O_TRUNC, LEDGER_FILE_MODE);
  let position = 0;
  let count = 0;
  let total = 0;
  let running = 0;
  try {
    const buf = Buffer.allocUnsafe(WRITE_BUFFER);
    let used = 0;
    let unsynced = 0;
    const written = async (n: number): Promise<void> => {
      position += n;
      unsynced += n;
      if (syncEvery > 0 && unsynced >= syncEvery) {
        unsynced = 0;
        await new Promise<void>((resolve, reject) => ops.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
      }
    };
    const flush = async (): Promise<void> => {
      if (used === 0) return;
      await writeAll(ops, fd, buf.subarray(0, used), position);
      const n = used;
      used = 0;
      await written(n);
    };
    buf.writeUInt32LE(MAGIC, 0);
    buf.writeUInt32LE(VERSION, 4);
    buf.writeBigUInt64LE(seq, 8);
    buf.fill(0, 16, 28);
    buf.writeUInt32LE(crc32(buf.subarray(0, 28)), 28);
    used = HEADER_SIZE;
    for (const chunk of chunks) {
      if (chunk.length >= TRAILER_MARK) throw new Error(`snapshot chunk of ${chunk.length} bytes is too large`);
      const c = crc32(chunk);
      running = crc32(chunk, running);
      if (used + FRAME_SIZE > buf.length) await flush();
      buf.writeUInt32LE(chunk.length, used);
      buf.writeUInt32LE(c, used + 4);
      used += FRAME_SIZE;
      if (used + chunk.length <= buf.length) {
        buf.set(chunk, used);
        used += chunk.length;
      } else {
        await flush();
        await writeAll(ops, fd, chunk, position);
        await written(chunk.length);
      }
      count++;
      total += chunk.length;
    }
    if (used + TRAILER_SIZE > buf.length) await flush();
    const t = buf.subarray(used, used + TRAILER_SIZE);
    t.writeUInt32LE(TRAILER_MARK, 0);
    t.writeUInt32LE(count, 4);
    t.writeBigUInt64LE(BigInt(total), 8);
    t.writeUInt32LE(running, 16);
    t.writeUInt32LE(crc32(t.subarray(0, 20)), 20);
    used += TRAILER_SIZE;
    await flush();
    await new Promise<void>((resolve, reject) => ops.fsync(fd, (err) => (err ? reject(err) : resolve())));
  } catch (err) {
    ops.close(fd);
    ops.unlink(tmp);
    throw err;
  }
  ops.close(fd);
  ops.rename(tmp, final);
  await fsyncDirAsync(ops, dir);
  return { file: final, bytes: position, chunks: count };
}

/** Read the header of a snapshot file (throws LedgerCorruptionError if it does not verify). */
export function readSnapshotSeq(file: string): bigint {
  const fd = fs.openSync(file, "r");
  try {
    const h = Buffer.alloc(HEADER_SIZE);
    const n = fs.readSync(fd, h, 0, HEADER_SIZE, 0);
    if (n < HEADER_SIZE) throw new LedgerCorruptionError(file, 0, "snapshot header is truncated");
    if (h.readUInt32LE(0) !== MAGIC) throw new LedgerCorruptionError(file, 0, "bad snapshot magic");
    if (crc32(h.subarray(0, 28)) !== h.readUInt32LE(28)) throw new LedgerCorruptionError(file, 0, "snapshot header checksum mismatch");
    const version = h.readUInt32LE(4);
    if (version !== VERSION) throw new LedgerCorruptionError(file, 4, `unsupported snapshot version ${version}`);
    return h.readBigUInt64LE(8);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Iterate the verified chunks of a snapshot file, synchronously (restore runs while the engine
 * opens). Each chunk is checksummed before it is yielded and the trailer is checked before the
 * iteration ends, so a consumer that runs to completion has seen exactly what was written.
 */
export function* readSnapshotChunks(file: string): Generator<Uint8Array, void, undefined> {
  const fd = fs.openSync(file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    readSnapshotSeq(file);
    let pos = HEADER_SIZE;
    let count = 0;
    let total = 0;
    let running = 0;
    const frame = Buffer.alloc(TRAILER_SIZE);
    for (;;) {
      if (pos + FRAME_SIZE > size) throw new LedgerCorruptionError(file, pos, "snapshot ends before its trailer");
      fs.readSync(fd, frame, 0, FRAME_SIZE, pos);
      const len = frame.readUInt32LE(0);
      if (len === TRAILER_MARK) {
        if (pos + TRAILER_SIZE !== size) throw new LedgerCorruptionError(file, pos, "snapshot trailer is not at the end of the file");
        fs.readSync(fd, frame, 0, TRAILER_SIZE, pos);
        if (crc32(frame.subarray(0, 20)) !== frame.readUInt32LE(20)) throw new LedgerCorruptionError(file, pos, "snapshot trailer checksum mismatch");
        if (frame.readUInt32LE(4) !== count || frame.readBigUInt64LE(8) !== BigInt(total) || frame.readUInt32LE(16) !== running) {
          throw new LedgerCorruptionError(file, pos, "snapshot trailer does not match its chunks");
        }
        return;
      }
      const want = frame.readUInt32LE(4);
      if (pos + FRAME_SIZE + len > size) throw new LedgerCorruptionError(file, pos, `snapshot chunk of ${len} bytes runs past the end of the file`);
      const chunk = Buffer.allocUnsafe(len);
      let off = 0;
      while (off < len) off += fs.readSync(fd, chunk, off, len - off, pos + FRAME_SIZE + off);
      if (crc32(chunk) !== want) throw new LedgerCorruptionError(file, pos, "snapshot chunk checksum mismatch");
      running = crc32(chunk, running);
      count++;
      total += len;
      pos += FRAME_SIZE + len;
      yield chunk;
    }
  } finally {
    fs.closeSync(fd);
  }
}
