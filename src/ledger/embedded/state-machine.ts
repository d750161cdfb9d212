/**
 * The embedded engine's deterministic core: TigerBeetle 0.17's state machine over packed
 * in-memory records. See state-machine.contract.ts for the contract, and docs/adr/0020-0021 for
 * the storage layout, the semantics sources and the known deviations.
 *
 * Structure of a create batch (mirrors TigerBeetle's execute_create):
 *   1. decode every event into words (may throw on out-of-range input; nothing is applied yet);
 *   2. assign timestamps: base = max(now_ns, last + 1), event i gets base + i;
 *   3. apply events in order; every validation of an event runs before any of its mutations, so
 *      a failing event changes nothing; inside a linked chain mutations are recorded in an undo
 *      log and rolled back (LIFO) when the chain breaks.
 */
import {
  AccountFilterFlags,
  AccountFlags,
  CreateAccountStatus,
  CreateTransferStatus,
  QueryFilterFlags,
  TransferFlags,
} from "tigerbeetle-node";
import type {
  Account,
  AccountBalance,
  AccountFilter,
  CreateAccountResult,
  CreateTransferResult,
  QueryFilter,
  Transfer,
} from "tigerbeetle-node";
import type { StateMachine } from "./state-machine.contract.js";
import { IdIndex, RecordArena, U32List } from "./core/arena.js";
import { CHECKPOINT_EVERY, HistoryStore } from "./core/history.js";
import { PooledLists } from "./core/pooled-lists.js";
import type { PooledListsMeta } from "./core/pooled-lists.js";
import {
  A_CHUNK_SHIFT,
  A_CODE_FLAGS,
  A_CREDITS_PENDING,
  A_CREDITS_POSTED,
  A_DEBITS_PENDING,
  A_DEBITS_POSTED,
  A_ID,
  A_LEDGER,
  A_RESERVED,
  A_STRIDE,
  A_TS,
  A_UD128,
  A_UD32,
  A_UD64,
  BATCH_MAX,
  F_CHUNK_SHIFT,
  F_STRIDE,
  I_STRIDE,
  IT_AMOUNT,
  IT_CODE_FLAGS,
  IT_CR,
  IT_DR,
  IT_ID,
  IT_LEDGER,
  IT_PENDING,
  IT_TIMEOUT,
  IT_TS,
  IT_UD128,
  IT_UD32,
  IT_UD64,
  PS_EXPIRED,
  PS_NONE,
  PS_PENDING,
  PS_POSTED,
  PS_VOIDED,
  T_AMOUNT,
  T_CHUNK_SHIFT,
  T_CODE_FLAGS,
  T_CR,
  T_DR,
  T_ID,
  T_LEDGER,
  T_PENDING,
  T_STATUS,
  T_STRIDE,
  T_TIMEOUT,
  T_TS,
  T_UD128,
  T_UD32,
  T_UD64,
} from "./core/layout.js";
import {
  add128,
  addInPlace128,
  addOverflows128,
  cmp128,
  cmp64,
  copy128,
  eq128,
  get128,
  get64,
  isMax128,
  isZero128,
  put128,
  put64,
  subInPlace128,
  subSat128,
} from "./core/words.js";

const TWO32 = 0x1_0000_0000;
const NS_PER_S = 1_000_000_000n;
/** TigerBeetle timestamps are u63 (the top bit is a tombstone marker). */
const TIMESTAMP_MAX = (1n << 63n) - 1n;

// Flag bits (from tigerbeetle-node's enums, never redefined).
const AF_LINKED = AccountFlags.linked;
const AF_DEBITS_MUST_NOT_EXCEED_CREDITS = AccountFlags.debits_must_not_exceed_credits;
const AF_CREDITS_MUST_NOT_EXCEED_DEBITS = AccountFlags.credits_must_not_exceed_debits;
const AF_HISTORY = AccountFlags.history;
const AF_IMPORTED = AccountFlags.imported;
const AF_CLOSED = AccountFlags.closed;
const AF_ALL =
  AF_LINKED |
  AF_DEBITS_MUST_NOT_EXCEED_CREDITS |
  AF_CREDITS_MUST_NOT_EXCEED_DEBITS |
  AF_HISTORY |
  AF_IMPORTED |
  AF_CLOSED;

const TF_LINKED = TransferFlags.linked;
const TF_PENDING = TransferFlags.pending;
const TF_POST = TransferFlags.post_pending_transfer;
const TF_VOID = TransferFlags.void_pending_transfer;
const TF_BALANCING_DEBIT = TransferFlags.balancing_debit;
const TF_BALANCING_CREDIT = TransferFlags.balancing_credit;
const TF_CLOSING_DEBIT = TransferFlags.closing_debit;
const TF_CLOSING_CREDIT = TransferFlags.closing_credit;
const TF_IMPORTED = TransferFlags.imported;
const TF_ALL =
  TF_LINKED |
  TF_PENDING |
  TF_POST |
  TF_VOID |
  TF_BALANCING_DEBIT |
  TF_BALANCING_CREDIT |
  TF_CLOSING_DEBIT |
  TF_CLOSING_CREDIT |
  TF_IMPORTED;

const AFF_DEBITS = AccountFilterFlags.debits;
const AFF_CREDITS = AccountFilterFlags.credits;
const AFF_REVERSED = AccountFilterFlags.reversed;
const AFF_ALL = AFF_DEBITS | AFF_CREDITS | AFF_REVERSED;
const QFF_REVERSED = QueryFilterFlags.reversed;

const CA = CreateAccountStatus;
const CT = CreateTransferStatus;

/** Results that depend on transient state: the id may never be reused (`id_already_failed`). */
function transferStatusTransient(s: CreateTransferStatus): boolean {
  return (
    s === CT.debit_account_not_found ||
    s === CT.credit_account_not_found ||
    s === CT.pending_transfer_not_found ||
    s === CT.exceeds_credits ||
    s === CT.exceeds_debits ||
    s === CT.debit_account_already_closed ||
    s === CT.credit_account_already_closed
  );
}

// Undo-log operation kinds (linked chains only).
const U_ACCOUNT_APPEND = 1;
const U_ACCOUNT_SAVE = 2;
/** Words saveAccount keeps per account: 16 balance words and code/flags. */
const UNDO_ACCOUNT_WORDS = 17;
const U_TRANSFER_APPEND = 3;
const U_PENDING_STATUS = 4;
const U_HISTORY_DIRTY = 5;

const B64 = new BigUint64Array(1);
const BW = new Uint32Array(B64.buffer);
function tsBig(hi: number, lo: number): bigint {
  if (hi === 0) return BigInt(lo);
  BW[0] = lo;
  BW[1] = hi;
  return B64[0]!;
}
function tsHiOf(x: bigint): number {
  B64[0] = x;
  return BW[1]!;
}
function tsLoOf(x: bigint): number {
  B64[0] = x;
  return BW[0]!;
}

function u32(v: number, field: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new RangeError(`${field} must be an integer in [0, 2^32): got ${String(v)}`);
  }
  return v;
}
function u16(v: number, field: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffff) {
    throw new RangeError(`${field} must be an integer in [0, 2^16): got ${String(v)}`);
  }
  return v;
}

/** Scratch registers for 128-bit arithmetic. */
const R = new Uint32Array(32);
const R_AMOUNT = 0;
const R_SUM = 4;
const R_TMP = 8;
const R_P_AMOUNT = 12;

class Core implements StateMachine {
  readonly accounts = new RecordArena(A_STRIDE, A_CHUNK_SHIFT);
  readonly transfers = new RecordArena(T_STRIDE, T_CHUNK_SHIFT);
  readonly failed = new RecordArena(F_STRIDE, F_CHUNK_SHIFT);
  readonly accountIndex = new IdIndex(this.accounts);
  readonly transferIndex = new IdIndex(this.transfers, 12);
  readonly failedIndex = new IdIndex(this.failed);
  /** Per account: record indexes of its transfers (debit or credit side), ascending. */
  accountTransfers = new PooledLists(1);
  /** Balance checkpoints of history accounts along their transfer lists. */
  history = new HistoryStore();
  /** Min-heap of open pending transfers with a timeout: deadline (hi, lo) and record index. */
  heapHi = new Uint32Array(64);
  heapLo = new Uint32Array(64);
  heapRec = new Uint32Array(64);
  heapSize = 0;
  pendingOpen = 0;
  /** Last timestamp consumed by a batch (TigerBeetle's prepare timestamp). */
  lastTs = 0n;

  // Decoded input and linked-chain undo log.
  private input = new Uint32Array(I_STRIDE * 1024);
  private undoOps: number[] = [];
  private undoWords = new U32List(1024);
  private inChain = false;

  // ---------------------------------------------------------------- create_accounts

