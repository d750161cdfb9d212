/**
 * Many growable lists (one per account) in a shared pool of 4 MiB Uint32Array chunks, with no JS
 * object or ArrayBuffer per list: a million accounts cost two Uint32Arrays of owner state, not a
 * million typed arrays (which V8 tracks and sweeps one by one; ADR 0020).
 *
 * A list is a chain of blocks whose capacities double (8, 16, 32, ... elements); each block
 * starts with [address of the previous block + 1, level]. The owner keeps the address of its
 * largest block and its length. Element k lives in level L = floor(log2(k/8 + 1)) at offset
 * k - 8 * (2^L - 1), found by walking back from the largest block (at most ~24 steps).
 * Blocks are never freed: a list truncated by a rollback reuses its blocks when it grows again.
 */
/** Block address = chunk index * 2^20 + word offset (chunks of 2^20 words; big blocks get their own chunk). */
const CHUNK_WORDS = 1 << 20;
const HEADER = 2;

function levelOf(k: number): number {
  return 31 - Math.clz32((k >>> 3) + 1);
}
function baseOf(level: number): number {
  return 8 * ((1 << level) - 1);
}

export interface PooledListsMeta {
  owners: number;
  chunk_words: number[];
  bump_chunk: number;
  bump_off: number;
}

export class PooledLists {
  readonly stride: number;
  private pool: Uint32Array[] = [];
  private bumpChunk = -1;
  private bumpOff = CHUNK_WORDS;
  /** Per owner: address + 1 of its largest block (0 = none). */
  private head = new Uint32Array(1024);
  /** Per owner: number of elements. */
  private len = new Uint32Array(1024);
  /** Result of locate(): the chunk and word offset of the element. */
  chunk: Uint32Array = new Uint32Array(0);
  offset = 0;

  constructor(strideWords: number) {
    this.stride = strideWords;
  }

  private ensureOwner(o: number): void {
    if (o < this.head.length) return;
    let n = this.head.length;
    while (n <= o) n *= 2;
    const head = new Uint32Array(n);
    head.set(this.head);
    this.head = head;
    const len = new Uint32Array(n);
    len.set(this.len);
    this.len = len;
  }

  length(o: number): number {
    return o < this.len.length ? this.len[o]! : 0;
  }

  private allocate(level: number, prev: number): number {
    const words = HEADER + this.stride * (8 << level);
    let addr: number;
    if (words > CHUNK_WORDS / 2) {
      if (this.pool.length >= 4000) throw new Error("PooledLists: address space exhausted");
      this.pool.push(new Uint32Array(words));
      addr = (this.pool.length - 1) * CHUNK_WORDS;
    } else {
      if (this.bumpOff + words > CHUNK_WORDS) {
        if (this.pool.length >= 4000) throw new Error("PooledLists: address space exhausted");
        this.pool.push(new Uint32Array(CHUNK_WORDS));
        this.bumpChunk = this.pool.length - 1;
        this.bumpOff = 0;
      }
      addr = this.bumpChunk * CHUNK_WORDS + this.bumpOff;
      this.bumpOff += words;
    }
    const c = this.pool[addr >>> 20]!;
    const off = addr & 0xfffff;
    c[off] = prev;
    c[off + 1] = level;
    return addr;
  }

  /** Points `chunk`/`offset` at element k of owner o (k < capacity allocated so far). */
  locate(o: number, k: number): void {
    const level = levelOf(k);
    let addr = this.head[o]! - 1;
    for (;;) {
      const c = this.pool[addr >>> 20]!;
      const off = addr & 0xfffff;
      if (c[off + 1] === level) {
        this.chunk = c;
        this.offset = off + HEADER + this.stride * (k - baseOf(level));
        return;
      }
      addr = c[off]! - 1;
    }
  }

  /** Appends an element to owner o; `chunk`/`offset` point at it for the caller to fill. */
  push(o: number): void {
    this.ensureOwner(o);
    const k = this.len[o]!;
    const level = levelOf(k);
    let h = this.head[o]!;
    if (h === 0) {
      h = this.allocate(level, 0) + 1;
      this.head[o] = h;
    } else {
      const top = this.pool[(h - 1) >>> 20]![((h - 1) & 0xfffff) + 1]!;
      if (top < level) {
        h = this.allocate(level, h) + 1;
        this.head[o] = h;
      } else if (top > level) {
        // After a rollback: the block of this level exists further down the chain.
        this.len[o] = k + 1;
        this.locate(o, k);
        return;
      }
    }
    // Common case: appending into the largest block.
    this.len[o] = k + 1;
    this.chunk = this.pool[(h - 1) >>> 20]!;
    this.offset = ((h - 1) & 0xfffff) + HEADER + this.stride * (k - baseOf(level));
  }

