/**
 * Deterministic 128-bit ledger ids.
 *
 * An id is the first 16 bytes of SHA-256 over a domain-separated, length-prefixed encoding of its
 * scope (e.g. ["transfer", "don", sessionId]). A retried request rebuilds the same ids, so the
 * ledger answers `exists` instead of applying anything twice. 0 and 2^128-1 are reserved by
 * TigerBeetle; the (astronomically unlikely) hash hitting either is rehashed with a counter.
 */
import { createHash, hash } from "node:crypto";

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

/**
 * `deterministicId(...prefix, hex)` for a 32-digit hex last part, as a function of that part:
 * byte for byte the same SHA-256 input (domain, then each part as a 4-byte big-endian length and
 * its UTF-8), hashed in one call over one buffer whose fixed prefix is built once. The generic
 * path (an incremental Hash and a Buffer per part) cost ~4 µs per id on the Doff hot path (ADR
 * 0114). Other lengths, and the reserved results 0 / 2^128-1, take the generic path.
 */
export function hexIdDeriver(...prefix: ReadonlyArray<string>): (hex: string) => bigint {
  const parts = [Buffer.from(DOMAIN, "utf8")];
  for (const p of [...prefix, "0".repeat(32)]) {
    const b = Buffer.from(p, "utf8");
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    parts.push(len, b);
  }
  const input = Buffer.concat(parts);
  const at = input.length - 32;
  return (hex: string): bigint => {
    if (hex.length !== 32 || !HEX32.test(hex)) return deterministicId(...prefix, hex);
    input.write(hex, at, 32, "latin1");
    const d = hash("sha256", input, "buffer");
    const id = (d.readBigUInt64BE(0) << 64n) | d.readBigUInt64BE(8);
    return id === 0n || id === ID_MAX ? deterministicId(...prefix, hex) : id;
  };
}
const HEX32 = /^[0-9a-f]{32}$/;