  createAccounts(events: readonly Account[], now_ns: bigint): CreateAccountResult[] {
    const n = events.length;
    if (n === 0) return [];
    const IN = this.ensureInput(n);
    for (let i = 0; i < n; i++) this.decodeAccount(events[i]!, IN, i * I_STRIDE, i);
    const base = this.reserveTimestamps(now_ns, n);
    const baseHi = tsHiOf(base);
    const baseLo = tsLoOf(base);
    const batchTs = base + BigInt(n - 1);
    const importedBatch = ((IN[A_CODE_FLAGS]! >>> 16) & AF_IMPORTED) !== 0;

    const results = new Array<CreateAccountResult>(n);
    let chainStart = -1;
    let chainBroken = false;
    for (let i = 0; i < n; i++) {
      const o = i * I_STRIDE;
      const flags = IN[o + A_CODE_FLAGS]! >>> 16;
      let slotLo = baseLo + i;
      let slotHi = baseHi;
      if (slotLo >= TWO32) {
        slotLo -= TWO32;
        slotHi++;
      }
      let status: CreateAccountStatus | -1 = -1;
      let stamp = -1n;
      if ((flags & AF_LINKED) !== 0) {
        if (chainStart < 0) {
          chainStart = i;
          this.beginChain();
        }
        if (i === n - 1) status = CA.linked_event_chain_open;
      }
      if (status === -1) {
        if (chainBroken) status = CA.linked_event_failed;
        else if (((flags & AF_IMPORTED) !== 0) !== importedBatch) {
          status = importedBatch ? CA.imported_event_expected : CA.imported_event_not_expected;
        } else if (importedBatch) {
          const ts = tsBig(IN[o + A_TS + 1]!, IN[o + A_TS]!);
          if (ts < 1n || ts > TIMESTAMP_MAX) status = CA.imported_event_timestamp_out_of_range;
          else if (ts >= batchTs) status = CA.imported_event_timestamp_must_not_advance;
          else {
            const r = this.createAccount(IN, o, IN[o + A_TS + 1]!, IN[o + A_TS]!, true);
            status = r.status;
            stamp = r.stamp;
          }
        } else if ((IN[o + A_TS]! | IN[o + A_TS + 1]!) !== 0) {
          status = CA.timestamp_must_be_zero;
        } else {
          const r = this.createAccount(IN, o, slotHi, slotLo, false);
          status = r.status;
          stamp = r.stamp;
        }
      }
      results[i] = { timestamp: stamp >= 0n ? stamp : tsBig(slotHi, slotLo), status };
      if (status !== CA.created && chainStart >= 0 && !chainBroken) {
        chainBroken = true;
        this.rollbackChain();
        for (let j = chainStart; j < i; j++) results[j]!.status = CA.linked_event_failed;
      }
      if (chainStart >= 0 && ((flags & AF_LINKED) === 0 || status === CA.linked_event_chain_open)) {
        if (!chainBroken) this.commitChain();
        chainStart = -1;
        chainBroken = false;
      }
    }
    return results;
  }

  private decodeAccount(a: Account, IN: Uint32Array, o: number, i: number): void {
    try {
      put128(a.id, IN, o + A_ID, "id");
      put128(a.debits_pending, IN, o + A_DEBITS_PENDING, "debits_pending");
      put128(a.debits_posted, IN, o + A_DEBITS_POSTED, "debits_posted");
      put128(a.credits_pending, IN, o + A_CREDITS_PENDING, "credits_pending");
      put128(a.credits_posted, IN, o + A_CREDITS_POSTED, "credits_posted");
      put128(a.user_data_128, IN, o + A_UD128, "user_data_128");
      put64(a.user_data_64, IN, o + A_UD64, "user_data_64");
      put64(a.timestamp, IN, o + A_TS, "timestamp");
      IN[o + A_UD32] = u32(a.user_data_32, "user_data_32");
      IN[o + A_LEDGER] = u32(a.ledger, "ledger");
      IN[o + A_CODE_FLAGS] = u16(a.code, "code") | (u16(a.flags, "flags") << 16);
      IN[o + A_RESERVED] = u32(a.reserved, "reserved");
    } catch (err) {
      // Field names are constants on the hot path; the event index is added only on error.
      throw new RangeError(`accounts[${i}].${(err as Error).message}`);
    }
  }

  private createAccount(
    IN: Uint32Array,
    o: number,
    tsHi: number,
    tsLo: number,
    imported: boolean,
  ): { status: CreateAccountStatus; stamp: bigint } {
    const fail = (status: CreateAccountStatus) => ({ status, stamp: -1n });
    const flags = IN[o + A_CODE_FLAGS]! >>> 16;
    if (IN[o + A_RESERVED] !== 0) return fail(CA.reserved_field);
    if ((flags & ~AF_ALL) !== 0) return fail(CA.reserved_flag);
    if (isZero128(IN, o + A_ID)) return fail(CA.id_must_not_be_zero);
    if (isMax128(IN, o + A_ID)) return fail(CA.id_must_not_be_int_max);
    const e = this.accountIndex.find(IN[o]!, IN[o + 1]!, IN[o + 2]!, IN[o + 3]!);
    if (e >= 0) {
      const w = this.accounts.chunk(e);
      const eo = this.accounts.offset(e);
      // Only plain `exists` carries the original's timestamp; exists_with_different_* results carry
      // the event's own, like every other failure (TigerBeetle 0.17, state_machine.zig).
      const status = accountExistsStatus(IN, o, w, eo);
      return { status, stamp: status === CA.exists ? tsBig(w[eo + A_TS + 1]!, w[eo + A_TS]!) : -1n };
    }
    if ((flags & AF_DEBITS_MUST_NOT_EXCEED_CREDITS) !== 0 && (flags & AF_CREDITS_MUST_NOT_EXCEED_DEBITS) !== 0) {
      return fail(CA.flags_are_mutually_exclusive);
    }
    if (!isZero128(IN, o + A_DEBITS_PENDING)) return fail(CA.debits_pending_must_be_zero);
    if (!isZero128(IN, o + A_DEBITS_POSTED)) return fail(CA.debits_posted_must_be_zero);
    if (!isZero128(IN, o + A_CREDITS_PENDING)) return fail(CA.credits_pending_must_be_zero);
    if (!isZero128(IN, o + A_CREDITS_POSTED)) return fail(CA.credits_posted_must_be_zero);
    if (IN[o + A_LEDGER] === 0) return fail(CA.ledger_must_not_be_zero);
    if ((IN[o + A_CODE_FLAGS]! & 0xffff) === 0) return fail(CA.code_must_not_be_zero);
    if (imported) {
      const last = this.accounts.count;
      if (last > 0) {
        const lw = this.accounts.chunk(last - 1);
        const lo = this.accounts.offset(last - 1);
        if (cmp64(tsHi, tsLo, lw[lo + A_TS + 1]!, lw[lo + A_TS]!) <= 0) {
          return fail(CA.imported_event_timestamp_must_not_regress);
        }
      }
      if (this.transferWithTimestamp(tsHi, tsLo) >= 0) return fail(CA.imported_event_timestamp_must_not_regress);
    }
    const r = this.accounts.append();
    const w = this.accounts.chunk(r);
    const ro = this.accounts.offset(r);
    for (let k = 0; k < A_STRIDE; k++) w[ro + k] = IN[o + k]!;
    w[ro + A_TS] = tsLo;
    w[ro + A_TS + 1] = tsHi;
    w[ro + A_RESERVED] = 0;
    this.accountIndex.insert(r);
    if (this.inChain) this.undoOps.push(U_ACCOUNT_APPEND, r, 0);
    return { status: CA.created, stamp: tsBig(tsHi, tsLo) };
  }

  // ---------------------------------------------------------------- create_transfers

  createTransfers(events: readonly Transfer[], now_ns: bigint): CreateTransferResult[] {
    const n = events.length;
    if (n === 0) return [];
    const IN = this.ensureInput(n);
    for (let i = 0; i < n; i++) this.decodeTransfer(events[i]!, IN, i * I_STRIDE, i);
    return this.applyTransfers(IN, n, now_ns);
  }

  createTransfersWire(body: Uint8Array, count: number, now_ns: bigint): CreateTransferResult[] {
    if (count === 0) return [];
    if (body.length < count * I_STRIDE * 4) throw new RangeError(`create_transfers body holds ${body.length} bytes, not ${count} events`);
    let IN: Uint32Array;
    if ((body.byteOffset & 3) === 0) IN = new Uint32Array(body.buffer, body.byteOffset, count * I_STRIDE);
    else {
      IN = this.ensureInput(count);
      new Uint8Array(IN.buffer, 0, count * I_STRIDE * 4).set(body.subarray(0, count * I_STRIDE * 4));
    }
    return this.applyTransfers(IN, count, now_ns);
  }

  /** Apply `n` decoded transfers (IN[i * I_STRIDE ..], the wire layout as words; never written). */
  private applyTransfers(IN: Uint32Array, n: number, now_ns: bigint): CreateTransferResult[] {
    const base = this.reserveTimestamps(now_ns, n);
    const baseHi = tsHiOf(base);
    const baseLo = tsLoOf(base);
    const batchTs = base + BigInt(n - 1);
    const importedBatch = ((IN[IT_CODE_FLAGS]! >>> 16) & TF_IMPORTED) !== 0;

    const results = new Array<CreateTransferResult>(n);
    let chainStart = -1;
    let chainBroken = false;
    for (let i = 0; i < n; i++) {
      const o = i * I_STRIDE;
      const flags = IN[o + IT_CODE_FLAGS]! >>> 16;
      let slotLo = baseLo + i;
      let slotHi = baseHi;
      if (slotLo >= TWO32) {
        slotLo -= TWO32;
        slotHi++;
      }
      let status: CreateTransferStatus | -1 = -1;
      if ((flags & TF_LINKED) !== 0) {
        if (chainStart < 0) {
          chainStart = i;
          this.beginChain();
        }
        if (i === n - 1) status = CT.linked_event_chain_open;
      }
      this.stamp = -1n;
      if (status === -1) {
        if (chainBroken) status = CT.linked_event_failed;
        else if (((flags & TF_IMPORTED) !== 0) !== importedBatch) {
          status = importedBatch ? CT.imported_event_expected : CT.imported_event_not_expected;
        } else if (importedBatch) {
          const ts = tsBig(IN[o + IT_TS + 1]!, IN[o + IT_TS]!);
          if (ts < 1n || ts > TIMESTAMP_MAX) status = CT.imported_event_timestamp_out_of_range;
          else if (ts >= batchTs) status = CT.imported_event_timestamp_must_not_advance;
          else {
            status = this.createTransfer(IN, o, IN[o + IT_TS + 1]!, IN[o + IT_TS]!, true);
            if (status === CT.created) this.stamp = ts;
          }
        } else if ((IN[o + IT_TS]! | IN[o + IT_TS + 1]!) !== 0) {
          status = CT.timestamp_must_be_zero;
        } else {
          status = this.createTransfer(IN, o, slotHi, slotLo, false);
        }
      }
      results[i] = { timestamp: this.stamp >= 0n ? this.stamp : tsBig(slotHi, slotLo), status };
      if (status !== CT.created) {
        if (chainStart >= 0 && !chainBroken) {
          chainBroken = true;
          this.rollbackChain();
          for (let j = chainStart; j < i; j++) results[j]!.status = CT.linked_event_failed;
        }
        if (transferStatusTransient(status)) this.insertFailedId(IN, o);
      }
      if (chainStart >= 0 && ((flags & TF_LINKED) === 0 || status === CT.linked_event_chain_open)) {
        if (!chainBroken) this.commitChain();
        chainStart = -1;
        chainBroken = false;
      }
    }
    return results;
  }

