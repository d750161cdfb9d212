/**
 * Fixed-size records packed in chunked Uint32Array arenas (see ADR 0020).
 *
 * Record `r` lives in chunk `r >>> shift` at word offset `(r & mask) * stride`. Chunks are
 * allocated on demand and never copied, so growth costs no transient 2x memory and the records
 * of a 10M-transfer ledger are ~150 typed arrays rather than 10M JS objects.
 */
import { hash128 } from "./words.js";

export class RecordArena {
  readonly stride: number;
  readonly shift: number;
  readonly mask: number;
  readonly chunks: Uint32Array[] = [];
  count = 0;
  /** Records below this index may hold stale words (after pop). */
  private highWater = 0;

  constructor(strideWords: number, chunkShift: number) {
    this.stride = strideWords;
    this.shift = chunkShift;
    this.mask = (1 << chunkShift) - 1;
  }

  get chunkRecords(): number {
    return 1 << this.shift;
  }

  /** Appends a zeroed record and returns its index. */
  append(): number {
    const r = this.count;
    const c = r >>> this.shift;
    let chunk = this.chunks[c];
    if (chunk === undefined) {
      chunk = new Uint32Array(this.stride << this.shift);
      this.chunks.push(chunk);
    } else if (r < this.highWater) {
      // Reusing a slot freed by a rollback: clear it.
      const o = (r & this.mask) * this.stride;
      chunk.fill(0, o, o + this.stride);
    }
    this.count = r + 1;
    if (this.count > this.highWater) this.highWater = this.count;
    return r;
  }

  /** Removes the last record (rollback of a linked chain). */
  pop(): void {
    this.count--;
  }

  chunk(r: number): Uint32Array {
    return this.chunks[r >>> this.shift]!;
  }

  offset(r: number): number {
    return (r & this.mask) * this.stride;
  }

  /** Views over the used bytes, in order (for snapshots). */
  *views(): Generator<Uint8Array> {
    let left = this.count;
    for (const chunk of this.chunks) {
      if (left <= 0) break;
      const n = Math.min(left, 1 << this.shift);
      yield new Uint8Array(chunk.buffer, chunk.byteOffset, n * this.stride * 4);
      left -= n;
    }
  }

  /** Allocates chunks for `count` records (restore); returns byte views to fill in order. */
  allocateForRestore(count: number): Uint8Array[] {
    this.chunks.length = 0;
    this.count = count;
    this.highWater = count;
    const out: Uint8Array[] = [];
    let left = count;
    while (left > 0) {
      const chunk = new Uint32Array(this.stride << this.shift);
      this.chunks.push(chunk);
      const n = Math.min(left, 1 << this.shift);
      out.push(new Uint8Array(chunk.buffer, 0, n * this.stride * 4));
      left -= n;
    }
    return out;
  }
}

/**
 * Open-addressing (linear probing) hash index: 128-bit id -> record index, over an arena whose
 * records start with the id in words 0..3. Slot i is two adjacent words: `record + 1` (0 = empty)
 * and the 32-bit hash as a tag, so a probe is one cache line and rarely touches the records.
 * Deletion (only used to roll back a linked chain) uses backward-shift deletion.
 */
export class IdIndex {
  /** table[2i] = record + 1 (0 = empty), table[2i + 1] = hash tag. */
  private table: Uint32Array;
  private mask: number;
  size = 0;

  constructor(
    private readonly arena: RecordArena,
    initialCapacityLog2 = 10,
  ) {
    this.table = new Uint32Array(2 << initialCapacityLog2);
    this.mask = (1 << initialCapacityLog2) - 1;
  }

  /** Record index of the id given as words, or -1. */
  find(a: number, b: number, c: number, d: number): number {
    const h = hash128(a, b, c, d);
    const table = this.table;
    const mask = this.mask;
    const arena = this.arena;
    const shift = arena.shift;
    const amask = arena.mask;
    const stride = arena.stride;
    let i = h & mask;
    for (;;) {
      const s = table[2 * i]!;
      if (s === 0) return -1;
      if (table[2 * i + 1] === h) {
        const r = s - 1;
        const w = arena.chunks[r >>> shift]!;
        const o = (r & amask) * stride;
        if (w[o] === a && w[o + 1] === b && w[o + 2] === c && w[o + 3] === d) return r;
      }
      i = (i + 1) & mask;
    }
  }

