/**
 * Masque sessions as plans of ledger events, and their reconstruction from the ledger alone.
 * Pure: (state + request) -> transfers to submit; (transfers read back) -> session view.
 * The on-ledger layout is documented in docs/adr/0032-session-ledger-layout.md and
 * /work/notes/sessions.md (for CDC); change it only by appending.
 */
import { hash } from "node:crypto";
import { TransferFlags, type Account, type Transfer } from "tigerbeetle-node";
import { AccountCode, Ledger, TransferCode } from "./codes.js";
import { deterministicId, idFromHex, idToHex } from "./ids.js";
import { accrue, type BillingMode, type PriceBook, type UsageTotals } from "./pricing.js";
import { settle, type Settlement } from "./split.js";
import { usageSinkId } from "./accounts.js";
import { newAccount, newTransfer } from "./records.js";
import { issuanceLimitTransfer } from "./balance-bounds.js";

// ---- session ids -------------------------------------------------------------------------------

/** A session id is 128 bits: 32 hex digits, or a UUID (dashes are dropped). */
export function parseSessionId(text: string): bigint {
  const t = text.trim().toLowerCase();
  const hex = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(t) ? t.replace(/-/g, "") : t;
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new RangeError("session_id must be 32 hex digits or a UUID");
  const id = idFromHex(hex);
  if (id === 0n || id === (1n << 128n) - 1n) throw new RangeError("session_id must not be 0 or 2^128-1");
  return id;
}

export const sessionHex = idToHex;

/** Deterministic transfer ids of one session: every retry names the same ledger objects. */
export interface SessionTransferIds {
  hold: bigint;
  post: bigint;
  void: bigint;
  author: bigint;
  platform: bigint;
  debt: bigint;
}

/** Top-byte tags XORed into the hold id to name the session's other transfers (ADR 0032). */
export const SESSION_ID_TAG = {
  post: 0x10n << 120n,
  void: 0x20n << 120n,
  author: 0x30n << 120n,
  platform: 0x40n << 120n,
  debt: 0x50n << 120n,
} as const;

function derived(hold: bigint, tag: bigint, name: string): bigint {
  const id = hold ^ tag;
  return id === 0n || id === (1n << 128n) - 1n ? deterministicId("transfer", name, hold) : id;
}

/**
 * A session's transfer ids: hold = deterministicId("transfer", "don", sid_hex) (one SHA-256), the
 * others = hold XOR a per-kind tag in the top byte, so deriving all six costs one hash.
 * Memoized for recent sessions (Don, usage, Doff and reads of one session all need them).
 */
class LazySessionIds implements SessionTransferIds {
  readonly hex: string;
  readonly hold: bigint;
  private _post: bigint | undefined;
  private _void: bigint | undefined;
  private _author: bigint | undefined;
  private _platform: bigint | undefined;
  private _debt: bigint | undefined;
  constructor(readonly session_id: bigint) {
    this.hex = idToHex(session_id);
    this.hold = holdIdOfHex(this.hex);
  }
  // Each derived id is computed once: reconstructSession compares every transfer against them.
  get post(): bigint {
    return (this._post ??= derived(this.hold, SESSION_ID_TAG.post, "doff"));
  }
  get void(): bigint {
    return (this._void ??= derived(this.hold, SESSION_ID_TAG.void, "cancel"));
  }
  get author(): bigint {
    return (this._author ??= derived(this.hold, SESSION_ID_TAG.author, "doff_author"));
  }
  get platform(): bigint {
    return (this._platform ??= derived(this.hold, SESSION_ID_TAG.platform, "doff_platform"));
  }
  get debt(): bigint {
    return (this._debt ??= derived(this.hold, SESSION_ID_TAG.debt, "doff_debt"));
  }
  private _close: readonly bigint[] | undefined;
  /** The ids of the transfers closing the session's meters (sessionCloseIds), derived once. */
  get close(): readonly bigint[] {
    return (this._close ??= USAGE_LEDGERS_ORDER.map((l) => derived(this.hold, CLOSE_TAG[l]!, `close_meter_${l}`)));
  }
  private _usage: UsageIds | undefined;
  /** planUsage's per-session ids, computed once per session (ADR 0104). */
  get usage(): UsageIds {
    return (this._usage ??= usageIdsOf(this.session_id, this.hold));
  }
}