  /** Timestamp of the result of the event being applied, when not its slot timestamp. */
  private stamp = -1n;

  private decodeTransfer(t: Transfer, IN: Uint32Array, o: number, i: number): void {
    try {
      put128(t.id, IN, o + IT_ID, "id");
      put128(t.debit_account_id, IN, o + IT_DR, "debit_account_id");
      put128(t.credit_account_id, IN, o + IT_CR, "credit_account_id");
      put128(t.amount, IN, o + IT_AMOUNT, "amount");
      put128(t.pending_id, IN, o + IT_PENDING, "pending_id");
      put128(t.user_data_128, IN, o + IT_UD128, "user_data_128");
      put64(t.user_data_64, IN, o + IT_UD64, "user_data_64");
      put64(t.timestamp, IN, o + IT_TS, "timestamp");
      IN[o + IT_UD32] = u32(t.user_data_32, "user_data_32");
      IN[o + IT_TIMEOUT] = u32(t.timeout, "timeout");
      IN[o + IT_LEDGER] = u32(t.ledger, "ledger");
      IN[o + IT_CODE_FLAGS] = u16(t.code, "code") | (u16(t.flags, "flags") << 16);
    } catch (err) {
      // Field names are constants on the hot path; the event index is added only on error.
      throw new RangeError(`transfers[${i}].${(err as Error).message}`);
    }
  }

  private createTransfer(
    IN: Uint32Array,
    o: number,
    tsHi: number,
    tsLo: number,
    imported: boolean,
  ): CreateTransferStatus {
    const flags = IN[o + IT_CODE_FLAGS]! >>> 16;
    if ((flags & ~TF_ALL) !== 0) return CT.reserved_flag;
    if (isZero128(IN, o + IT_ID)) return CT.id_must_not_be_zero;
    if (isMax128(IN, o + IT_ID)) return CT.id_must_not_be_int_max;

    const e = this.transferIndex.find(IN[o]!, IN[o + 1]!, IN[o + 2]!, IN[o + 3]!);
    if (e >= 0) {
      const w = this.transfers.chunk(e);
      const eo = this.transfers.offset(e);
      // Only plain `exists` carries the original's timestamp (see createAccount).
      const status = this.transferExistsStatus(IN, o, w, eo);
      if (status === CT.exists) this.stamp = tsBig(w[eo + T_TS + 1]!, w[eo + T_TS]!);
      return status;
    }
    if (this.failed.count > 0 && this.failedIndex.find(IN[o]!, IN[o + 1]!, IN[o + 2]!, IN[o + 3]!) >= 0) {
      return CT.id_already_failed;
    }
    if ((flags & (TF_POST | TF_VOID)) !== 0) return this.postOrVoid(IN, o, flags, tsHi, tsLo, imported);

    if (isZero128(IN, o + IT_DR)) return CT.debit_account_id_must_not_be_zero;
    if (isMax128(IN, o + IT_DR)) return CT.debit_account_id_must_not_be_int_max;
    if (isZero128(IN, o + IT_CR)) return CT.credit_account_id_must_not_be_zero;
    if (isMax128(IN, o + IT_CR)) return CT.credit_account_id_must_not_be_int_max;
    if (eq128(IN, o + IT_DR, IN, o + IT_CR)) return CT.accounts_must_be_different;
    if (!isZero128(IN, o + IT_PENDING)) return CT.pending_id_must_be_zero;
    const timeout = IN[o + IT_TIMEOUT]!;
    if ((flags & TF_PENDING) === 0) {
      if (timeout !== 0) return CT.timeout_reserved_for_pending_transfer;
      if ((flags & (TF_CLOSING_DEBIT | TF_CLOSING_CREDIT)) !== 0) return CT.closing_transfer_must_be_pending;
    }
    const ledger = IN[o + IT_LEDGER]!;
    if (ledger === 0) return CT.ledger_must_not_be_zero;
    if ((IN[o + IT_CODE_FLAGS]! & 0xffff) === 0) return CT.code_must_not_be_zero;

    const ai = this.accountIndex;
    const dr = ai.find(IN[o + IT_DR]!, IN[o + IT_DR + 1]!, IN[o + IT_DR + 2]!, IN[o + IT_DR + 3]!);
    if (dr < 0) return CT.debit_account_not_found;
    const cr = ai.find(IN[o + IT_CR]!, IN[o + IT_CR + 1]!, IN[o + IT_CR + 2]!, IN[o + IT_CR + 3]!);
    if (cr < 0) return CT.credit_account_not_found;
    const accounts = this.accounts;
    const dw = accounts.chunk(dr);
    const d = accounts.offset(dr);
    const cw = accounts.chunk(cr);
    const c = accounts.offset(cr);
    if (dw[d + A_LEDGER] !== cw[c + A_LEDGER]) return CT.accounts_must_have_the_same_ledger;
    if (ledger !== dw[d + A_LEDGER]) return CT.transfer_must_have_the_same_ledger_as_accounts;

    if (imported) {
      if (this.transfers.count > 0 && cmp64(tsHi, tsLo, ...this.lastTransferTs()) <= 0) {
        return CT.imported_event_timestamp_must_not_regress;
      }
      if (this.accountWithTimestamp(tsHi, tsLo) >= 0) return CT.imported_event_timestamp_must_not_regress;
      if (cmp64(tsHi, tsLo, dw[d + A_TS + 1]!, dw[d + A_TS]!) <= 0) {
        return CT.imported_event_timestamp_must_postdate_debit_account;
      }
      if (cmp64(tsHi, tsLo, cw[c + A_TS + 1]!, cw[c + A_TS]!) <= 0) {
        return CT.imported_event_timestamp_must_postdate_credit_account;
      }
      if (timeout !== 0) return CT.imported_event_timeout_must_be_zero;
    }
    const drFlags = dw[d + A_CODE_FLAGS]! >>> 16;
    const crFlags = cw[c + A_CODE_FLAGS]! >>> 16;
    if ((drFlags & AF_CLOSED) !== 0) return CT.debit_account_already_closed;
    if ((crFlags & AF_CLOSED) !== 0) return CT.credit_account_already_closed;

    // amount (possibly clamped by balancing) into R[R_AMOUNT]
    copy128(R, R_AMOUNT, IN, o + IT_AMOUNT);
    if ((flags & TF_BALANCING_DEBIT) !== 0) {
      add128(R, R_SUM, dw, d + A_DEBITS_POSTED, dw, d + A_DEBITS_PENDING);
      subSat128(R, R_TMP, dw, d + A_CREDITS_POSTED, R, R_SUM);
      if (cmp128(R, R_TMP, R, R_AMOUNT) < 0) copy128(R, R_AMOUNT, R, R_TMP);
    }
    if ((flags & TF_BALANCING_CREDIT) !== 0) {
      add128(R, R_SUM, cw, c + A_CREDITS_POSTED, cw, c + A_CREDITS_PENDING);
      subSat128(R, R_TMP, cw, c + A_DEBITS_POSTED, R, R_SUM);
      if (cmp128(R, R_TMP, R, R_AMOUNT) < 0) copy128(R, R_AMOUNT, R, R_TMP);
    }
    const pending = (flags & TF_PENDING) !== 0;
    if (pending) {
      if (addOverflows128(R, R_AMOUNT, dw, d + A_DEBITS_PENDING)) return CT.overflows_debits_pending;
      if (addOverflows128(R, R_AMOUNT, cw, c + A_CREDITS_PENDING)) return CT.overflows_credits_pending;
    }
    if (addOverflows128(R, R_AMOUNT, dw, d + A_DEBITS_POSTED)) return CT.overflows_debits_posted;
    if (addOverflows128(R, R_AMOUNT, cw, c + A_CREDITS_POSTED)) return CT.overflows_credits_posted;
    add128(R, R_SUM, dw, d + A_DEBITS_PENDING, dw, d + A_DEBITS_POSTED);
    if (add128(R, R_SUM, R, R_SUM, R, R_AMOUNT)) return CT.overflows_debits;
    // R_SUM now = debits_pending + debits_posted + amount (for exceeds_credits below)
    add128(R, R_TMP, cw, c + A_CREDITS_PENDING, cw, c + A_CREDITS_POSTED);
    if (add128(R, R_TMP, R, R_TMP, R, R_AMOUNT)) return CT.overflows_credits;
    if (timeout !== 0) {
      const deadline = tsBig(tsHi, tsLo) + BigInt(timeout) * NS_PER_S;
      if (deadline > TIMESTAMP_MAX) return CT.overflows_timeout;
    }
    if ((drFlags & AF_DEBITS_MUST_NOT_EXCEED_CREDITS) !== 0 && cmp128(R, R_SUM, dw, d + A_CREDITS_POSTED) > 0) {
      return CT.exceeds_credits;
    }
    if ((crFlags & AF_CREDITS_MUST_NOT_EXCEED_DEBITS) !== 0 && cmp128(R, R_TMP, cw, c + A_DEBITS_POSTED) > 0) {
      return CT.exceeds_debits;
    }

    // ---- commit
    if (this.inChain) {
      this.saveAccount(dr);
      this.saveAccount(cr);
    }
    if ((drFlags & AF_HISTORY) !== 0) this.checkpointHistory(dr);
    if ((crFlags & AF_HISTORY) !== 0) this.checkpointHistory(cr);
    const r = this.transfers.append();
    const w = this.transfers.chunk(r);
    const x = this.transfers.offset(r);
    copy128(w, x + T_ID, IN, o + IT_ID);
    copy128(w, x + T_AMOUNT, R, R_AMOUNT);
    copy128(w, x + T_UD128, IN, o + IT_UD128);
    w[x + T_UD64] = IN[o + IT_UD64]!;
    w[x + T_UD64 + 1] = IN[o + IT_UD64 + 1]!;
    w[x + T_TS] = tsLo;
    w[x + T_TS + 1] = tsHi;
    w[x + T_DR] = dr;
    w[x + T_CR] = cr;
    w[x + T_UD32] = IN[o + IT_UD32]!;
    w[x + T_TIMEOUT] = timeout;
    w[x + T_LEDGER] = ledger;
    w[x + T_CODE_FLAGS] = IN[o + IT_CODE_FLAGS]!;
    this.transferIndex.insert(r);
    if (pending) {
      w[x + T_STATUS] = PS_PENDING;
      addInPlace128(dw, d + A_DEBITS_PENDING, R, R_AMOUNT);
      addInPlace128(cw, c + A_CREDITS_PENDING, R, R_AMOUNT);
      this.pendingOpen++;
      if (timeout !== 0) this.heapPush(tsBig(tsHi, tsLo) + BigInt(timeout) * NS_PER_S, r);
    } else {
      addInPlace128(dw, d + A_DEBITS_POSTED, R, R_AMOUNT);
      addInPlace128(cw, c + A_CREDITS_POSTED, R, R_AMOUNT);
    }
    if ((flags & TF_CLOSING_DEBIT) !== 0) dw[d + A_CODE_FLAGS] = dw[d + A_CODE_FLAGS]! | (AF_CLOSED << 16);
    if ((flags & TF_CLOSING_CREDIT) !== 0) cw[c + A_CODE_FLAGS] = cw[c + A_CODE_FLAGS]! | (AF_CLOSED << 16);
    this.indexTransfer(r, dr, cr);
    if (this.inChain) this.undoOps.push(U_TRANSFER_APPEND, r, 0);
    return CT.created;
  }

