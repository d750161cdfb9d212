/**
 * Snapshot files: written atomically, read back exactly, refused when damaged.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LedgerCorruptionError, listDataDir } from "../../../src/ledger/embedded/files.js";
import { readSnapshotChunks, readSnapshotSeq, writeSnapshot } from "../../../src/ledger/embedded/snapshot.js";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "snap-test-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function chunks(): Uint8Array[] {
  // Small chunks (coalesced), an empty one, and one bigger than the write buffer.
  const out: Uint8Array[] = [];
  for (let i = 0; i < 100; i++) out.push(Buffer.alloc(1000 + i, i));
  out.push(new Uint8Array(0));
  const big = Buffer.alloc(5 * 1024 * 1024 + 7);
  for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
  out.push(big);
  return out;
}

describe("snapshots", () => {
  it("round-trips the chunks and the commit seq, and leaves no temporary file", async () => {
    const written = await writeSnapshot(dir, 42n, chunks());
    expect(listDataDir(dir).snapshots.map((s) => s.seq)).toEqual([42n]);
    expect(listDataDir(dir).temps).toEqual([]);
    expect(readSnapshotSeq(written.file)).toBe(42n);
    const back = [...readSnapshotChunks(written.file)];
    const want = chunks();
    expect(back.length).toBe(want.length);
    for (let i = 0; i < want.length; i++) expect(Buffer.compare(Buffer.from(back[i]!), Buffer.from(want[i]!))).toBe(0);
  });

  it("lets the producer reuse one buffer for every chunk", async () => {
    const scratch = Buffer.alloc(64);
    function* reuse(): Generator<Uint8Array> {
      for (let i = 0; i < 10; i++) {
        scratch.fill(i);
        yield scratch;
      }
    }
    const w = await writeSnapshot(dir, 1n, reuse());
    expect([...readSnapshotChunks(w.file)].map((c) => c[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("refuses a damaged snapshot, naming the file and offset", async () => {
    const w = await writeSnapshot(dir, 7n, chunks());
    const bytes = fs.readFileSync(w.file);
    const at = 32 + 8 + 1000 + 8 + 500; // inside the second chunk
    bytes[at] ^= 0x55;
    fs.writeFileSync(w.file, bytes);
    let err: unknown;
    try {
      for (const _ of readSnapshotChunks(w.file)) void _;
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LedgerCorruptionError);
    expect((err as Error).message).toContain(w.file);
    expect((err as LedgerCorruptionError).offset).toBe(32 + 8 + 1000);
  });

  it("refuses a truncated snapshot", async () => {
    const w = await writeSnapshot(dir, 7n, chunks());
    fs.truncateSync(w.file, fs.statSync(w.file).size - 10);
    expect(() => [...readSnapshotChunks(w.file)]).toThrow(/trailer/);
  });
});