/** Per usage kind: the session's meter (debit account) and hold ^ kind tag (the id base, XOR seq). */
interface UsageIds {
  meter: Record<UsageKind, bigint>;
  base: Record<UsageKind, bigint>;
}

/**
 * deterministicId("transfer", "don", hex) for a 32-digit hex id, byte for byte the same input
 * (domain, then 4-byte big-endian length + UTF-8 of each part), hashed in one call over one
 * buffer whose fixed prefix is built once: deterministicId's incremental Hash object with a
 * Buffer.alloc per part cost several µs per new session. tests/sessions checks they agree.
 */
const HOLD_PREFIX = (() => {
  const parts = ["transfer", "don"].map((p) => {
    const b = Buffer.from(p, "utf8");
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
  });
  const len32 = Buffer.alloc(4);
  len32.writeUInt32BE(32);
  return Buffer.concat([Buffer.from("masques-ledger/id/v1", "utf8"), ...parts, len32]);
})();
const holdInput = Buffer.alloc(HOLD_PREFIX.length + 32);
HOLD_PREFIX.copy(holdInput, 0);

export function holdIdOfHex(hex: string): bigint {
  if (hex.length !== 32) return deterministicId("transfer", "don", hex);
  holdInput.write(hex, HOLD_PREFIX.length, 32, "latin1");
  const d = hash("sha256", holdInput, "buffer");
  const id = (d.readBigUInt64BE(0) << 64n) | d.readBigUInt64BE(8);
  // 0 and 2^128-1 are reserved: deterministicId rehashes those (never seen in practice).
  return id === 0n || id === (1n << 128n) - 1n ? deterministicId("transfer", "don", hex) : id;
}

const idMemo = new Map<bigint, LazySessionIds>();
const ID_MEMO_MAX = 100_000;

/** The last session's ids: one Doff or Don asks for the same session's ids many times in a row. */
let lastIds: LazySessionIds | undefined;

function lazyIds(session_id: bigint): LazySessionIds {
  if (lastIds !== undefined && lastIds.session_id === session_id) return lastIds;
  let ids = idMemo.get(session_id);
  if (ids === undefined) {
    ids = new LazySessionIds(session_id);
    if (idMemo.size >= ID_MEMO_MAX) idMemo.clear();
    idMemo.set(session_id, ids);
  }
  lastIds = ids;
  return ids;
}

export function sessionTransferIds(session_id: bigint): SessionTransferIds {
  return lazyIds(session_id);
}

export type UsageKind = "input_tokens" | "output_tokens" | "tool_calls";
export const USAGE_KINDS: readonly UsageKind[] = ["input_tokens", "output_tokens", "tool_calls"];
export const USAGE_LEDGER: Record<UsageKind, number> = {
  input_tokens: Ledger.usage_input_tokens,
  output_tokens: Ledger.usage_output_tokens,
  tool_calls: Ledger.usage_tool_calls,
};
export const USAGE_CODE: Record<UsageKind, number> = {
  input_tokens: TransferCode.usage_input_tokens,
  output_tokens: TransferCode.usage_output_tokens,
  tool_calls: TransferCode.usage_tool_calls,
};

/** Top-byte tags of usage and heartbeat ids (distinct from SESSION_ID_TAG). */
const KIND_TAG: Record<UsageKind, bigint> = {
  input_tokens: 0x61n << 120n,
  output_tokens: 0x62n << 120n,
  tool_calls: 0x63n << 120n,
};
const HEARTBEAT_TAG = 0x70n << 120n;
const U64_MASK = (1n << 64n) - 1n;

/**
 * Usage transfer id of (session, seq, kind) = hold id XOR (kind tag << 120) XOR seq (seq < 2^64):
 * deterministic, distinct per (seq, kind) within the session and from the session's money ids
 * (other top-byte tags), and no hash at all on the hot usage path. 0 / 2^128-1 fall back to a hash.
 */
export function usageTransferId(session_id: bigint, seq: bigint, kind: UsageKind): bigint {
  return tagged(lazyIds(session_id).hold, KIND_TAG[kind], seq, kind);
}

function tagged(hold: bigint, tag: bigint, n: bigint, name: string): bigint {
  const id = hold ^ tag ^ (n & U64_MASK);
  return id === 0n || id === (1n << 128n) - 1n ? deterministicId("usage-fallback", hold, name, n) : id;
}