  private postOrVoid(
    IN: Uint32Array,
    o: number,
    flags: number,
    tsHi: number,
    tsLo: number,
    imported: boolean,
  ): CreateTransferStatus {
    const isPost = (flags & TF_POST) !== 0;
    const isVoid = (flags & TF_VOID) !== 0;
    if (isPost && isVoid) return CT.flags_are_mutually_exclusive;
    if ((flags & TF_PENDING) !== 0) return CT.flags_are_mutually_exclusive;
    if ((flags & TF_BALANCING_DEBIT) !== 0) return CT.flags_are_mutually_exclusive;
    if ((flags & TF_BALANCING_CREDIT) !== 0) return CT.flags_are_mutually_exclusive;
    if ((flags & TF_CLOSING_DEBIT) !== 0) return CT.flags_are_mutually_exclusive;
    if ((flags & TF_CLOSING_CREDIT) !== 0) return CT.flags_are_mutually_exclusive;
    if (isZero128(IN, o + IT_PENDING)) return CT.pending_id_must_not_be_zero;
    if (isMax128(IN, o + IT_PENDING)) return CT.pending_id_must_not_be_int_max;
    if (eq128(IN, o + IT_PENDING, IN, o + IT_ID)) return CT.pending_id_must_be_different;
    if (IN[o + IT_TIMEOUT] !== 0) return CT.timeout_reserved_for_pending_transfer;

    const p = this.transferIndex.find(
      IN[o + IT_PENDING]!,
      IN[o + IT_PENDING + 1]!,
      IN[o + IT_PENDING + 2]!,
      IN[o + IT_PENDING + 3]!,
    );
    if (p < 0) return CT.pending_transfer_not_found;
    const pw = this.transfers.chunk(p);
    const po = this.transfers.offset(p);
    const pFlags = pw[po + T_CODE_FLAGS]! >>> 16;
    if ((pFlags & TF_PENDING) === 0) return CT.pending_transfer_not_pending;
    const dr = pw[po + T_DR]!;
    const cr = pw[po + T_CR]!;
    const accounts = this.accounts;
    const dw = accounts.chunk(dr);
    const d = accounts.offset(dr);
    const cw = accounts.chunk(cr);
    const c = accounts.offset(cr);
    if (!isZero128(IN, o + IT_DR) && !eq128(IN, o + IT_DR, dw, d + A_ID)) {
      return CT.pending_transfer_has_different_debit_account_id;
    }
    if (!isZero128(IN, o + IT_CR) && !eq128(IN, o + IT_CR, cw, c + A_ID)) {
      return CT.pending_transfer_has_different_credit_account_id;
    }
    const ledger = IN[o + IT_LEDGER]!;
    if (ledger !== 0 && ledger !== pw[po + T_LEDGER]) return CT.pending_transfer_has_different_ledger;
    const code = IN[o + IT_CODE_FLAGS]! & 0xffff;
    if (code !== 0 && code !== (pw[po + T_CODE_FLAGS]! & 0xffff)) return CT.pending_transfer_has_different_code;

    copy128(R, R_P_AMOUNT, pw, po + T_AMOUNT);
    if (isVoid) {
      if (isZero128(IN, o + IT_AMOUNT)) copy128(R, R_AMOUNT, R, R_P_AMOUNT);
      else copy128(R, R_AMOUNT, IN, o + IT_AMOUNT);
    } else {
      if (isMax128(IN, o + IT_AMOUNT)) copy128(R, R_AMOUNT, R, R_P_AMOUNT);
      else copy128(R, R_AMOUNT, IN, o + IT_AMOUNT);
    }
    const amountCmp = cmp128(R, R_AMOUNT, R, R_P_AMOUNT);
    if (amountCmp > 0) return CT.exceeds_pending_transfer_amount;
    if (isVoid && amountCmp < 0) return CT.pending_transfer_has_different_amount;

    const pStatus = pw[po + T_STATUS]!;
    if (pStatus === PS_POSTED) return CT.pending_transfer_already_posted;
    if (pStatus === PS_VOIDED) return CT.pending_transfer_already_voided;
    if (pStatus === PS_EXPIRED) return CT.pending_transfer_expired;
    const pTimeout = pw[po + T_TIMEOUT]!;
    if (pTimeout !== 0) {
      const deadline = tsBig(pw[po + T_TS + 1]!, pw[po + T_TS]!) + BigInt(pTimeout) * NS_PER_S;
      if (deadline <= tsBig(tsHi, tsLo)) return CT.pending_transfer_expired;
    }
    if (imported) {
      if (this.transfers.count > 0 && cmp64(tsHi, tsLo, ...this.lastTransferTs()) <= 0) {
        return CT.imported_event_timestamp_must_not_regress;
      }
      if (this.accountWithTimestamp(tsHi, tsLo) >= 0) return CT.imported_event_timestamp_must_not_regress;
    }
    const drFlags = dw[d + A_CODE_FLAGS]! >>> 16;
    const crFlags = cw[c + A_CODE_FLAGS]! >>> 16;
    if ((drFlags & AF_CLOSED) !== 0 && !isVoid) return CT.debit_account_already_closed;
    if ((crFlags & AF_CLOSED) !== 0 && !isVoid) return CT.credit_account_already_closed;

    // ---- commit
    if (this.inChain) {
      this.saveAccount(dr);
      this.saveAccount(cr);
      this.undoOps.push(U_PENDING_STATUS, p, PS_PENDING);
    }
    if ((drFlags & AF_HISTORY) !== 0) this.checkpointHistory(dr);
    if ((crFlags & AF_HISTORY) !== 0) this.checkpointHistory(cr);
    const r = this.transfers.append();
    const w = this.transfers.chunk(r);
    const x = this.transfers.offset(r);
    // `pw` may be the same chunk as `w`; the pending record is not moved by append.
    copy128(w, x + T_ID, IN, o + IT_ID);
    copy128(w, x + T_AMOUNT, R, R_AMOUNT);
    if (isZero128(IN, o + IT_UD128)) copy128(w, x + T_UD128, pw, po + T_UD128);
    else copy128(w, x + T_UD128, IN, o + IT_UD128);
    if ((IN[o + IT_UD64]! | IN[o + IT_UD64 + 1]!) === 0) {
      w[x + T_UD64] = pw[po + T_UD64]!;
      w[x + T_UD64 + 1] = pw[po + T_UD64 + 1]!;
    } else {
      w[x + T_UD64] = IN[o + IT_UD64]!;
      w[x + T_UD64 + 1] = IN[o + IT_UD64 + 1]!;
    }
    w[x + T_UD32] = IN[o + IT_UD32]! !== 0 ? IN[o + IT_UD32]! : pw[po + T_UD32]!;
    w[x + T_TS] = tsLo;
    w[x + T_TS + 1] = tsHi;
    w[x + T_DR] = dr;
    w[x + T_CR] = cr;
    w[x + T_PENDING] = p + 1;
    w[x + T_TIMEOUT] = 0;
    w[x + T_LEDGER] = pw[po + T_LEDGER]!;
    w[x + T_CODE_FLAGS] = (pw[po + T_CODE_FLAGS]! & 0xffff) | (flags << 16);
    w[x + T_STATUS] = PS_NONE;
    this.transferIndex.insert(r);
    pw[po + T_STATUS] = isPost ? PS_POSTED : PS_VOIDED;
    this.pendingOpen--;
    subInPlace128(dw, d + A_DEBITS_PENDING, R, R_P_AMOUNT);
    subInPlace128(cw, c + A_CREDITS_PENDING, R, R_P_AMOUNT);
    if (isPost) {
      addInPlace128(dw, d + A_DEBITS_POSTED, R, R_AMOUNT);
      addInPlace128(cw, c + A_CREDITS_POSTED, R, R_AMOUNT);
    } else {
      if ((pFlags & TF_CLOSING_DEBIT) !== 0) dw[d + A_CODE_FLAGS] = dw[d + A_CODE_FLAGS]! & ~(AF_CLOSED << 16);
      if ((pFlags & TF_CLOSING_CREDIT) !== 0) cw[c + A_CODE_FLAGS] = cw[c + A_CODE_FLAGS]! & ~(AF_CLOSED << 16);
    }
    this.indexTransfer(r, dr, cr);
    if (this.inChain) this.undoOps.push(U_TRANSFER_APPEND, r, 0);
    return CT.created;
  }

  /** Appends transfer `r` to its accounts' lists. */
  private indexTransfer(r: number, dr: number, cr: number): void {
    this.accountTransfers.push1(dr, r);
    this.accountTransfers.push1(cr, r);
  }