  push1(o: number, v: number): void {
    this.push(o);
    this.chunk[this.offset] = v;
  }

  pop(o: number): void {
    this.len[o] = this.len[o]! - 1;
  }

  /** Element k of a stride-1 list. */
  get(o: number, k: number): number {
    this.locate(o, k);
    return this.chunk[this.offset]!;
  }

  /** Position of the first element >= v in a sorted stride-1 list. */
  lowerBound(o: number, v: number): number {
    let a = 0;
    let b = this.length(o);
    while (a < b) {
      const m = (a + b) >>> 1;
      if (this.get(o, m) < v) a = m + 1;
      else b = m;
    }
    return a;
  }

  /** Byte views of owner o's elements, in order (snapshots). */
  *views(o: number): Generator<Uint8Array> {
    const n = this.length(o);
    if (n === 0) return;
    const blocks: number[] = [];
    for (let addr = this.head[o]! - 1; addr >= 0; ) {
      const c = this.pool[addr >>> 20]!;
      const off = addr & 0xfffff;
      blocks.push(addr);
      addr = c[off]! - 1;
    }
    blocks.reverse();
    for (const addr of blocks) {
      const c = this.pool[addr >>> 20]!;
      const off = addr & 0xfffff;
      const level = c[off + 1]!;
      const base = baseOf(level);
      if (base >= n) break;
      const count = Math.min(n - base, 8 << level);
      const start = c.byteOffset + (off + HEADER) * 4;
      yield new Uint8Array(c.buffer, start, count * this.stride * 4);
    }
  }

  /** Snapshot description of the pool for `owners` owners (goes in the snapshot header). */
  snapshotMeta(owners: number): PooledListsMeta {
    return {
      owners,
      chunk_words: this.pool.map((c) => c.length),
      bump_chunk: this.bumpChunk,
      bump_off: this.bumpOff,
    };
  }

  /** Raw bytes of the pool: head and length of each owner, then every chunk. */
  *snapshotViews(owners: number): Generator<Uint8Array> {
    this.ensureOwner(Math.max(0, owners - 1));
    yield new Uint8Array(this.head.buffer, 0, owners * 4);
    yield new Uint8Array(this.len.buffer, 0, owners * 4);
    for (const c of this.pool) {
      const bytes = new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
      for (let i = 0; i < bytes.length; i += 1 << 24) yield bytes.subarray(i, Math.min(bytes.length, i + (1 << 24)));
    }
  }

  /** Allocates a pool described by `meta`; returns byte views to fill in snapshotViews order. */
  restoreAllocate(meta: PooledListsMeta): Uint8Array[] {
    const ok =
      Number.isInteger(meta.owners) &&
      meta.owners >= 0 &&
      Array.isArray(meta.chunk_words) &&
      meta.chunk_words.length <= 4000 &&
      meta.chunk_words.every((n) => Number.isInteger(n) && n > 0 && n <= 2 ** 31) &&
      Number.isInteger(meta.bump_chunk) &&
      meta.bump_chunk >= -1 &&
      meta.bump_chunk < meta.chunk_words.length &&
      Number.isInteger(meta.bump_off) &&
      meta.bump_off >= 0 &&
      meta.bump_off <= CHUNK_WORDS;
    if (!ok) throw new Error("snapshot list pool description is corrupt");
    this.head = new Uint32Array(Math.max(1024, meta.owners));
    this.len = new Uint32Array(Math.max(1024, meta.owners));
    this.pool = meta.chunk_words.map((n) => new Uint32Array(n));
    this.bumpChunk = meta.bump_chunk;
    this.bumpOff = meta.bump_off;
    return [
      new Uint8Array(this.head.buffer, 0, meta.owners * 4),
      new Uint8Array(this.len.buffer, 0, meta.owners * 4),
      ...this.pool.map((c) => new Uint8Array(c.buffer)),
    ];
  }

  memoryBytes(): number {
    let n = this.head.byteLength + this.len.byteLength;
    for (const c of this.pool) n += c.byteLength;
    return n;
  }
}