export function heartbeatTransferId(session_id: bigint, beat: bigint): bigint {
  return tagged(lazyIds(session_id).hold, HEARTBEAT_TAG, beat, "heartbeat");
}

// ---- the session's usage meters and their closing (ADR 0036) ------------------------------------

/** Top-byte tags of a session's usage-meter ACCOUNT ids, per usage ledger (account id space). */
const METER_TAG: Record<number, bigint> = {
  [Ledger.usage_input_tokens]: 0x82n << 120n,
  [Ledger.usage_output_tokens]: 0x83n << 120n,
  [Ledger.usage_tool_calls]: 0x84n << 120n,
};
/** Top-byte tags of the transfers closing those meters, per usage ledger. */
const CLOSE_TAG: Record<number, bigint> = {
  [Ledger.usage_input_tokens]: 0x92n << 120n,
  [Ledger.usage_output_tokens]: 0x93n << 120n,
  [Ledger.usage_tool_calls]: 0x94n << 120n,
};
const USAGE_LEDGERS_ORDER = [Ledger.usage_input_tokens, Ledger.usage_output_tokens, Ledger.usage_tool_calls] as const;
const SINK_IDS = new Map<number, bigint>(USAGE_LEDGERS_ORDER.map((l) => [l, usageSinkId(l)]));
const usageSinkOf = (l: number): bigint => SINK_IDS.get(l) ?? usageSinkId(l);

/**
 * The session's usage meter on a usage ledger (an account): hold id XOR a per-ledger tag, so
 * the hold alone names it. Every usage and heartbeat transfer of the session debits it.
 */
export function sessionMeterId(session_id: bigint, ledger: number): bigint {
  const tag = METER_TAG[ledger];
  if (tag === undefined) throw new RangeError(`ledger ${ledger} is not a usage ledger`);
  const id = lazyIds(session_id).hold ^ tag;
  return id === 0n || id === (1n << 128n) - 1n ? deterministicId("account", "session_meter", idToHex(session_id), ledger) : id;
}

/**
 * Ids of the transfers closing the session's meters, in usage-ledger order (input, output, tool
 * calls). Memoized with the session's other ids: the array is shared, never modify it.
 */
export function sessionCloseIds(session_id: bigint): readonly bigint[] {
  return lazyIds(session_id).close;
}

/**
 * The session's three usage meters (one per usage ledger), created at Don. user_data_128 = the
 * agent's wallet (the meter's owner); code usage_meter.
 */
export function sessionMeterAccounts(session_id: bigint, wallet_id: bigint): Account[] {
  return USAGE_LEDGERS_ORDER.map((l) =>
    newAccount({ id: sessionMeterId(session_id, l), ledger: l, code: AccountCode.usage_meter, user_data_128: wallet_id }),
  );
}

/** What settlement was started as: the close decides the terms every settler then applies. */
export interface CloseTerms {
  /** How the session ends: settled for a reason, or cancelled (hold voided). */
  reason: CloseReason | "cancel";
  /** End of billed time (ns since the epoch; ignored for a cancel). */
  end_ns: bigint;
}

const CLOSE_CODE: Record<CloseTerms["reason"], number> = { doff: 1, idle: 2, max_length: 3, cancel: 4 };
const CLOSE_BY_CODE: Record<number, CloseTerms["reason"]> = { 1: "doff", 2: "idle", 3: "max_length", 4: "cancel" };

/**
 * Close the session's usage meters: ONE linked chain of three pending, zero-amount transfers
 * with `closing_debit` and no timeout (so they never expire and the meters never reopen). From
 * then on the ledger refuses every usage or heartbeat transfer of the session
 * (`debit_account_already_closed`), so a read taken after the close is the session's final usage.
 * user_data_64 = end of billed time (ns), user_data_32 = reason; user_data_128 = 0 (these are not
 * usage: the usage views, keyed by user_data_128, do not see them).
 */
export function planCloseMeters(session_id: bigint, terms: CloseTerms): Transfer[] {
  const ids = sessionCloseIds(session_id);
  const chain = USAGE_LEDGERS_ORDER.map((l, i) =>
    newTransfer({
      id: ids[i]!,
      debit_account_id: sessionMeterId(session_id, l),
      credit_account_id: usageSinkOf(l),
      amount: 0n,
      user_data_64: terms.end_ns,
      user_data_32: CLOSE_CODE[terms.reason],
      ledger: l,
      code: TransferCode.session_meter_close,
      flags: TransferFlags.pending | TransferFlags.closing_debit,
    }),
  );
  for (let i = 0; i < chain.length - 1; i++) chain[i]!.flags |= TransferFlags.linked;
  return chain;
}