  /** Before a history account's balances change with its next list entry: checkpoint if due. */
  private checkpointHistory(account: number): void {
    const j = this.accountTransfers.length(account);
    const dirty = this.history.isDirty(account);
    if (!dirty && (j % CHECKPOINT_EVERY !== 0 || j === 0)) return; // j = 0: implicit zero balances
    if (this.inChain && dirty) this.undoOps.push(U_HISTORY_DIRTY, account, 1);
    this.history.add(account, j, this.accounts.chunk(account), this.accounts.offset(account) + A_DEBITS_PENDING);
  }

  /** Folds the effect of transfer `r` on `account` into the balances B[0..15]. */
  private applyToBalances(r: number, account: number, B: Uint32Array): void {
    const w = this.transfers.chunk(r);
    const o = this.transfers.offset(r);
    const flags = w[o + T_CODE_FLAGS]! >>> 16;
    // B layout: debits_pending 0, debits_posted 4, credits_pending 8, credits_posted 12
    const side = w[o + T_DR] === account ? 0 : 8;
    if ((flags & (TF_POST | TF_VOID)) !== 0) {
      const p = w[o + T_PENDING]! - 1;
      subInPlace128(B, side, this.transfers.chunk(p), this.transfers.offset(p) + T_AMOUNT);
      if ((flags & TF_POST) !== 0) addInPlace128(B, side + 4, w, o + T_AMOUNT);
    } else if ((flags & TF_PENDING) !== 0) {
      addInPlace128(B, side, w, o + T_AMOUNT);
    } else {
      addInPlace128(B, side + 4, w, o + T_AMOUNT);
    }
  }

  private transferExistsStatus(IN: Uint32Array, o: number, w: Uint32Array, eo: number): CreateTransferStatus {
    const flags = IN[o + IT_CODE_FLAGS]! >>> 16;
    if (flags !== w[eo + T_CODE_FLAGS]! >>> 16) return CT.exists_with_different_flags;
    const ep = w[eo + T_PENDING]!;
    if (ep === 0) {
      if (!isZero128(IN, o + IT_PENDING)) return CT.exists_with_different_pending_id;
    } else {
      const pw = this.transfers.chunk(ep - 1);
      const po = this.transfers.offset(ep - 1);
      if (!eq128(IN, o + IT_PENDING, pw, po + T_ID)) return CT.exists_with_different_pending_id;
    }
    if (IN[o + IT_TIMEOUT] !== w[eo + T_TIMEOUT]) return CT.exists_with_different_timeout;
    const accounts = this.accounts;
    const edw = accounts.chunk(w[eo + T_DR]!);
    const edo = accounts.offset(w[eo + T_DR]!);
    const ecw = accounts.chunk(w[eo + T_CR]!);
    const eco = accounts.offset(w[eo + T_CR]!);
    if ((flags & (TF_POST | TF_VOID)) !== 0) {
      const pw = this.transfers.chunk(ep - 1);
      const po = this.transfers.offset(ep - 1);
      if (!isZero128(IN, o + IT_DR) && !eq128(IN, o + IT_DR, edw, edo + A_ID)) {
        return CT.exists_with_different_debit_account_id;
      }
      if (!isZero128(IN, o + IT_CR) && !eq128(IN, o + IT_CR, ecw, eco + A_ID)) {
        return CT.exists_with_different_credit_account_id;
      }
      if ((flags & TF_VOID) !== 0) {
        if (isZero128(IN, o + IT_AMOUNT)) {
          if (!eq128(w, eo + T_AMOUNT, pw, po + T_AMOUNT)) return CT.exists_with_different_amount;
        } else if (!eq128(IN, o + IT_AMOUNT, w, eo + T_AMOUNT)) return CT.exists_with_different_amount;
      }
      if ((flags & TF_POST) !== 0) {
        if (isMax128(IN, o + IT_AMOUNT)) {
          if (!eq128(w, eo + T_AMOUNT, pw, po + T_AMOUNT)) return CT.exists_with_different_amount;
        } else if (!eq128(IN, o + IT_AMOUNT, w, eo + T_AMOUNT)) return CT.exists_with_different_amount;
      }
      if (isZero128(IN, o + IT_UD128)) {
        if (!eq128(w, eo + T_UD128, pw, po + T_UD128)) return CT.exists_with_different_user_data_128;
      } else if (!eq128(IN, o + IT_UD128, w, eo + T_UD128)) return CT.exists_with_different_user_data_128;
      if ((IN[o + IT_UD64]! | IN[o + IT_UD64 + 1]!) === 0) {
        if (w[eo + T_UD64] !== pw[po + T_UD64] || w[eo + T_UD64 + 1] !== pw[po + T_UD64 + 1]) {
          return CT.exists_with_different_user_data_64;
        }
      } else if (IN[o + IT_UD64] !== w[eo + T_UD64] || IN[o + IT_UD64 + 1] !== w[eo + T_UD64 + 1]) {
        return CT.exists_with_different_user_data_64;
      }
      if (IN[o + IT_UD32] === 0) {
        if (w[eo + T_UD32] !== pw[po + T_UD32]) return CT.exists_with_different_user_data_32;
      } else if (IN[o + IT_UD32] !== w[eo + T_UD32]) return CT.exists_with_different_user_data_32;
      const ledger = IN[o + IT_LEDGER]!;
      if (ledger !== 0 && ledger !== w[eo + T_LEDGER]) return CT.exists_with_different_ledger;
      const code = IN[o + IT_CODE_FLAGS]! & 0xffff;
      if (code !== 0 && code !== (w[eo + T_CODE_FLAGS]! & 0xffff)) return CT.exists_with_different_code;
      return CT.exists;
    }
    if (!eq128(IN, o + IT_DR, edw, edo + A_ID)) return CT.exists_with_different_debit_account_id;
    if (!eq128(IN, o + IT_CR, ecw, eco + A_ID)) return CT.exists_with_different_credit_account_id;
    if ((flags & (TF_BALANCING_DEBIT | TF_BALANCING_CREDIT)) !== 0) {
      if (cmp128(IN, o + IT_AMOUNT, w, eo + T_AMOUNT) < 0) return CT.exists_with_different_amount;
    } else if (!eq128(IN, o + IT_AMOUNT, w, eo + T_AMOUNT)) return CT.exists_with_different_amount;
    if (!eq128(IN, o + IT_UD128, w, eo + T_UD128)) return CT.exists_with_different_user_data_128;
    if (IN[o + IT_UD64] !== w[eo + T_UD64] || IN[o + IT_UD64 + 1] !== w[eo + T_UD64 + 1]) {
      return CT.exists_with_different_user_data_64;
    }
    if (IN[o + IT_UD32] !== w[eo + T_UD32]) return CT.exists_with_different_user_data_32;
    if (IN[o + IT_LEDGER] !== w[eo + T_LEDGER]) return CT.exists_with_different_ledger;
    if ((IN[o + IT_CODE_FLAGS]! & 0xffff) !== (w[eo + T_CODE_FLAGS]! & 0xffff)) return CT.exists_with_different_code;
    return CT.exists;
  }

  private insertFailedId(IN: Uint32Array, o: number): void {
    if (this.failedIndex.find(IN[o]!, IN[o + 1]!, IN[o + 2]!, IN[o + 3]!) >= 0) return;
    const r = this.failed.append();
    const w = this.failed.chunk(r);
    const x = this.failed.offset(r);
    copy128(w, x, IN, o + IT_ID);
    this.failedIndex.insert(r);
  }

  // ---------------------------------------------------------------- timestamps

  /** Reserves `n` timestamps: returns base = max(now_ns, last + 1); last becomes base + n - 1. */
  private reserveTimestamps(now_ns: bigint, n: number): bigint {
    if (typeof now_ns !== "bigint" || now_ns < 0n) throw new RangeError(`now_ns must be a non-negative bigint`);
    const next = this.lastTs + 1n;
    const base = now_ns > next ? now_ns : next;
    const last = base + BigInt(n - 1);
    if (last > TIMESTAMP_MAX) throw new RangeError("timestamp space exhausted (now_ns beyond 2^63)");
    this.lastTs = last;
    return base;
  }

  private lastTransferTs(): [number, number] {
    const r = this.transfers.count - 1;
    const w = this.transfers.chunk(r);
    const o = this.transfers.offset(r);
    return [w[o + T_TS + 1]!, w[o + T_TS]!];
  }

  /** First transfer record with timestamp >= (hi, lo). */
  private transferLowerBound(hi: number, lo: number): number {
    let a = 0;
    let b = this.transfers.count;
    const t = this.transfers;
    while (a < b) {
      const m = (a + b) >>> 1;
      const w = t.chunks[m >>> t.shift]!;
      const o = (m & t.mask) * T_STRIDE;
      if (cmp64(w[o + T_TS + 1]!, w[o + T_TS]!, hi, lo) < 0) a = m + 1;
      else b = m;
    }
    return a;
  }

  private accountLowerBound(hi: number, lo: number): number {
    let a = 0;
    let b = this.accounts.count;
    const t = this.accounts;
    while (a < b) {
      const m = (a + b) >>> 1;
      const w = t.chunk(m);
      const o = t.offset(m);
      if (cmp64(w[o + A_TS + 1]!, w[o + A_TS]!, hi, lo) < 0) a = m + 1;
      else b = m;
    }
    return a;
  }

  private transferWithTimestamp(hi: number, lo: number): number {
    const r = this.transferLowerBound(hi, lo);
    if (r >= this.transfers.count) return -1;
    const w = this.transfers.chunk(r);
    const o = this.transfers.offset(r);
    return w[o + T_TS] === lo && w[o + T_TS + 1] === hi ? r : -1;
  }

  private accountWithTimestamp(hi: number, lo: number): number {
    const r = this.accountLowerBound(hi, lo);
    if (r >= this.accounts.count) return -1;
    const w = this.accounts.chunk(r);
    const o = this.accounts.offset(r);
    return w[o + A_TS] === lo && w[o + A_TS + 1] === hi ? r : -1;
  }

  lastTimestampNs(): bigint {
    return this.lastTs;
  }

  // ---------------------------------------------------------------- linked chains

  private beginChain(): void {
    this.inChain = true;
    this.undoOps.length = 0;
    this.undoWords.length = 0;
    this.chainPendingOpen = this.pendingOpen;
  }
  private chainPendingOpen = 0;

