/**
 * The write-ahead log on raw records: what survives a torn append, and what refuses to start.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LedgerCorruptionError } from "../../../src/ledger/embedded/files.js";
import { RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE, SegmentWriter, TORN_WRITE_ALIGN, scanSegment, sealRecord, type RecordHead } from "../../../src/ledger/embedded/wal.js";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "wal-test-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function record(seq: bigint, bodyLength: number, fill: number): Buffer {
  const buf = Buffer.alloc(RECORD_HEADER_SIZE + bodyLength);
  buf.fill(fill, RECORD_HEADER_SIZE);
  const head: RecordHead = { seq, kind: 2, now_ns: 1_000n * seq, count: bodyLength / 128 };
  sealRecord(buf, 0, head, bodyLength);
  return buf;
}

/** Writes records 1..n (body sizes cycling, or `bodyOf(i)`) through SegmentWriter; returns each record's end offset. */
async function writeLog(file: string, n: number, bodyOf: (i: number) => number = (i) => 128 * (1 + (i % 4))): Promise<number[]> {
  const w = SegmentWriter.create(file, 1n);
  const ends: number[] = [];
  for (let i = 1; i <= n; i++) {
    await w.append(record(BigInt(i), bodyOf(i), i));
    ends.push(w.size);
  }
  w.closeSync();
  return ends;
}

function readAll(file: string, isLast = true): { seqs: bigint[]; fills: number[]; scan: ReturnType<typeof scanSegment> } {
  const seqs: bigint[] = [];
  const fills: number[] = [];
  const scan = scanSegment(file, { isLast, firstSeq: 1n, repair: true }, (r) => {
    seqs.push(r.seq);
    fills.push(r.body.length ? r.body[0]! : -1);
    expect(r.now_ns).toBe(1_000n * r.seq);
  });
  return { seqs, fills, scan };
}

describe("write-ahead log", () => {
  it("reads back every appended record in order", async () => {
    const file = path.join(dir, "log.wal");
    await writeLog(file, 50);
    const { seqs, scan } = readAll(file);
    expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => BigInt(i + 1)));
    expect(scan.torn).toBeNull();
    expect(scan.lastSeq).toBe(50n);
  });

  it("starts every segment with a header: an empty or headerless segment is damage, not a fresh log", async () => {
    const file = path.join(dir, "log.wal");
    SegmentWriter.create(file, 1n).closeSync();
    expect(fs.statSync(file).size).toBe(SEGMENT_HEADER_SIZE);
    expect(readAll(file).seqs).toEqual([]);
    fs.truncateSync(file, 0);
    expect(() => readAll(file)).toThrow(/segment is empty/);
  });

  it("treats a last record cut at a page boundary as a torn tail: truncates it and keeps the rest", async () => {
    const file = path.join(dir, "log.wal");
    // Records of 3 pages each, so that page boundaries fall inside headers and bodies.
    const ends = await writeLog(file, 6, () => 128 * 96);
    const full = fs.readFileSync(file);
    const lastStart = ends[4]!;
    const cuts: number[] = [];
    for (let at = Math.ceil(lastStart / TORN_WRITE_ALIGN) * TORN_WRITE_ALIGN; at < full.length; at += TORN_WRITE_ALIGN) cuts.push(at);
    expect(cuts.length).toBeGreaterThan(2);
    for (const cut of cuts) {
      fs.writeFileSync(file, full.subarray(0, cut));
      const { seqs, scan } = readAll(file);
      expect(seqs.length).toBe(5);
      expect(scan.torn?.offset).toBe(lastStart);
      expect(fs.statSync(file).size).toBe(lastStart);
      // The engine continues: appending after the repair yields a clean log.
      const w = SegmentWriter.openExisting(file, 1n);
      await w.append(record(6n, 256, 99));
      w.closeSync();
      const again = readAll(file);
      expect(again.seqs.at(-1)).toBe(6n);
      expect(again.fills.at(-1)).toBe(99);
      expect(again.scan.torn).toBeNull();
    }
  });

  it("refuses a last record cut anywhere else: a crash cannot leave it, so it may be acknowledged data", async () => {
    const file = path.join(dir, "log.wal");
    const ends = await writeLog(file, 12);
    const full = fs.readFileSync(file);
    const lastStart = ends[10]!;
    for (const cut of [lastStart + 1, lastStart + 20, lastStart + RECORD_HEADER_SIZE, full.length - 7, full.length - 1]) {
      expect(cut % TORN_WRITE_ALIGN).not.toBe(0);
      fs.writeFileSync(file, full.subarray(0, cut));
      expect(() => readAll(file)).toThrow(`${file} is corrupt at byte offset ${lastStart}`);
      expect(fs.statSync(file).size).toBe(cut); // nothing was cut
    }
  });

  it("refuses a complete last record with a bad checksum", async () => {
    const file = path.join(dir, "log.wal");
    const ends = await writeLog(file, 8); // cut back to record 7 so it is the last one
    fs.truncateSync(file, ends[6]!);
    const bytes = fs.readFileSync(file);
    bytes[ends[6]! - 5] ^= 0xff; // inside the body of record 7
    fs.writeFileSync(file, bytes);
    expect(() => readAll(file)).toThrow(/corrupt at byte offset \d+: complete record with a body checksum mismatch/);
  });

  it("refuses a log damaged before its tail, naming the file and offset", async () => {
    const file = path.join(dir, "log.wal");
    const ends = await writeLog(file, 20);
    const bytes = fs.readFileSync(file);
    const victimStart = ends[8]!; // record 10
    bytes[victimStart + RECORD_HEADER_SIZE + 3] ^= 0x01;
    fs.writeFileSync(file, bytes);
    let err: unknown;
    try {
      readAll(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LedgerCorruptionError);
    expect((err as LedgerCorruptionError).offset).toBe(victimStart);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toContain(`offset ${victimStart}`);
    // Nothing was truncated: the damaged file is left for the operator.
    expect(fs.statSync(file).size).toBe(bytes.length);
  });

  it("refuses a damaged header in the middle, and any damage in a segment that is not the last", async () => {
    const file = path.join(dir, "log.wal");
    const ends = await writeLog(file, 10);
    const bytes = fs.readFileSync(file);
    bytes[ends[2]! + 4] ^= 0x10; // body length field of record 4
    fs.writeFileSync(file, bytes);
    expect(() => readAll(file)).toThrow(LedgerCorruptionError);

    const file2 = path.join(dir, "log2.wal");
    await writeLog(file2, 5);
    fs.truncateSync(file2, fs.statSync(file2).size - 3);
    expect(() => readAll(file2, false)).toThrow(/corrupt at byte offset/);
  });

  it("refuses a record whose sequence number breaks the chain", async () => {
    const file = path.join(dir, "log.wal");
    const w = SegmentWriter.create(file, 1n);
    await w.append(Buffer.concat([record(1n, 128, 1), record(3n, 128, 3)]));
    w.closeSync();
    expect(() => readAll(file)).toThrow(/commit seq 3, expected 2/);
  });
});