/** The terms a closing transfer records (null: not a closing transfer). */
export function closeTermsOf(t: Transfer): CloseTerms | null {
  if (t.code !== TransferCode.session_meter_close) return null;
  const reason = CLOSE_BY_CODE[t.user_data_32];
  return reason === undefined ? null : { reason, end_ns: t.user_data_64 };
}

// ---- user_data encodings -------------------------------------------------------------------------

const MODE_CODE: Record<BillingMode, number> = { shadow: 1, soft: 2, live: 3 };
const MODE_BY_CODE: Record<number, BillingMode> = { 1: "shadow", 2: "soft", 3: "live" };

/** Hold user_data_32 = price-book version (30 bits) << 2 | billing mode (1 shadow, 2 soft, 3 live). */
export function encodeHoldTag(price_version: number, mode: BillingMode): number {
  return ((price_version << 2) | MODE_CODE[mode]) >>> 0;
}

export function decodeHoldTag(tag: number): { price_version: number; mode: BillingMode } {
  return { price_version: tag >>> 2, mode: MODE_BY_CODE[tag & 3] ?? "live" };
}

/** Why a session was finalized (author-share user_data_32). */
export type CloseReason = "doff" | "idle" | "max_length";
const REASON_CODE: Record<CloseReason, number> = { doff: 1, idle: 2, max_length: 3 };
const REASON_BY_CODE: Record<number, CloseReason> = { 1: "doff", 2: "idle", 3: "max_length" };

// ---- accounts the plans touch -------------------------------------------------------------------

/** Account ids, resolved by the account layer (ids are deterministic hashes of kind + owner). */
export interface SessionAccountIds {
  agentWallet(agent_id: string): bigint;
  agentDebt(agent_id: string): bigint;
  authorEarnings(author_id: string): bigint;
  escrow: bigint;
  platformRevenue: bigint;
  /** The agent's shared meter (sessions before ADR 0036); session plans use sessionMeterId. */
  usageMeter(agent_id: string, ledger: number): bigint;
  usageSink(ledger: number): bigint;
}

const blank = (): Transfer => newTransfer({ id: 0n });

// ---- Don ----------------------------------------------------------------------------------------

export interface DonInput {
  session_id: bigint;
  agent_id: string;
  masque_index: number;
  price_version: number;
  mode: BillingMode;
  /** Amount to hold (0 in shadow mode). */
  hold_micro: bigint;
  timeout_s: number;
}

/** Don = one pending transfer agent wallet -> escrow for the reservation, timeout = max session length. */
export function planDon(ids: SessionAccountIds, d: DonInput): Transfer {
  return {
    ...blank(),
    id: sessionTransferIds(d.session_id).hold,
    debit_account_id: ids.agentWallet(d.agent_id),
    credit_account_id: ids.escrow,
    amount: d.mode === "shadow" ? 0n : d.hold_micro,
    user_data_128: d.session_id,
    user_data_64: BigInt(d.masque_index),
    user_data_32: encodeHoldTag(d.price_version, d.mode),
    timeout: d.timeout_s,
    ledger: Ledger.usd_micro,
    code: TransferCode.session_hold,
    flags: TransferFlags.pending,
  };
}

// ---- Doff ---------------------------------------------------------------------------------------

export interface DoffInput {
  session_id: bigint;
  agent_id: string;
  author_id: string;
  masque_index: number;
  settlement: Settlement;
  billed_duration_ms: bigint;
  fee_bps: number;
  reason: CloseReason;
}

/**
 * Doff = ONE linked chain, all or nothing and zero-sum on the escrow:
 *   post pending (hold -> price; the rest returns to the agent)
 *   [soft overrun: agent debt -> escrow, then its issuance-limit transfer on ledger 90 (ADR 0055)]
 *   escrow -> author earnings (author share)
 *   escrow -> platform revenue (platform fee)
 */