  private commitChain(): void {
    this.inChain = false;
    this.undoOps.length = 0;
    this.undoWords.length = 0;
  }

  /**
   * Record account `a`'s mutable words before a chain changes them: the four balances
   * (A_DEBITS_PENDING..A_CREDITS_POSTED, 16 words) and code/flags (the closed flag). Nothing else
   * in an account record changes after it is created.
   */
  private saveAccount(a: number): void {
    const w = this.accounts.chunk(a);
    const o = this.accounts.offset(a);
    const u = this.undoWords;
    const pos = u.length;
    u.reserve(pos + UNDO_ACCOUNT_WORDS);
    const d = u.data;
    for (let k = 0; k < 16; k++) d[pos + k] = w[o + A_DEBITS_PENDING + k]!;
    d[pos + 16] = w[o + A_CODE_FLAGS]!;
    u.length = pos + UNDO_ACCOUNT_WORDS;
    this.undoOps.push(U_ACCOUNT_SAVE, a, pos);
  }

  private rollbackChain(): void {
    const ops = this.undoOps;
    // Every undo record is [kind, a, b]; undo in LIFO order.
    for (let i = ops.length - 3; i >= 0; i -= 3) {
      const kind = ops[i]!;
      const a = ops[i + 1]!;
      const b = ops[i + 2]!;
      if (kind === U_ACCOUNT_SAVE) {
        const w = this.accounts.chunk(a);
        const o = this.accounts.offset(a);
        const src = this.undoWords.data;
        for (let k = 0; k < 16; k++) w[o + A_DEBITS_PENDING + k] = src[b + k]!;
        w[o + A_CODE_FLAGS] = src[b + 16]!;
      } else if (kind === U_PENDING_STATUS) {
        this.transfers.chunk(a)[this.transfers.offset(a) + T_STATUS] = b;
      } else if (kind === U_HISTORY_DIRTY) {
        this.history.setDirty(a, true);
      } else if (kind === U_TRANSFER_APPEND) {
        this.popTransfer(a);
      } else {
        this.popAccount(a);
      }
    }
    this.pendingOpen = this.chainPendingOpen;
    this.inChain = false;
    this.undoOps.length = 0;
    this.undoWords.length = 0;
  }

  private popTransfer(r: number): void {
    const w = this.transfers.chunk(r);
    const o = this.transfers.offset(r);
    const dr = w[o + T_DR]!;
    const cr = w[o + T_CR]!;
    const lists = this.accountTransfers;
    lists.pop(dr);
    lists.pop(cr);
    if (this.history.count(dr) > 0) this.history.truncate(dr, lists.length(dr));
    if (this.history.count(cr) > 0) this.history.truncate(cr, lists.length(cr));
    this.transferIndex.remove(r);
    this.transfers.pop();
  }

  private popAccount(a: number): void {
    this.accountIndex.remove(a);
    this.accounts.pop();
  }

  // ---------------------------------------------------------------- expiry

  heapPush(deadline: bigint, r: number): void {
    if (this.heapSize === this.heapHi.length) {
      const cap = this.heapSize * 2;
      const hi = new Uint32Array(cap);
      hi.set(this.heapHi);
      const lo = new Uint32Array(cap);
      lo.set(this.heapLo);
      const rec = new Uint32Array(cap);
      rec.set(this.heapRec);
      this.heapHi = hi;
      this.heapLo = lo;
      this.heapRec = rec;
    }
    const H = this.heapHi;
    const L = this.heapLo;
    const X = this.heapRec;
    const dhi = tsHiOf(deadline);
    const dlo = tsLoOf(deadline);
    let i = this.heapSize++;
    while (i > 0) {
      const parent = (i - 1) >>> 1;
      if (cmp64(H[parent]!, L[parent]!, dhi, dlo) <= 0) break;
      H[i] = H[parent]!;
      L[i] = L[parent]!;
      X[i] = X[parent]!;
      i = parent;
    }
    H[i] = dhi;
    L[i] = dlo;
    X[i] = r;
  }