  /** Inserts record `r` (its id must not be present). */
  insert(r: number): void {
    if ((this.size + 1) * 10 > (this.mask + 1) * 7) this.grow();
    const w = this.arena.chunk(r);
    const o = this.arena.offset(r);
    const h = hash128(w[o]!, w[o + 1]!, w[o + 2]!, w[o + 3]!);
    this.place(r + 1, h);
    this.size++;
  }

  private place(slotValue: number, h: number): void {
    const mask = this.mask;
    const table = this.table;
    let i = h & mask;
    while (table[2 * i] !== 0) i = (i + 1) & mask;
    table[2 * i] = slotValue;
    table[2 * i + 1] = h;
  }

  /** Removes record `r` (which must be present). */
  remove(r: number): void {
    const mask = this.mask;
    const table = this.table;
    const w = this.arena.chunk(r);
    const o = this.arena.offset(r);
    const h = hash128(w[o]!, w[o + 1]!, w[o + 2]!, w[o + 3]!);
    let i = h & mask;
    while (table[2 * i] !== r + 1) {
      if (table[2 * i] === 0) throw new Error("IdIndex.remove: record not indexed");
      i = (i + 1) & mask;
    }
    // Backward-shift deletion keeps every remaining key reachable from its home slot.
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const s = table[2 * j]!;
      if (s === 0) break;
      const home = table[2 * j + 1]! & mask;
      // Move j into the hole at i unless its home lies cyclically in (i, j].
      const between = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!between) {
        table[2 * i] = s;
        table[2 * i + 1] = table[2 * j + 1]!;
        i = j;
      }
    }
    table[2 * i] = 0;
    table[2 * i + 1] = 0;
    this.size--;
  }

  private grow(): void {
    const old = this.table;
    const cap = (this.mask + 1) * 2;
    this.table = new Uint32Array(2 * cap);
    this.mask = cap - 1;
    for (let i = 0; i < old.length; i += 2) {
      const s = old[i]!;
      if (s !== 0) this.place(s, old[i + 1]!);
    }
  }

  /** Pre-sizes the table for `n` entries. */
  reserve(n: number): void {
    while (n * 10 > (this.mask + 1) * 7) this.grow();
  }

  /** log2 of the slot count (snapshot header). */
  get capacityLog2(): number {
    return Math.log2(this.mask + 1);
  }

  /** Byte views of the table (for snapshots), in pieces of at most 16 MiB. */
  *views(): Generator<Uint8Array> {
    const bytes = new Uint8Array(this.table.buffer, this.table.byteOffset, this.table.byteLength);
    for (let i = 0; i < bytes.length; i += 1 << 24) yield bytes.subarray(i, Math.min(bytes.length, i + (1 << 24)));
  }

  /** Allocates a table of 2^log2 slots holding `size` entries; returns views to fill in order. */
  allocateForRestore(log2: number, size: number): Uint8Array[] {
    this.table = new Uint32Array(2 << log2);
    this.mask = (1 << log2) - 1;
    this.size = size;
    return [new Uint8Array(this.table.buffer)];
  }

  memoryBytes(): number {
    return this.table.byteLength;
  }
}

/** Growable Uint32 list. */
export class U32List {
  data: Uint32Array;
  length = 0;
  constructor(capacity = 4) {
    this.data = new Uint32Array(capacity);
  }
  push(v: number): void {
    if (this.length === this.data.length) this.reserve(this.length + 1);
    this.data[this.length++] = v;
  }
  /** Make room for at least `capacity` words (`data` may be replaced; `length` is unchanged). */
  reserve(capacity: number): void {
    if (capacity <= this.data.length) return;
    const next = new Uint32Array(Math.max(8, capacity, Math.ceil(this.data.length * 1.5)));
    next.set(this.data);
    this.data = next;
  }
}