export function planDoff(ids: SessionAccountIds, d: DoffInput): Transfer[] {
  const t = sessionTransferIds(d.session_id);
  const s = d.settlement;
  const reason = REASON_CODE[d.reason];
  const masque_index = BigInt(d.masque_index);
  // Post: ledger, accounts and user_data_* zero are inherited from the hold.
  const post = usdTransfer(t.post, 0n, 0n, s.posted_micro, t.hold, 0n, 0n, 0, 0, TransferFlags.post_pending_transfer);
  post.ledger = 0;
  const chain: Transfer[] = [post];
  if (s.debt_micro > 0n) {
    const debt = usdTransfer(t.debt, ids.agentDebt(d.agent_id), ids.escrow, s.debt_micro, 0n, d.session_id, masque_index, reason, TransferCode.session_overrun_debt, 0);
    // The debt brings money into ledger 1: it counts against the issuance limit (ADR 0055), in
    // the same chain, so the ledger refuses the chain rather than pass 2^63-1.
    chain.push(debt, issuanceLimitTransfer(debt, { linked: true }));
  }
  chain.push(
    usdTransfer(t.author, ids.escrow, ids.authorEarnings(d.author_id), s.author_micro, 0n, d.session_id, d.billed_duration_ms, reason, TransferCode.session_author_share, 0),
    usdTransfer(t.platform, ids.escrow, ids.platformRevenue, s.platform_micro, 0n, d.session_id, masque_index, d.fee_bps, TransferCode.session_platform_fee, 0),
  );
  for (let i = 0; i < chain.length - 1; i++) chain[i]!.flags |= TransferFlags.linked;
  return chain;
}

/**
 * One ledger-1 (USD) transfer of the Doff chain, every field written once in the Transfer's field
 * order (one object, no defaults spread over it: a Doff builds four of these).
 */
function usdTransfer(
  id: bigint,
  debit_account_id: bigint,
  credit_account_id: bigint,
  amount: bigint,
  pending_id: bigint,
  user_data_128: bigint,
  user_data_64: bigint,
  user_data_32: number,
  code: number,
  flags: number,
): Transfer {
  return {
    id,
    debit_account_id,
    credit_account_id,
    amount,
    pending_id,
    user_data_128,
    user_data_64,
    user_data_32,
    timeout: 0,
    ledger: Ledger.usd_micro,
    code,
    flags,
    timestamp: 0n,
  };
}

/** Cancel = void the hold (the whole reservation returns to the agent; nothing is charged). */
export function planCancel(session_id: bigint): Transfer {
  const t = sessionTransferIds(session_id);
  return { ...blank(), id: t.void, pending_id: t.hold, flags: TransferFlags.void_pending_transfer };
}

// ---- usage and heartbeat -------------------------------------------------------------------------

export interface UsageEventInput {
  session_id: bigint;
  agent_id: string;
  /** Sequence number >= 1, unique per session: each (session, seq) applies exactly once. */
  seq: bigint;
  input_tokens: bigint;
  output_tokens: bigint;
  tool_calls: bigint;
}

/**
 * 32-bit fingerprint of an event's content (FNV-1a over the three decimal numbers): a retry with
 * the same seq but other numbers is caught as exists_with_different_user_data_32. Not a security
 * boundary (the agent can only conflict with its own events), so a cheap hash is enough.
 */
export function usageFingerprint(e: Pick<UsageEventInput, "input_tokens" | "output_tokens" | "tool_calls">): number {
  const text = `${e.input_tokens}/${e.output_tokens}/${e.tool_calls}`;
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h || 1;
}

/**
 * One usage event -> a linked chain of usage transfers (the session's usage meter -> usage sink):
 * FIRST the tool-call transfer, always (amount 0 when the event has no tool calls), then one per
 * non-zero token kind. user_data_128 = session id, user_data_64 = seq, user_data_32 = content
 * fingerprint. The always-present first transfer is the event's idempotency anchor: a retry of
 * the same seq with any other numbers conflicts on it (exists_with_different_amount or
 * _user_data_32) and the whole chain fails, even when the two events share no other kind
 * (issue 11: a reused key never applies a different request).
 */
export function planUsage(ids: SessionAccountIds, e: UsageEventInput): Transfer[] {
  const chain: Transfer[] = [];
  planUsageInto(ids, e, chain);
  return chain;
}

/**
 * planUsage appending the chain to `out` (a call's flat transfer list: no array per event, ADR
 * 0131). Returns the chain's length (1..3); the chain is out[out.length - length ..].
 */
