/**
 * Deterministic 128-bit ledger ids.
 *
 * An id is the first 16 bytes of SHA-256 over a domain-separated, length-prefixed encoding of its
 * scope (e.g. ["transfer", "don", sessionId]). A retried request rebuilds the same ids, so the
 * ledger answers `exists` instead of applying anything twice. 0 and 2^128-1 are reserved by
 * TigerBeetle; the (astronomically unlikely) hash hitting either is rehashed with a counter.
 */
import { createHash } from "node:crypto";

export const ID_MAX = (1n << 128n) - 1n;
const DOMAIN = "masques-ledger/id/v1";

export function deterministicId(...scope: ReadonlyArray<string | number | bigint>): bigint {
  for (let attempt = 0; ; attempt++) {
    const h = createHash("sha256");
    h.update(DOMAIN);
    for (const part of scope) {
      const s = String(part);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(Buffer.byteLength(s));
      h.update(len);
      h.update(s);
    }
    if (attempt > 0) h.update(`#${attempt}`);
    const d = h.digest();
    const id = (d.readBigUInt64BE(0) << 64n) | d.readBigUInt64BE(8);
    if (id !== 0n && id !== ID_MAX) return id;
  }
}

/** Render a 128-bit id as 32 lowercase hex digits (how ids appear in the API and logs). */
export function idToHex(id: bigint): string {
  return id.toString(16).padStart(32, "0");
}

/** Parse 32 hex digits (or fewer) into a 128-bit id; throws on anything else. */
export function idFromHex(hex: string): bigint {
  if (!/^[0-9a-f]{1,32}$/i.test(hex)) throw new Error(`not a 128-bit hex id: ${JSON.stringify(hex)}`);
  return BigInt(`0x${hex}`);
}
