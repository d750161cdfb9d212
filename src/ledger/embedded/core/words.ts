/**
 * 128-bit and 64-bit unsigned integers stored as little-endian 32-bit words inside Uint32Arrays.
 *
 * The engine keeps every account and transfer as packed words (see ADR 0020) so the hot path of
 * create_transfers does its balance arithmetic on words instead of allocating BigInts. BigInts
 * appear only at the API edge (decoding the caller's objects and building result objects).
 */

export const U128_MAX = (1n << 128n) - 1n;
export const U64_MAX = (1n << 64n) - 1n;
const TWO32 = 0x1_0000_0000;

const B64 = new BigUint64Array(2);
const BW = new Uint32Array(B64.buffer);

/** Writes `x` (0 <= x < 2^128) as 4 words at w[o..o+3]. Throws on out-of-range values. */
export function put128(x: bigint, w: Uint32Array, o: number, field: string): void {
  if (x === 0n) {
    w[o] = 0;
    w[o + 1] = 0;
    w[o + 2] = 0;
    w[o + 3] = 0;
    return;
  }
  if (typeof x !== "bigint" || x < 0n || x > U128_MAX) {
    throw new RangeError(`${field} must be a bigint in [0, 2^128): got ${String(x)}`);
  }
  B64[0] = x;
  B64[1] = x >> 64n;
  w[o] = BW[0]!;
  w[o + 1] = BW[1]!;
  w[o + 2] = BW[2]!;
  w[o + 3] = BW[3]!;
}

/** Writes `x` (0 <= x < 2^64) as 2 words at w[o..o+1]. */
export function put64(x: bigint, w: Uint32Array, o: number, field: string): void {
  if (x === 0n) {
    w[o] = 0;
    w[o + 1] = 0;
    return;
  }
  if (typeof x !== "bigint" || x < 0n || x > U64_MAX) {
    throw new RangeError(`${field} must be a bigint in [0, 2^64): got ${String(x)}`);
  }
  B64[0] = x;
  w[o] = BW[0]!;
  w[o + 1] = BW[1]!;
}

export function get128(w: Uint32Array, o: number): bigint {
  const a = w[o]!;
  const b = w[o + 1]!;
  const c = w[o + 2]!;
  const d = w[o + 3]!;
  if ((c | d) === 0) {
    if (b === 0) return BigInt(a);
    BW[0] = a;
    BW[1] = b;
    return B64[0]!;
  }
  BW[0] = a;
  BW[1] = b;
  BW[2] = c;
  BW[3] = d;
  return B64[0]! | (B64[1]! << 64n);
}

export function get64(w: Uint32Array, o: number): bigint {
  const b = w[o + 1]!;
  if (b === 0) return BigInt(w[o]!);
  BW[0] = w[o]!;
  BW[1] = b;
  return B64[0]!;
}

export function isZero128(w: Uint32Array, o: number): boolean {
  return (w[o]! | w[o + 1]! | w[o + 2]! | w[o + 3]!) === 0;
}

export function isMax128(w: Uint32Array, o: number): boolean {
  return (w[o]! & w[o + 1]! & w[o + 2]! & w[o + 3]!) === -1;
}

export function eq128(a: Uint32Array, ao: number, b: Uint32Array, bo: number): boolean {
  return a[ao] === b[bo] && a[ao + 1] === b[bo + 1] && a[ao + 2] === b[bo + 2] && a[ao + 3] === b[bo + 3];
}

/** -1, 0, 1 comparing a and b as unsigned 128-bit values. */
export function cmp128(a: Uint32Array, ao: number, b: Uint32Array, bo: number): number {
  for (let k = 3; k >= 0; k--) {
    const x = a[ao + k]!;
    const y = b[bo + k]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

export function copy128(dst: Uint32Array, d: number, src: Uint32Array, s: number): void {
  dst[d] = src[s]!;
  dst[d + 1] = src[s + 1]!;
  dst[d + 2] = src[s + 2]!;
  dst[d + 3] = src[s + 3]!;
}

/** dst = a + b (mod 2^128); returns true when the true sum overflowed 128 bits. */
export function add128(
  dst: Uint32Array,
  d: number,
  a: Uint32Array,
  ao: number,
  b: Uint32Array,
  bo: number,
): boolean {
  let carry = 0;
  for (let k = 0; k < 4; k++) {
    const s = a[ao + k]! + b[bo + k]! + carry;
    if (s >= TWO32) {
      dst[d + k] = s - TWO32;
      carry = 1;
    } else {
      dst[d + k] = s;
      carry = 0;
    }
  }
  return carry === 1;
}

/** True when a + b does not fit in 128 bits. */
export function addOverflows128(a: Uint32Array, ao: number, b: Uint32Array, bo: number): boolean {
  let carry = 0;
  for (let k = 0; k < 4; k++) {
    carry = a[ao + k]! + b[bo + k]! + carry >= TWO32 ? 1 : 0;
  }
  return carry === 1;
}

/** dst = a - b, saturating at zero when b > a. */
export function subSat128(
  dst: Uint32Array,
  d: number,
  a: Uint32Array,
  ao: number,
  b: Uint32Array,
  bo: number,
): void {
  if (cmp128(a, ao, b, bo) <= 0) {
    dst[d] = 0;
    dst[d + 1] = 0;
    dst[d + 2] = 0;
    dst[d + 3] = 0;
    return;
  }
  let borrow = 0;
  for (let k = 0; k < 4; k++) {
    const s = a[ao + k]! - b[bo + k]! - borrow;
    if (s < 0) {
      dst[d + k] = s + TWO32;
      borrow = 1;
    } else {
      dst[d + k] = s;
      borrow = 0;
    }
  }
}

/** a -= b in place (caller guarantees b <= a). */
export function subInPlace128(a: Uint32Array, ao: number, b: Uint32Array, bo: number): void {
  let borrow = 0;
  for (let k = 0; k < 4; k++) {
    const s = a[ao + k]! - b[bo + k]! - borrow;
    if (s < 0) {
      a[ao + k] = s + TWO32;
      borrow = 1;
    } else {
      a[ao + k] = s;
      borrow = 0;
    }
  }
}

/** a += b in place (caller has checked for overflow). */
export function addInPlace128(a: Uint32Array, ao: number, b: Uint32Array, bo: number): void {
  let carry = 0;
  for (let k = 0; k < 4; k++) {
    const s = a[ao + k]! + b[bo + k]! + carry;
    if (s >= TWO32) {
      a[ao + k] = s - TWO32;
      carry = 1;
    } else {
      a[ao + k] = s;
      carry = 0;
    }
  }
}

/** -1, 0, 1 comparing two u64 timestamps given as (hi, lo) words. */
export function cmp64(ahi: number, alo: number, bhi: number, blo: number): number {
  if (ahi !== bhi) return ahi < bhi ? -1 : 1;
  if (alo !== blo) return alo < blo ? -1 : 1;
  return 0;
}

/** 32-bit mix of a 128-bit id (murmur3-style finalizer); never returns 0. */
export function hash128(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0xcc9e2d51);
  h = (h << 15) | (h >>> 17);
  h = Math.imul(h, 0x1b873593) ^ b;
  h = (h << 13) | (h >>> 19);
  h = (Math.imul(h, 5) + 0xe6546b64) ^ Math.imul(c, 0x85ebca6b);
  h = (h << 13) | (h >>> 19);
  h = (Math.imul(h, 5) + 0xe6546b64) ^ Math.imul(d, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  h >>>= 0;
  return h === 0 ? 1 : h;
}