export function planUsageInto(ids: SessionAccountIds, e: UsageEventInput, out: Transfer[]): number {
  const fp = usageFingerprint(e);
  const u = lazyIds(e.session_id);
  const first = out.length;
  let last = usageTransfer(ids, e, u, fp, "tool_calls");
  out.push(last);
  if (e.input_tokens > 0n) {
    last.flags |= TransferFlags.linked;
    out.push((last = usageTransfer(ids, e, u, fp, "input_tokens")));
  }
  if (e.output_tokens > 0n) {
    last.flags |= TransferFlags.linked;
    out.push(usageTransfer(ids, e, u, fp, "output_tokens"));
  }
  return out.length - first;
}

function usageIdsOf(session_id: bigint, hold: bigint): UsageIds {
  const meter = {} as Record<UsageKind, bigint>;
  const base = {} as Record<UsageKind, bigint>;
  for (const k of USAGE_KINDS) {
    meter[k] = sessionMeterId(session_id, USAGE_LEDGER[k]);
    base[k] = hold ^ KIND_TAG[k];
  }
  return { meter, base };
}

/** usageTransferId from the session's cached id base: the same id, one XOR. */
function usageId(u: LazySessionIds, seq: bigint, k: UsageKind): bigint {
  const id = u.usage.base[k] ^ (seq <= U64_MASK ? seq : seq & U64_MASK);
  return id === 0n || id === U128_MAX ? tagged(u.hold, KIND_TAG[k], seq, k) : id;
}
const U128_MAX = (1n << 128n) - 1n;

/** One transfer of planUsage's chain (every field written once, in the Transfer's field order). */
function usageTransfer(ids: SessionAccountIds, e: UsageEventInput, u: LazySessionIds, fp: number, k: UsageKind): Transfer {
  const ledger = USAGE_LEDGER[k];
  return {
    id: usageId(u, e.seq, k),
    debit_account_id: u.usage.meter[k],
    credit_account_id: ids.usageSink(ledger),
    amount: e[k],
    pending_id: 0n,
    user_data_128: e.session_id,
    user_data_64: e.seq,
    user_data_32: fp,
    timeout: 0,
    ledger,
    code: USAGE_CODE[k],
    flags: 0,
    timestamp: 0n,
  };
}

/**
 * A heartbeat is a zero-amount tool-call usage transfer with user_data_64 = 0 (seq 0 is reserved
 * for heartbeats), so a session's liveness is in the ledger too.
 */
export function planHeartbeat(ids: SessionAccountIds, session_id: bigint, _agent_id: string, beat: bigint): Transfer {
  return {
    ...blank(),
    id: heartbeatTransferId(session_id, beat),
    debit_account_id: sessionMeterId(session_id, Ledger.usage_tool_calls),
    credit_account_id: ids.usageSink(Ledger.usage_tool_calls),
    amount: 0n,
    user_data_128: session_id,
    user_data_64: 0n,
    user_data_32: 0,
    ledger: Ledger.usage_tool_calls,
    code: TransferCode.usage_tool_calls,
  };
}

// ---- reconstruction -----------------------------------------------------------------------------

export type SessionStatus = "open" | "doffed" | "reaped" | "cancelled" | "expired";

export interface SessionView {
  session_id: bigint;
  agent_wallet_id: bigint;
  masque_index: number;
  price_version: number;
  mode: BillingMode;
  status: SessionStatus;
  close_reason: CloseReason | null;
  hold_micro: bigint;
  timeout_s: number;
  don_ns: bigint;
  /** Ledger time after which the hold is void (don + timeout). */
  deadline_ns: bigint;
  /** Post or void time; null while open or once expired. */
  end_ns: bigint | null;
  /** Latest usage / heartbeat / don timestamp. */
  last_activity_ns: bigint;
  usage: UsageTotals;
  usage_events: number;
  /** Duration billed (closed sessions: as recorded; open/expired: don -> last activity). */
  billed_duration_ms: bigint;
  /** For closed sessions: what moved. For open/expired ones: zeros. */
  posted_micro: bigint;
  debt_micro: bigint;
  author_micro: bigint;
  platform_micro: bigint;
  fee_bps: number;
  /** Settlement started (the usage meters are closed; ADR 0036) with these terms; null: not started. */
  closing: CloseTerms | null;
}

const hasFlag = (t: Transfer, f: TransferFlags): boolean => (t.flags & f) !== 0;

/**
 * Fold every transfer carrying the session id in user_data_128 into a view. Returns null when the
 * hold is not among them (no such session). `now_ns` decides open vs expired.
 */