  private heapPop(): void {
    const H = this.heapHi;
    const L = this.heapLo;
    const X = this.heapRec;
    const n = --this.heapSize;
    if (n === 0) return;
    const hi = H[n]!;
    const lo = L[n]!;
    const rec = X[n]!;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && cmp64(H[child + 1]!, L[child + 1]!, H[child]!, L[child]!) < 0) child++;
      if (cmp64(H[child]!, L[child]!, hi, lo) >= 0) break;
      H[i] = H[child]!;
      L[i] = L[child]!;
      X[i] = X[child]!;
      i = child;
    }
    H[i] = hi;
    L[i] = lo;
    X[i] = rec;
  }

  /**
   * True when heap entry 0 still describes an open pending transfer. Entries are deleted lazily:
   * posted/voided transfers and records rolled back by a broken chain leave stale entries.
   */
  private heapTopLive(): boolean {
    const r = this.heapRec[0]!;
    if (r >= this.transfers.count) return false;
    const w = this.transfers.chunk(r);
    const o = this.transfers.offset(r);
    if (w[o + T_STATUS] !== PS_PENDING || w[o + T_TIMEOUT] === 0) return false;
    const deadline = tsBig(w[o + T_TS + 1]!, w[o + T_TS]!) + BigInt(w[o + T_TIMEOUT]!) * NS_PER_S;
    return tsHiOf(deadline) === this.heapHi[0] && tsLoOf(deadline) === this.heapLo[0];
  }

  nextExpiryNs(): bigint | null {
    while (this.heapSize > 0 && !this.heapTopLive()) this.heapPop();
    if (this.heapSize === 0) return null;
    return tsBig(this.heapHi[0]!, this.heapLo[0]!);
  }

  pulse(now_ns: bigint): number {
    let expired = 0;
    const nowHi = tsHiOf(now_ns);
    const nowLo = tsLoOf(now_ns);
    for (;;) {
      while (this.heapSize > 0 && !this.heapTopLive()) this.heapPop();
      if (this.heapSize === 0) break;
      if (cmp64(this.heapHi[0]!, this.heapLo[0]!, nowHi, nowLo) > 0) break;
      const p = this.heapRec[0]!;
      this.heapPop();
      this.reserveTimestamps(now_ns, 1);
      this.expire(p);
      expired++;
    }
    return expired;
  }

  private expire(p: number): void {
    const pw = this.transfers.chunk(p);
    const po = this.transfers.offset(p);
    const pFlags = pw[po + T_CODE_FLAGS]! >>> 16;
    const dr = pw[po + T_DR]!;
    const cr = pw[po + T_CR]!;
    const dw = this.accounts.chunk(dr);
    const d = this.accounts.offset(dr);
    const cw = this.accounts.chunk(cr);
    const c = this.accounts.offset(cr);
    subInPlace128(dw, d + A_DEBITS_PENDING, pw, po + T_AMOUNT);
    subInPlace128(cw, c + A_CREDITS_PENDING, pw, po + T_AMOUNT);
    if ((pFlags & TF_CLOSING_DEBIT) !== 0) dw[d + A_CODE_FLAGS] = dw[d + A_CODE_FLAGS]! & ~(AF_CLOSED << 16);
    if ((pFlags & TF_CLOSING_CREDIT) !== 0) cw[c + A_CODE_FLAGS] = cw[c + A_CODE_FLAGS]! & ~(AF_CLOSED << 16);
    pw[po + T_STATUS] = PS_EXPIRED;
    this.pendingOpen--;
    if (((dw[d + A_CODE_FLAGS]! >>> 16) & AF_HISTORY) !== 0) this.history.setDirty(dr, true);
    if (((cw[c + A_CODE_FLAGS]! >>> 16) & AF_HISTORY) !== 0) this.history.setDirty(cr, true);
  }

  // ---------------------------------------------------------------- lookups

  lookupAccounts(ids: readonly bigint[]): Account[] {
    const out: Account[] = [];
    for (const id of ids) {
      put128(id, R, R_TMP, "id");
      const a = this.accountIndex.find(R[R_TMP]!, R[R_TMP + 1]!, R[R_TMP + 2]!, R[R_TMP + 3]!);
      if (a >= 0) out.push(this.accountObject(a));
    }
    return out;
  }

  lookupTransfers(ids: readonly bigint[]): Transfer[] {
    const out: Transfer[] = [];
    for (const id of ids) {
      put128(id, R, R_TMP, "id");
      const t = this.transferIndex.find(R[R_TMP]!, R[R_TMP + 1]!, R[R_TMP + 2]!, R[R_TMP + 3]!);
      if (t >= 0) out.push(this.transferObject(t));
    }
    return out;
  }

  private accountObject(a: number): Account {
    const w = this.accounts.chunk(a);
    const o = this.accounts.offset(a);
    return {
      id: get128(w, o + A_ID),
      debits_pending: get128(w, o + A_DEBITS_PENDING),
      debits_posted: get128(w, o + A_DEBITS_POSTED),
      credits_pending: get128(w, o + A_CREDITS_PENDING),
      credits_posted: get128(w, o + A_CREDITS_POSTED),
      user_data_128: get128(w, o + A_UD128),
      user_data_64: get64(w, o + A_UD64),
      user_data_32: w[o + A_UD32]!,
      reserved: 0,
      ledger: w[o + A_LEDGER]!,
      code: w[o + A_CODE_FLAGS]! & 0xffff,
      flags: w[o + A_CODE_FLAGS]! >>> 16,
      timestamp: get64(w, o + A_TS),
    };
  }

  private transferObject(t: number): Transfer {
    const w = this.transfers.chunk(t);
    const o = this.transfers.offset(t);
    const p = w[o + T_PENDING]!;
    const aw = this.accounts;
    return {
      id: get128(w, o + T_ID),
      debit_account_id: get128(aw.chunk(w[o + T_DR]!), aw.offset(w[o + T_DR]!) + A_ID),
      credit_account_id: get128(aw.chunk(w[o + T_CR]!), aw.offset(w[o + T_CR]!) + A_ID),
      amount: get128(w, o + T_AMOUNT),
      pending_id: p === 0 ? 0n : get128(this.transfers.chunk(p - 1), this.transfers.offset(p - 1) + T_ID),
      user_data_128: get128(w, o + T_UD128),
      user_data_64: get64(w, o + T_UD64),
      user_data_32: w[o + T_UD32]!,
      timeout: w[o + T_TIMEOUT]!,
      ledger: w[o + T_LEDGER]!,
      code: w[o + T_CODE_FLAGS]! & 0xffff,
      flags: w[o + T_CODE_FLAGS]! >>> 16,
      timestamp: get64(w, o + T_TS),
    };
  }

  // ---------------------------------------------------------------- filters

  /**
   * Validates an AccountFilter as TigerBeetle does (invalid => empty result) and resolves the
   * account and the timestamp range. Returns null when invalid or the account does not exist.
   */
  private resolveAccountFilter(f: AccountFilter): { account: number; tMin: bigint; tMax: bigint; limit: number } | null {
    if (typeof f.account_id !== "bigint" || f.account_id <= 0n || f.account_id >= (1n << 128n) - 1n) return null;
    if (!filterTimestampValid(f.timestamp_min) || !filterTimestampValid(f.timestamp_max)) return null;
    if (f.timestamp_max !== 0n && f.timestamp_min > f.timestamp_max) return null;
    if (f.limit === 0) return null;
    if ((f.flags & (AFF_DEBITS | AFF_CREDITS)) === 0) return null;
    if ((f.flags & ~AFF_ALL) !== 0) return null;
    put128(f.account_id, R, R_TMP, "account_id");
    const account = this.accountIndex.find(R[R_TMP]!, R[R_TMP + 1]!, R[R_TMP + 2]!, R[R_TMP + 3]!);
    if (account < 0) return null;
    return {
      account,
      tMin: f.timestamp_min === 0n ? 1n : f.timestamp_min,
      tMax: f.timestamp_max === 0n ? TIMESTAMP_MAX : f.timestamp_max,
      limit: Math.min(f.limit, BATCH_MAX),
    };
  }

  /** Range [lo, hi) of positions in a sorted list of transfer record indexes for a ts range. */
  private transferRecordRange(tMin: bigint, tMax: bigint): [number, number] {
    const rLo = this.transferLowerBound(tsHiOf(tMin), tsLoOf(tMin));
    const rHi = tMax >= TIMESTAMP_MAX ? this.transfers.count : this.transferLowerBound(tsHiOf(tMax + 1n), tsLoOf(tMax + 1n));
    return [rLo, rHi];
  }

  private transferMatchesAccountFilter(r: number, account: number, f: AccountFilter, ud128Set: boolean): boolean {
    const w = this.transfers.chunk(r);
    const o = this.transfers.offset(r);
    const side =
      ((f.flags & AFF_DEBITS) !== 0 && w[o + T_DR] === account) || ((f.flags & AFF_CREDITS) !== 0 && w[o + T_CR] === account);
    if (!side) return false;
    if (ud128Set && !eq128(w, o + T_UD128, R, R_TMP + 4)) return false;
    if (f.user_data_64 !== 0n && get64(w, o + T_UD64) !== f.user_data_64) return false;
    if (f.user_data_32 !== 0 && w[o + T_UD32] !== f.user_data_32) return false;
    if (f.code !== 0 && (w[o + T_CODE_FLAGS]! & 0xffff) !== f.code) return false;
    return true;
  }

  getAccountTransfers(filter: AccountFilter): Transfer[] {
    const q = this.resolveAccountFilter(filter);
    if (q === null) return [];
    const ud128Set = filter.user_data_128 !== 0n;
    if (ud128Set) put128(filter.user_data_128, R, R_TMP + 4, "user_data_128");
    const list = this.accountTransfers;
    const account = q.account;
    if (list.length(account) === 0) return [];
    const [rLo, rHi] = this.transferRecordRange(q.tMin, q.tMax);
    const a = list.lowerBound(account, rLo);
    const b = list.lowerBound(account, rHi);
    const out: Transfer[] = [];
    const reversed = (filter.flags & AFF_REVERSED) !== 0;
    for (let k = reversed ? b - 1 : a; reversed ? k >= a : k < b; k += reversed ? -1 : 1) {
      const r = list.get(account, k);
      if (this.transferMatchesAccountFilter(r, q.account, filter, ud128Set)) {
        out.push(this.transferObject(r));
        if (out.length >= q.limit) break;
      }
    }
    return out;
  }

  getAccountBalances(filter: AccountFilter): AccountBalance[] {
    const q = this.resolveAccountFilter(filter);
    if (q === null) return [];
    const aw = this.accounts.chunk(q.account);
    if (((aw[this.accounts.offset(q.account) + A_CODE_FLAGS]! >>> 16) & AF_HISTORY) === 0) return [];
    const list = this.accountTransfers;
    const account = q.account;
    if (list.length(account) === 0) return [];
    const h = this.history;
    const ud128Set = filter.user_data_128 !== 0n;
    if (ud128Set) put128(filter.user_data_128, R, R_TMP + 4, "user_data_128");
    const [rLo, rHi] = this.transferRecordRange(q.tMin, q.tMax);
    const a = list.lowerBound(account, rLo);
    const b = list.lowerBound(account, rHi);
    const out: AccountBalance[] = [];
    const emit = (k: number, B: Uint32Array, o: number): boolean => {
      const r = list.get(account, k);
      if (!this.transferMatchesAccountFilter(r, account, filter, ud128Set)) return false;
      out.push({
        debits_pending: get128(B, o),
        debits_posted: get128(B, o + 4),
        credits_pending: get128(B, o + 8),
        credits_posted: get128(B, o + 12),
        timestamp: get64(this.transfers.chunk(r), this.transfers.offset(r) + T_TS),
      });
      return out.length >= q.limit;
    };
    if ((filter.flags & AFF_REVERSED) === 0) {
      const B = new Uint32Array(16);
      let ci = h.checkpointAtOrBefore(account, a);
      const from = h.position(account, ci);
      h.load(account, ci, B, 0);
      ci++;
      const count = h.count(account);
      let nextPos = ci < count ? h.position(account, ci) : -1;
      for (let j = from; j < b; j++) {
        if (j === nextPos) {
          h.load(account, ci++, B, 0);
          nextPos = ci < count ? h.position(account, ci) : -1;
        }
        this.applyToBalances(list.get(account, j), account, B);
        if (j >= a && emit(j, B, 0)) break;
      }
      return out;
    }
    // Reversed: walk segments between checkpoints from the end; fold each segment forward.
    let end = b;
    while (end > a) {
      const ci = h.checkpointAtOrBefore(account, end - 1);
      const start = h.position(account, ci);
      const seg = new Uint32Array(16 * (end - start));
      h.load(account, ci, seg, 0);
      for (let j = start; j < end; j++) {
        const o = 16 * (j - start);
        if (j > start) seg.copyWithin(o, o - 16, o);
        this.applyToBalances(list.get(account, j), account, seg.subarray(o, o + 16));
      }
      for (let j = end - 1; j >= Math.max(start, a); j--) {
        if (emit(j, seg, 16 * (j - start))) return out;
      }
      end = start;
    }
    return out;
  }

  private resolveQueryFilter(f: QueryFilter): { tMin: bigint; tMax: bigint; limit: number } | null {
    if (!filterTimestampValid(f.timestamp_min) || !filterTimestampValid(f.timestamp_max)) return null;
    if (f.timestamp_max !== 0n && f.timestamp_min > f.timestamp_max) return null;
    if (f.limit === 0) return null;
    if ((f.flags & ~QFF_REVERSED) !== 0) return null;
    return {
      tMin: f.timestamp_min === 0n ? 1n : f.timestamp_min,
      tMax: f.timestamp_max === 0n ? TIMESTAMP_MAX : f.timestamp_max,
      limit: Math.min(f.limit, BATCH_MAX),
    };
  }

  queryAccounts(filter: QueryFilter): Account[] {
    const q = this.resolveQueryFilter(filter);
    if (q === null) return [];
    const ud128Set = filter.user_data_128 !== 0n;
    if (ud128Set) put128(filter.user_data_128, R, R_TMP, "user_data_128");
    const aLo = this.accountLowerBound(tsHiOf(q.tMin), tsLoOf(q.tMin));
    const aHi =
      q.tMax >= TIMESTAMP_MAX ? this.accounts.count : this.accountLowerBound(tsHiOf(q.tMax + 1n), tsLoOf(q.tMax + 1n));
    const out: Account[] = [];
    const reversed = (filter.flags & QFF_REVERSED) !== 0;
    const ud64 = filter.user_data_64;
    for (let a = reversed ? aHi - 1 : aLo; reversed ? a >= aLo : a < aHi; a += reversed ? -1 : 1) {
      const w = this.accounts.chunk(a);
      const o = this.accounts.offset(a);
      if (ud128Set && !eq128(w, o + A_UD128, R, R_TMP)) continue;
      if (ud64 !== 0n && get64(w, o + A_UD64) !== ud64) continue;
      if (filter.user_data_32 !== 0 && w[o + A_UD32] !== filter.user_data_32) continue;
      if (filter.ledger !== 0 && w[o + A_LEDGER] !== filter.ledger) continue;
      if (filter.code !== 0 && (w[o + A_CODE_FLAGS]! & 0xffff) !== filter.code) continue;
      out.push(this.accountObject(a));
      if (out.length >= q.limit) break;
    }
    return out;
  }

  queryTransfers(filter: QueryFilter): Transfer[] {
    const q = this.resolveQueryFilter(filter);
    if (q === null) return [];
    const ud128Set = filter.user_data_128 !== 0n;
    if (ud128Set) put128(filter.user_data_128, R, R_TMP, "user_data_128");
    let ud64Hi = 0;
    let ud64Lo = 0;
    const ud64Set = filter.user_data_64 !== 0n;
    if (ud64Set) {
      put64(filter.user_data_64, R, R_SUM, "user_data_64");
      ud64Lo = R[R_SUM]!;
      ud64Hi = R[R_SUM + 1]!;
    }
    const [rLo, rHi] = this.transferRecordRange(q.tMin, q.tMax);
    const out: Transfer[] = [];
    const reversed = (filter.flags & QFF_REVERSED) !== 0;
    const ud32 = filter.user_data_32;
    const ledger = filter.ledger;
    const code = filter.code;
    const t = this.transfers;
    for (let r = reversed ? rHi - 1 : rLo; reversed ? r >= rLo : r < rHi; r += reversed ? -1 : 1) {
      const w = t.chunks[r >>> t.shift]!;
      const o = (r & t.mask) * T_STRIDE;
      if (ledger !== 0 && w[o + T_LEDGER] !== ledger) continue;
      if (code !== 0 && (w[o + T_CODE_FLAGS]! & 0xffff) !== code) continue;
      if (ud32 !== 0 && w[o + T_UD32] !== ud32) continue;
      if (ud64Set && (w[o + T_UD64] !== ud64Lo || w[o + T_UD64 + 1] !== ud64Hi)) continue;
      if (ud128Set && !eq128(w, o + T_UD128, R, R_TMP)) continue;
      out.push(this.transferObject(r));
      if (out.length >= q.limit) break;
    }
    return out;
  }

  // ---------------------------------------------------------------- misc

  stats(): { accounts: number; transfers: number; pending_open: number } {
    return { accounts: this.accounts.count, transfers: this.transfers.count, pending_open: this.pendingOpen };
  }

  private ensureInput(n: number): Uint32Array {
    if (this.input.length < n * I_STRIDE) this.input = new Uint32Array(n * I_STRIDE);
    return this.input;
  }

  snapshotChunks(): Iterable<Uint8Array> {
    return snapshot(this);
  }
}

