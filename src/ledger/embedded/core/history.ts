/**
 * Balance history of `flags.history` accounts without a row per transfer (ADR 0020).
 *
 * An account's balances are checkpointed right before its transfer-list entries 32, 64, ... and
 * right before the first entry after an expiry touched the account (`dirty`), so the balances
 * after any entry are a checkpoint plus at most 31 transfers folded forward (an expiry is never
 * inside a fold). The checkpoint before entry 0 is implicit: balances are zero before an
 * account's first transfer. Storage: ~2 bytes per transfer, in pooled lists (no per-account
 * objects).
 */
import { PooledLists } from "./pooled-lists.js";

/** One checkpoint every CHECKPOINT_EVERY entries of an account's transfer list. */
export const CHECKPOINT_EVERY = 32;

export class HistoryStore {
  /** Per account: list positions of its explicit checkpoints, ascending. */
  readonly positions = new PooledLists(1);
  /** Per account: balances (16 words: dp, dpo, cp, cpo as u128) before the entry at the position. */
  readonly rows = new PooledLists(16);
  /** Per account: an expiry changed the balances since its last entry. */
  dirty = new Uint8Array(1024);

  count(a: number): number {
    return this.positions.length(a);
  }

  isDirty(a: number): boolean {
    return a < this.dirty.length && this.dirty[a] === 1;
  }

  setDirty(a: number, v: boolean): void {
    if (a >= this.dirty.length) {
      let n = this.dirty.length;
      while (n <= a) n *= 2;
      const next = new Uint8Array(n);
      next.set(this.dirty);
      this.dirty = next;
    }
    this.dirty[a] = v ? 1 : 0;
  }

  /** Records a checkpoint before list entry `j` of account a; w[o..o+15] = current balances. */
  add(a: number, j: number, w: Uint32Array, o: number): void {
    this.positions.push1(a, j);
    const rows = this.rows;
    rows.push(a);
    const c = rows.chunk;
    const p = rows.offset;
    for (let k = 0; k < 16; k++) c[p + k] = w[o + k]!;
    if (this.isDirty(a)) this.dirty[a] = 0;
  }

  /** Account a's list was truncated to `length` entries (chain rollback). */
  truncate(a: number, length: number): void {
    let n = this.count(a);
    while (n > 0 && this.positions.get(a, n - 1) >= length) {
      this.positions.pop(a);
      this.rows.pop(a);
      n--;
    }
  }

  /** Index of the last explicit checkpoint at or before list position k, or -1 (implicit zero at 0). */
  checkpointAtOrBefore(a: number, k: number): number {
    let lo = 0;
    let hi = this.count(a);
    while (lo < hi) {
      const m = (lo + hi) >>> 1;
      if (this.positions.get(a, m) <= k) lo = m + 1;
      else hi = m;
    }
    return lo - 1;
  }

  position(a: number, ci: number): number {
    return ci < 0 ? 0 : this.positions.get(a, ci);
  }

  /** Loads checkpoint ci's balances into out[p..p+15]. */
  load(a: number, ci: number, out: Uint32Array, p: number): void {
    if (ci < 0) {
      out.fill(0, p, p + 16);
      return;
    }
    this.rows.locate(a, ci);
    const c = this.rows.chunk;
    const o = this.rows.offset;
    for (let k = 0; k < 16; k++) out[p + k] = c[o + k]!;
  }
}
