/**
 * Validation and binary encoding of the events the embedded engine logs.
 *
 * Events are validated for shape at the Client boundary (so a bad caller gets a TypeError, never a
 * corrupt log record) and copied, so a caller mutating its objects after the call cannot change
 * what gets applied or logged. The on-disk layout of an event is TigerBeetle's own 128-byte
 * little-endian wire layout for `Account` / `Transfer`, so a log record body is exactly the body
 * TigerBeetle would receive for the same batch.
 */
import type { Account, AccountFilter, QueryFilter, Transfer } from "tigerbeetle-node";

export const EVENT_SIZE = 128;
const U128_MAX = (1n << 128n) - 1n;
const U64_MAX = (1n << 64n) - 1n;
const U64_MASK = U64_MAX;

function fail(what: string, field: string, expected: string, value: unknown): never {
  const shown = typeof value === "bigint" ? `${value}n` : typeof value === "string" ? JSON.stringify(value) : String(value);
  throw new TypeError(`${what}.${field} must be ${expected}, got ${typeof value} ${shown}`);
}

function u128(what: string, o: Record<string, unknown>, field: string): bigint {
  const v = o[field];
  if (typeof v !== "bigint" || v < 0n || v > U128_MAX) fail(what, field, "a bigint in [0, 2^128-1]", v);
  return v;
}
function u64(what: string, o: Record<string, unknown>, field: string): bigint {
  const v = o[field];
  if (typeof v !== "bigint" || v < 0n || v > U64_MAX) fail(what, field, "a bigint in [0, 2^64-1]", v);
  return v;
}
function uint(what: string, o: Record<string, unknown>, field: string, max: number): number {
  const v = o[field];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) fail(what, field, `an integer in [0, ${max}]`, v);
  return v;
}
function record(what: string, v: unknown): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new TypeError(`${what} must be an object, got ${v === null ? "null" : Array.isArray(v) ? "array" : typeof v}`);
  }
  return v as Record<string, unknown>;
}

const U32 = 0xffff_ffff;
const U16 = 0xffff;

/** Validate and copy one Account (throws TypeError naming the field). */
export function checkAccount(v: unknown, index: number): Account {
  const what = `accounts[${index}]`;
  const o = record(what, v);
  return {
    id: u128(what, o, "id"),
    debits_pending: u128(what, o, "debits_pending"),
    debits_posted: u128(what, o, "debits_posted"),
    credits_pending: u128(what, o, "credits_pending"),
    credits_posted: u128(what, o, "credits_posted"),
    user_data_128: u128(what, o, "user_data_128"),
    user_data_64: u64(what, o, "user_data_64"),
    user_data_32: uint(what, o, "user_data_32", U32),
    reserved: uint(what, o, "reserved", U32),
    ledger: uint(what, o, "ledger", U32),
    code: uint(what, o, "code", U16),
    flags: uint(what, o, "flags", U16),
    timestamp: u64(what, o, "timestamp"),
  };
}

/** Validate and copy one Transfer (throws TypeError naming the field). */
export function checkTransfer(v: unknown, index: number): Transfer {
  const what = `transfers[${index}]`;
  const o = record(what, v);
  return {
    id: u128(what, o, "id"),
    debit_account_id: u128(what, o, "debit_account_id"),
    credit_account_id: u128(what, o, "credit_account_id"),
    amount: u128(what, o, "amount"),
    pending_id: u128(what, o, "pending_id"),
    user_data_128: u128(what, o, "user_data_128"),
    user_data_64: u64(what, o, "user_data_64"),
    user_data_32: uint(what, o, "user_data_32", U32),
    timeout: uint(what, o, "timeout", U32),
    ledger: uint(what, o, "ledger", U32),
    code: uint(what, o, "code", U16),
    flags: uint(what, o, "flags", U16),
    timestamp: u64(what, o, "timestamp"),
  };
}

export function checkId(v: unknown, index: number): bigint {
  if (typeof v !== "bigint" || v < 0n || v > U128_MAX) fail("ids", String(index), "a bigint in [0, 2^128-1]", v);
  return v;
}

export function checkAccountFilter(v: unknown): AccountFilter {
  const what = "filter";
  const o = record(what, v);
  return {
    account_id: u128(what, o, "account_id"),
    user_data_128: u128(what, o, "user_data_128"),
    user_data_64: u64(what, o, "user_data_64"),
    user_data_32: uint(what, o, "user_data_32", U32),
    code: uint(what, o, "code", U16),
    timestamp_min: u64(what, o, "timestamp_min"),
    timestamp_max: u64(what, o, "timestamp_max"),
    limit: uint(what, o, "limit", U32),
    flags: uint(what, o, "flags", U32),
  };
}

export function checkQueryFilter(v: unknown): QueryFilter {
  const what = "filter";
  const o = record(what, v);
  return {
    user_data_128: u128(what, o, "user_data_128"),
    user_data_64: u64(what, o, "user_data_64"),
    user_data_32: uint(what, o, "user_data_32", U32),
    ledger: uint(what, o, "ledger", U32),
    code: uint(what, o, "code", U16),
    timestamp_min: u64(what, o, "timestamp_min"),
    timestamp_max: u64(what, o, "timestamp_max"),
    limit: uint(what, o, "limit", U32),
    flags: uint(what, o, "flags", U32),
  };
}

