/**
 * Word layouts of the packed records (32-bit words, little-endian multi-word integers).
 * See ADR 0020 for why records are packed and ADR 0021 for the layout choices.
 */

/** Account record: 32 words = 128 bytes (same field set as TigerBeetle's Account). */
export const A_STRIDE = 32;
export const A_ID = 0;
export const A_DEBITS_PENDING = 4;
export const A_DEBITS_POSTED = 8;
export const A_CREDITS_PENDING = 12;
export const A_CREDITS_POSTED = 16;
export const A_UD128 = 20;
export const A_UD64 = 24;
export const A_TS = 26; // lo at 26, hi at 27
export const A_UD32 = 28;
export const A_LEDGER = 29;
export const A_CODE_FLAGS = 30; // code in the low 16 bits, flags in the high 16 bits
export const A_RESERVED = 31;
/** Chunk of 2^12 accounts = 512 KiB. */
export const A_CHUNK_SHIFT = 12;

/**
 * Transfer record: 24 words = 96 bytes. Debit/credit accounts and the pending transfer are
 * stored as record indexes (they always exist when a transfer is created), which saves 32 bytes
 * per transfer over TigerBeetle's 128-byte wire layout.
 */
export const T_STRIDE = 24;
export const T_ID = 0;
export const T_AMOUNT = 4;
export const T_UD128 = 8;
export const T_UD64 = 12;
export const T_TS = 14; // lo at 14, hi at 15
export const T_DR = 16; // debit account record index
export const T_CR = 17; // credit account record index
export const T_PENDING = 18; // pending transfer record index + 1, or 0
export const T_UD32 = 19;
export const T_TIMEOUT = 20;
export const T_LEDGER = 21;
export const T_CODE_FLAGS = 22; // code low 16 bits, flags high 16 bits
export const T_STATUS = 23; // pending status for pending transfers (PS_*)
/** Chunk of 2^16 transfers = 6 MiB. */
export const T_CHUNK_SHIFT = 16;

export const PS_NONE = 0;
export const PS_PENDING = 1;
export const PS_POSTED = 2;
export const PS_VOIDED = 3;
export const PS_EXPIRED = 4;

/** Decoded input event (account or transfer): 32 words. */
export const I_STRIDE = 32;
// Transfer input words: exactly TigerBeetle's 128-byte little-endian wire layout read as 32-bit
// words, so an encoded batch (a log record body) is the state machine's input as it is (ADR 0104).
export const IT_ID = 0;
export const IT_DR = 4;
export const IT_CR = 8;
export const IT_AMOUNT = 12;
export const IT_PENDING = 16;
export const IT_UD128 = 20;
export const IT_UD64 = 24;
export const IT_UD32 = 26;
export const IT_TIMEOUT = 27;
export const IT_LEDGER = 28;
export const IT_CODE_FLAGS = 29; // code low 16 bits, flags high 16 bits (wire: u16 code, u16 flags)
export const IT_TS = 30;
// Account input words use the account record layout (A_*).

/** Failed (orphaned) transfer id: 4 words. */
export const F_STRIDE = 4;
export const F_CHUNK_SHIFT = 14;

export const BATCH_MAX = 8189;
