/**
 * Balance history of one `flags.history` account: one row per transfer of the account, in the
 * same order as the account's transfer list (row k belongs to the account's k-th transfer, so
 * rows need not store the transfer). A row holds debits_pending, debits_posted, credits_pending,
 * credits_posted after the transfer. While every balance fits in 64 bits a row is 8 words
 * (32 bytes); the first balance above 2^64 converts the account's rows to 16 words once.
 */
const EMPTY_ROWS = new Uint32Array(0);

export class HistoryRows {
  data: Uint32Array;
  rows = 0;
  wide: boolean;

  constructor(capacityRows = 4, wide = false) {
    this.wide = wide;
    this.data = capacityRows === 0 ? EMPTY_ROWS : new Uint32Array(capacityRows * (wide ? 16 : 8));
  }

  get stride(): number {
    return this.wide ? 16 : 8;
  }

  /** Appends the 16 balance words at w[o..o+15] (4 little-endian u128). */
  push(w: Uint32Array, o: number): void {
    if (!this.wide && (w[o + 2]! | w[o + 3]! | w[o + 6]! | w[o + 7]! | w[o + 10]! | w[o + 11]! | w[o + 14]! | w[o + 15]!) !== 0) {
      this.widen();
    }
    const stride = this.stride;
    let at = this.rows * stride;
    if (at + stride > this.data.length) {
      const next = new Uint32Array(Math.max(this.data.length + stride * 4, Math.ceil(this.data.length * 1.5)));
      next.set(this.data.subarray(0, at));
      this.data = next;
    }
    const d = this.data;
    if (stride === 16) {
      for (let k = 0; k < 16; k++) d[at + k] = w[o + k]!;
    } else {
      for (let k = 0; k < 16; k += 4) {
        d[at++] = w[o + k]!;
        d[at++] = w[o + k + 1]!;
      }
    }
    this.rows++;
  }

  pop(): void {
    this.rows--;
  }

  /** Copies row k's 16 balance words into out[p..p+15]. */
  read(k: number, out: Uint32Array, p: number): void {
    const d = this.data;
    if (this.wide) {
      const at = k * 16;
      for (let j = 0; j < 16; j++) out[p + j] = d[at + j]!;
    } else {
      let at = k * 8;
      for (let j = 0; j < 16; j += 4) {
        out[p + j] = d[at++]!;
        out[p + j + 1] = d[at++]!;
        out[p + j + 2] = 0;
        out[p + j + 3] = 0;
      }
    }
  }

  private widen(): void {
    const next = new Uint32Array(Math.max(16 * 4, this.rows * 16 * 2));
    const d = this.data;
    for (let k = 0; k < this.rows; k++) {
      for (let j = 0; j < 4; j++) {
        next[k * 16 + j * 4] = d[k * 8 + j * 2]!;
        next[k * 16 + j * 4 + 1] = d[k * 8 + j * 2 + 1]!;
      }
    }
    this.data = next;
    this.wide = true;
  }

  /** Used words, for snapshots. */
  usedBytes(): Uint8Array {
    return new Uint8Array(this.data.buffer, this.data.byteOffset, this.rows * this.stride * 4);
  }
}

/** One checkpoint every CHECKPOINT_EVERY entries of an account's transfer list. */
export const CHECKPOINT_EVERY = 32;

/**
 * Balance history of a `flags.history` account without a row per transfer: the account's
 * balances are checkpointed right before its list entries 32, 64, ... and right before the first
 * entry after an expiry touched the account (`dirty`), so the balances after any entry are a
 * checkpoint plus at most 31 transfers folded forward (expiries are never inside a fold). The
 * checkpoint before entry 0 is implicit: an account's balances are zero before its first
 * transfer. Costs ~1.1 bytes per transfer instead of 32-64 for stored rows (ADR 0020), and
 * nothing for accounts with fewer than 32 transfers and no expiry.
 */
export class BalanceHistory {
  /** List positions of the explicit checkpoints, ascending. */
  positions: Uint32Array = EMPTY;
  count = 0;
  /** Balances (16 words) before the entry at the matching position. */
  rows: HistoryRows = new HistoryRows(0);
  /** An expiry changed the balances since the last entry. */
  dirty = false;

  /** Records a checkpoint before list entry `j`; w[o..o+15] = current balances. */
  add(j: number, w: Uint32Array, o: number): void {
    if (this.count === this.positions.length) {
      const next = new Uint32Array(Math.max(4, this.count * 2));
      next.set(this.positions);
      this.positions = next;
    }
    this.positions[this.count++] = j;
    this.rows.push(w, o);
    this.dirty = false;
  }

  /** The account's list was truncated to `length` entries (chain rollback). */
  truncate(length: number): void {
    while (this.count > 0 && this.positions[this.count - 1]! >= length) {
      this.count--;
      this.rows.pop();
    }
  }

  /** Index of the last explicit checkpoint at or before list position k, or -1 (implicit zero at 0). */
  checkpointAtOrBefore(k: number): number {
    let a = 0;
    let b = this.count;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (this.positions[m]! <= k) a = m + 1;
      else b = m;
    }
    return a - 1;
  }

  /** Position of checkpoint `ci` (-1 = the implicit one at 0). */
  position(ci: number): number {
    return ci < 0 ? 0 : this.positions[ci]!;
  }

  /** Loads checkpoint `ci`'s balances into out[p..p+15]. */
  load(ci: number, out: Uint32Array, p: number): void {
    if (ci < 0) out.fill(0, p, p + 16);
    else this.rows.read(ci, out, p);
  }
}

const EMPTY = new Uint32Array(0);