/**
 * A filter bound is 0 (no bound) or a timestamp TigerBeetle can assign, 1..2^63-1; anything else
 * (2^63..2^64-1 included) makes the filter invalid, which answers with no results.
 */
function filterTimestampValid(ts: bigint): boolean {
  return ts === 0n || (ts >= 1n && ts <= TIMESTAMP_MAX);
}

function accountExistsStatus(IN: Uint32Array, o: number, w: Uint32Array, eo: number): CreateAccountStatus {
  if (IN[o + A_CODE_FLAGS]! >>> 16 !== w[eo + A_CODE_FLAGS]! >>> 16) return CA.exists_with_different_flags;
  if (!eq128(IN, o + A_UD128, w, eo + A_UD128)) return CA.exists_with_different_user_data_128;
  if (IN[o + A_UD64] !== w[eo + A_UD64] || IN[o + A_UD64 + 1] !== w[eo + A_UD64 + 1]) {
    return CA.exists_with_different_user_data_64;
  }
  if (IN[o + A_UD32] !== w[eo + A_UD32]) return CA.exists_with_different_user_data_32;
  if (IN[o + A_LEDGER] !== w[eo + A_LEDGER]) return CA.exists_with_different_ledger;
  if ((IN[o + A_CODE_FLAGS]! & 0xffff) !== (w[eo + A_CODE_FLAGS]! & 0xffff)) return CA.exists_with_different_code;
  return CA.exists;
}

// ------------------------------------------------------------------ snapshots

const SNAPSHOT_MAGIC = "masques-ledger/core-snapshot";
const SNAPSHOT_VERSION = 6;

interface SnapshotHeader {
  magic: string;
  version: number;
  last_ts: string;
  accounts: number;
  transfers: number;
  failed: number;
  pending_open: number;
  /** log2 slot counts of the id indexes (accounts, transfers, failed ids). */
  index_log2: [number, number, number];
  /** Pools of the per-account lists: transfer lists, history checkpoint positions and balances. */
  lists: [PooledListsMeta, PooledListsMeta, PooledListsMeta];
  /**
   * Bytes at the end of the snapshot holding those pools and the history dirty flags: derived
   * data whose raw bytes may differ between equal states (a rolled-back chain leaves its blocks
   * allocated), unlike everything before it.
   */
  tail_bytes: number;
}

/**
 * Snapshot layout: u32 header length, JSON header, then raw little-endian words: accounts
 * arena, transfers arena, failed ids arena, the three id hash tables, then the tail: the three
 * list pools (owner heads and lengths, chunks) and one history dirty byte per account.
 * Restore is a copy of these sections; only the expiry heap is rebuilt (one pass).
 * The yielded chunks are views of live memory: write them before applying the next batch.
 */
function* snapshot(core: Core): Generator<Uint8Array> {
  const n = core.accounts.count;
  const pools = [core.accountTransfers, core.history.positions, core.history.rows] as const;
  const lists = pools.map((p) => p.snapshotMeta(n)) as [PooledListsMeta, PooledListsMeta, PooledListsMeta];
  let tailBytes = n;
  for (const m of lists) tailBytes += 8 * m.owners + 4 * m.chunk_words.reduce((x, y) => x + y, 0);
  const header: SnapshotHeader = {
    magic: SNAPSHOT_MAGIC,
    version: SNAPSHOT_VERSION,
    last_ts: core.lastTs.toString(),
    accounts: n,
    transfers: core.transfers.count,
    failed: core.failed.count,
    pending_open: core.pendingOpen,
    index_log2: [core.accountIndex.capacityLog2, core.transferIndex.capacityLog2, core.failedIndex.capacityLog2],
    lists,
    tail_bytes: tailBytes,
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const head = new Uint8Array(4 + json.length);
  new DataView(head.buffer).setUint32(0, json.length, true);
  head.set(json, 4);
  yield head;
  yield* core.accounts.views();
  yield* core.transfers.views();
  yield* core.failed.views();
  yield* core.accountIndex.views();
  yield* core.transferIndex.views();
  yield* core.failedIndex.views();
  for (const p of pools) yield* p.snapshotViews(n);
  const dirty = new Uint8Array(n);
  for (let a = 0; a < n; a++) dirty[a] = core.history.isDirty(a) ? 1 : 0;
  yield dirty;
}

/** Pulls exact byte counts out of an iterator of arbitrarily sized chunks. */
class ByteReader {
  private it: Iterator<Uint8Array>;
  private cur: Uint8Array = new Uint8Array(0);
  private pos = 0;
  constructor(chunks: Iterable<Uint8Array>) {
    this.it = chunks[Symbol.iterator]();
  }
  readInto(dst: Uint8Array): void {
    let filled = 0;
    while (filled < dst.length) {
      if (this.pos >= this.cur.length) {
        const next = this.it.next();
        if (next.done === true) throw new Error("snapshot truncated");
        this.cur = next.value;
        this.pos = 0;
        continue;
      }
      const n = Math.min(dst.length - filled, this.cur.length - this.pos);
      dst.set(this.cur.subarray(this.pos, this.pos + n), filled);
      this.pos += n;
      filled += n;
    }
  }
  read(n: number): Uint8Array {
    const out = new Uint8Array(n);
    this.readInto(out);
    return out;
  }
  assertEnd(): void {
    if (this.pos < this.cur.length) throw new Error("snapshot has trailing bytes");
    for (;;) {
      const next = this.it.next();
      if (next.done === true) return;
      if (next.value.length > 0) throw new Error("snapshot has trailing bytes");
    }
  }
}

export function createStateMachine(): StateMachine {
  return new Core();
}

export function restoreStateMachine(chunks: Iterable<Uint8Array>): StateMachine {
  const reader = new ByteReader(chunks);
  const lenBytes = reader.read(4);
  const headerLen = new DataView(lenBytes.buffer).getUint32(0, true);
  if (headerLen > 1 << 20) throw new Error("snapshot header is corrupt");
  const header = JSON.parse(new TextDecoder().decode(reader.read(headerLen))) as SnapshotHeader;
  if (header.magic !== SNAPSHOT_MAGIC || header.version !== SNAPSHOT_VERSION) {
    throw new Error(`unsupported snapshot (${String(header.magic)} v${String(header.version)})`);
  }
  const counts32 = [header.accounts, header.transfers, header.failed, header.pending_open];
  const log2s = Array.isArray(header.index_log2) ? header.index_log2 : [];
  if (
    !counts32.every((n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32) ||
    log2s.length !== 3 ||
    !log2s.every((n) => Number.isInteger(n) && n >= 0 && n <= 31)
  ) {
    throw new Error("snapshot header is corrupt");
  }
  const core = new Core();
  core.lastTs = BigInt(header.last_ts);
  core.pendingOpen = header.pending_open;
  for (const v of core.accounts.allocateForRestore(header.accounts)) reader.readInto(v);
  for (const v of core.transfers.allocateForRestore(header.transfers)) reader.readInto(v);
  for (const v of core.failed.allocateForRestore(header.failed)) reader.readInto(v);
  const [accountLog2, transferLog2, failedLog2] = header.index_log2;
  for (const v of core.accountIndex.allocateForRestore(accountLog2, header.accounts)) reader.readInto(v);
  for (const v of core.transferIndex.allocateForRestore(transferLog2, header.transfers)) reader.readInto(v);
  for (const v of core.failedIndex.allocateForRestore(failedLog2, header.failed)) reader.readInto(v);
  if (!Array.isArray(header.lists) || header.lists.length !== 3 || header.lists.some((m) => m.owners !== header.accounts)) {
    throw new Error("snapshot header is corrupt");
  }
  const pools = [core.accountTransfers, core.history.positions, core.history.rows];
  pools.forEach((p, k) => {
    for (const v of p.restoreAllocate(header.lists[k]!)) reader.readInto(v);
  });
  const dirty = reader.read(header.accounts);
  for (let a = 0; a < header.accounts; a++) {
    if (dirty[a] === 1) core.history.setDirty(a, true);
    else if (dirty[a] !== 0) throw new Error("snapshot history section is corrupt");
  }
  reader.assertEnd();
  // Rebuild derived structures (per-account transfer lists, expiry heap).
  const t = core.transfers;

  for (let r = 0; r < header.transfers; r++) {
    const w = t.chunks[r >>> t.shift]!;
    const o = (r & t.mask) * T_STRIDE;
    if (w[o + T_STATUS] === PS_PENDING && w[o + T_TIMEOUT] !== 0) {
      const deadline = tsBig(w[o + T_TS + 1]!, w[o + T_TS]!) + BigInt(w[o + T_TIMEOUT]!) * NS_PER_S;
      core.heapPush(deadline, r);
    }
  }
  return core;
}