export function reconstructSession(session_id: bigint, transfers: readonly Transfer[], now_ns: bigint): SessionView | null {
  const ids = sessionTransferIds(session_id);
  let hold: Transfer | undefined;
  let post: Transfer | undefined;
  let voided: Transfer | undefined;
  let author: Transfer | undefined;
  let platform: Transfer | undefined;
  let debt: Transfer | undefined;
  let closing: CloseTerms | null = null;
  const usage: UsageTotals = { input_tokens: 0n, output_tokens: 0n, tool_calls: 0n };
  const seqs = new Set<bigint>();
  let last_activity_ns = 0n;
  for (const t of transfers) {
    if (t.id === ids.hold) hold = t;
    else if (t.id === ids.post) post = t;
    else if (t.id === ids.void) voided = t;
    else if (t.id === ids.author) author = t;
    else if (t.id === ids.platform) platform = t;
    else if (t.id === ids.debt) debt = t;
    else if (t.code === TransferCode.session_meter_close) {
      if (closing === null && sessionCloseIds(session_id).includes(t.id)) closing = closeTermsOf(t);
    } else if (t.user_data_128 === session_id && t.ledger !== Ledger.usd_micro && t.ledger !== Ledger.spend_limit) {
      if (t.code === TransferCode.usage_input_tokens) usage.input_tokens += t.amount;
      else if (t.code === TransferCode.usage_output_tokens) usage.output_tokens += t.amount;
      else if (t.code === TransferCode.usage_tool_calls) usage.tool_calls += t.amount;
      if (t.user_data_64 !== 0n) seqs.add(t.user_data_64);
      if (t.timestamp > last_activity_ns) last_activity_ns = t.timestamp;
    }
  }
  if (!hold || !hasFlag(hold, TransferFlags.pending)) return null;
  const { price_version, mode } = decodeHoldTag(hold.user_data_32);
  const deadline_ns = hold.timestamp + BigInt(hold.timeout) * 1_000_000_000n;
  if (hold.timestamp > last_activity_ns) last_activity_ns = hold.timestamp;
  let status: SessionStatus;
  let close_reason: CloseReason | null = null;
  let end_ns: bigint | null = null;
  let billed_duration_ms = (last_activity_ns - hold.timestamp) / 1_000_000n;
  if (post) {
    close_reason = author ? (REASON_BY_CODE[author.user_data_32] ?? "doff") : "doff";
    status = close_reason === "doff" ? "doffed" : "reaped";
    end_ns = post.timestamp;
    if (author) billed_duration_ms = author.user_data_64;
  } else if (voided) {
    status = "cancelled";
    end_ns = voided.timestamp;
  } else if (hold.timeout > 0 && now_ns >= deadline_ns) {
    status = "expired";
  } else {
    status = "open";
  }
  return {
    session_id,
    agent_wallet_id: hold.debit_account_id,
    masque_index: Number(hold.user_data_64),
    price_version,
    mode,
    status,
    close_reason,
    hold_micro: hold.amount,
    timeout_s: hold.timeout,
    don_ns: hold.timestamp,
    deadline_ns,
    end_ns,
    last_activity_ns,
    usage,
    usage_events: seqs.size,
    billed_duration_ms,
    posted_micro: post?.amount ?? 0n,
    debt_micro: debt?.amount ?? 0n,
    author_micro: author?.amount ?? 0n,
    platform_micro: platform?.amount ?? 0n,
    fee_bps: platform?.user_data_32 ?? 0,
    closing,
  };
}

/** Price a session view with its pinned price book (the doff computation, reproducible). */
export function priceSession(pb: PriceBook, mode: BillingMode, hold_micro: bigint, usage: UsageTotals, billed_duration_ms: bigint, fee_bps: number): Settlement {
  const a = accrue(pb, usage, billed_duration_ms);
  return settle(mode, a.price_micro, hold_micro, BigInt(fee_bps));
}

/** Duration billed at Doff: don -> end, never negative, never past the max session length. */
export function billedDurationMs(don_ns: bigint, end_ns: bigint, max_s: number): bigint {
  let ms = (end_ns - don_ns) / 1_000_000n;
  if (ms < 0n) ms = 0n;
  const max_ms = BigInt(max_s) * 1000n;
  return ms > max_ms ? max_ms : ms;
}