function put128(dv: DataView, off: number, v: bigint): void {
  dv.setBigUint64(off, v & U64_MASK, true);
  dv.setBigUint64(off + 8, v >> 64n, true);
}
function get128(dv: DataView, off: number): bigint {
  const lo = dv.getBigUint64(off, true);
  const hi = dv.getBigUint64(off + 8, true);
  return hi === 0n ? lo : (hi << 64n) | lo;
}

/** Encode accounts into `out` starting at byte `at` (TigerBeetle's 128-byte layout). */
export function encodeAccounts(events: readonly Account[], out: Uint8Array, at: number): void {
  const dv = new DataView(out.buffer, out.byteOffset + at, events.length * EVENT_SIZE);
  for (let i = 0; i < events.length; i++) {
    const a = events[i]!;
    const o = i * EVENT_SIZE;
    put128(dv, o, a.id);
    put128(dv, o + 16, a.debits_pending);
    put128(dv, o + 32, a.debits_posted);
    put128(dv, o + 48, a.credits_pending);
    put128(dv, o + 64, a.credits_posted);
    put128(dv, o + 80, a.user_data_128);
    dv.setBigUint64(o + 96, a.user_data_64, true);
    dv.setUint32(o + 104, a.user_data_32, true);
    dv.setUint32(o + 108, a.reserved, true);
    dv.setUint32(o + 112, a.ledger, true);
    dv.setUint16(o + 116, a.code, true);
    dv.setUint16(o + 118, a.flags, true);
    dv.setBigUint64(o + 120, a.timestamp, true);
  }
}

export function decodeAccounts(body: Uint8Array, count: number): Account[] {
  const dv = new DataView(body.buffer, body.byteOffset, count * EVENT_SIZE);
  const out: Account[] = new Array<Account>(count);
  for (let i = 0; i < count; i++) {
    const o = i * EVENT_SIZE;
    out[i] = {
      id: get128(dv, o),
      debits_pending: get128(dv, o + 16),
      debits_posted: get128(dv, o + 32),
      credits_pending: get128(dv, o + 48),
      credits_posted: get128(dv, o + 64),
      user_data_128: get128(dv, o + 80),
      user_data_64: dv.getBigUint64(o + 96, true),
      user_data_32: dv.getUint32(o + 104, true),
      reserved: dv.getUint32(o + 108, true),
      ledger: dv.getUint32(o + 112, true),
      code: dv.getUint16(o + 116, true),
      flags: dv.getUint16(o + 118, true),
      timestamp: dv.getBigUint64(o + 120, true),
    };
  }
  return out;
}

/** Encode transfers into `out` starting at byte `at` (TigerBeetle's 128-byte layout). */
export function encodeTransfers(events: readonly Transfer[], out: Uint8Array, at: number): void {
  const dv = new DataView(out.buffer, out.byteOffset + at, events.length * EVENT_SIZE);
  for (let i = 0; i < events.length; i++) {
    const t = events[i]!;
    const o = i * EVENT_SIZE;
    put128(dv, o, t.id);
    put128(dv, o + 16, t.debit_account_id);
    put128(dv, o + 32, t.credit_account_id);
    put128(dv, o + 48, t.amount);
    put128(dv, o + 64, t.pending_id);
    put128(dv, o + 80, t.user_data_128);
    dv.setBigUint64(o + 96, t.user_data_64, true);
    dv.setUint32(o + 104, t.user_data_32, true);
    dv.setUint32(o + 108, t.timeout, true);
    dv.setUint32(o + 112, t.ledger, true);
    dv.setUint16(o + 116, t.code, true);
    dv.setUint16(o + 118, t.flags, true);
    dv.setBigUint64(o + 120, t.timestamp, true);
  }
}

export function decodeTransfers(body: Uint8Array, count: number): Transfer[] {
  const dv = new DataView(body.buffer, body.byteOffset, count * EVENT_SIZE);
  const out: Transfer[] = new Array<Transfer>(count);
  for (let i = 0; i < count; i++) {
    const o = i * EVENT_SIZE;
    out[i] = {
      id: get128(dv, o),
      debit_account_id: get128(dv, o + 16),
      credit_account_id: get128(dv, o + 32),
      amount: get128(dv, o + 48),
      pending_id: get128(dv, o + 64),
      user_data_128: get128(dv, o + 80),
      user_data_64: dv.getBigUint64(o + 96, true),
      user_data_32: dv.getUint32(o + 104, true),
      timeout: dv.getUint32(o + 108, true),
      ledger: dv.getUint32(o + 112, true),
      code: dv.getUint16(o + 116, true),
      flags: dv.getUint16(o + 118, true),
      timestamp: dv.getBigUint64(o + 120, true),
    };
  }
  return out;
}
