/**
 * Reading a session back from the ledger (ADR 0032): its money transfers by their deterministic
 * ids, its usage and heartbeats from its usage meters, folded by src/domain/sessions.ts
 * `reconstructSession`. No query scans the ledger.
 */
import { Code } from "@connectrpc/connect";
import { AccountFilterFlags, type Transfer } from "tigerbeetle-node";
import type { PriceBookEntry } from "../../domain/catalog.js";
import { idToHex } from "../../domain/ids.js";
import {
  reconstructSession,
  sessionCloseIds,
  sessionMeterId,
  sessionTransferIds,
  USAGE_LEDGER,
  type SessionView,
} from "../../domain/sessions.js";
import { statusError } from "../errors.js";
import { ALL_METERS, type OpenSession, type SessionState } from "./state.js";

/** Most events one ledger request carries (TigerBeetle's batch limit). */
export const LEDGER_LIMIT = 8189;

/**
 * Every transfer of a session: its money transfers by their deterministic ids (one lookup),
 * and its usage / heartbeats from its usage meters, between the hold and the settlement
 * (account-indexed reads bounded in time). `fresh`: read everything from the ledger, trusting
 * no index (settlement's read after the close).
 */
export async function sessionTransfers(s: SessionState, sid: bigint, fresh = false): Promise<Transfer[]> {
  return (await readTransfers(s, sid, fresh, [])).txs;
}

/**
 * sessionTransfers, with the transfers of `also` (ids that are not the session's own) looked up
 * in the same ledger request as the session's money transfers when there is one (settlement
 * reads what the Don counted on its day with the session: one round trip, not two). Missing ids
 * are absent from the returned `also`.
 */
async function readTransfers(s: SessionState, sid: bigint, fresh: boolean, also: readonly bigint[]): Promise<{ txs: Transfer[]; also: Transfer[] }> {
  // Single writer (embedded ledger) and a session this daemon indexes as open: its hold is
  // known and it has no post/void (this daemon would have removed it from the index), so only
  // the usage meters it touched are read. A settlement racing this read is caught by the
  // ledger (the chain's ids already exist) and answered from a fresh read.
  if (s.singleWriter && !fresh) {
    const o = s.open.get(sid);
    if (o?.hold) {
      const hold = o.hold;
      const extra = also.length === 0 ? [] : await s.ledger.lookupTransfers([...also]);
      if (o.meters === 0) return { txs: [hold], also: extra }; // no usage recorded: nothing to read
      const usage = await Promise.all(
        Object.values(USAGE_LEDGER)
          .filter((l) => (o.meters & (1 << l)) !== 0)
          .map((l) => meterTransfers(s, sessionMeterId(sid, l), sid, hold.timestamp, 0n)),
      );
      return { txs: [hold, ...usage.flat()], also: extra };
    }
  }
  const ids = sessionTransferIds(sid);
  const own = [ids.hold, ids.post, ids.void, ...sessionCloseIds(sid)];
  let money: Transfer[];
  const extra: Transfer[] = [];
  if (also.length === 0) {
    money = await s.ledger.lookupTransfers(own);
  } else {
    for (const id of also) if (own.includes(id)) throw new Error(`readTransfers: ${idToHex(id)} is one of the session's own ids`);
    money = [];
    for (const t of await s.ledger.lookupTransfers([...own, ...also])) (also.includes(t.id) ? extra : money).push(t);
  }
  const hold = money.find((t) => t.id === ids.hold);
  if (!hold) return { txs: money, also: extra };
  if (money.some((t) => t.id === ids.post)) money.push(...(await s.ledger.lookupTransfers([ids.author, ids.platform, ids.debt])));
  let end = 0n;
  for (const t of money) if ((t.id === ids.post || t.id === ids.void) && t.timestamp > end) end = t.timestamp;
  // Single writer: for a session indexed as open, only the meters it touched are read.
  const o = s.singleWriter && !fresh && end === 0n ? s.open.get(sid) : undefined;
  const meters = o ? o.meters : ALL_METERS;
  const usage = await Promise.all(
    Object.values(USAGE_LEDGER)
      .filter((l) => (meters & (1 << l)) !== 0)
      .map((l) => meterTransfers(s, sessionMeterId(sid, l), sid, hold.timestamp, end)),
  );
  return { txs: [...money, ...usage.flat()], also: extra };
}

/** Debits of `meter` tagged with `sid`, from_ns..to_ns (0 = unbounded), every page. */
async function meterTransfers(s: SessionState, meter: bigint, sid: bigint, from_ns: bigint, to_ns: bigint): Promise<Transfer[]> {
  const out: Transfer[] = [];
  let cursor = from_ns;
  for (;;) {
    const page = await s.ledger.getAccountTransfers({
      account_id: meter,
      user_data_128: sid,
      user_data_64: 0n,
      user_data_32: 0,
      code: 0,
      timestamp_min: cursor,
      timestamp_max: to_ns,
      limit: LEDGER_LIMIT,
      flags: AccountFilterFlags.debits,
    });
    out.push(...page);
    if (page.length < LEDGER_LIMIT) return out;
    cursor = page[page.length - 1]!.timestamp + 1n;
  }
}

/** The session as the ledger has it now (null: no such session). */
export async function readSession(s: SessionState, sid: bigint): Promise<SessionView | null> {
  return reconstructSession(sid, await sessionTransfers(s, sid), s.clock());
}

/** A session with the transfers it was rebuilt from (settlement reuses them). */
export type SessionRead = SessionView & { _txs: Transfer[] };

/**
 * The fresh read settlement makes after closing the meters (every transfer from the ledger, no
 * index trusted), with the transfers of `also` from the same lookup. Null read: no such session.
 */
export async function readForSettlement(s: SessionState, sid: bigint, also: bigint[]): Promise<{ read: SessionRead | null; also: Transfer[] }> {
  const r = await readTransfers(s, sid, true, also);
  const v = reconstructSession(sid, r.txs, s.clock());
  return { read: v ? { ...v, _txs: r.txs } : null, also: r.also };
}

const TOOLS = USAGE_LEDGER.tool_calls;
const TOKEN_LEDGERS = [USAGE_LEDGER.input_tokens, USAGE_LEDGER.output_tokens] as const;

/**
 * Settlement's read after a close THIS call created (`closes`: those transfers as the ledger
 * stamped them), without the lookups the fresh read makes, when the shortcut is exact: a
 * single-writer ledger (this daemon makes every write) and a session it indexes as open with its
 * hold. Then no post or void can exist (every settlement closes the meters first, and the close
 * was still free), the closes are `closes`, what the Don counted is the index's when this
 * daemon's Don made it (immutable), and the usage is on the meters read here:
 * - the tool-call meter, always: every usage chain starts with a tool-call transfer (planUsage,
 *   ADR 0038), so a session without one there has no token usage either;
 * - the token meters the index saw usage on, in the same round;
 * - the other token meters too, in a second round, when the tool-call meter shows a usage event
 *   (seq > 0: an event whose reply this daemon had not seen yet, or a Don's racing usage).
 * Returns null when the shortcut does not apply (make the fresh read, readForSettlement);
 * `counted` undefined: the Don's count is not known here (read it).
 */
export async function readAfterOwnClose(
  s: SessionState,
  sid: bigint,
  closes: readonly Transfer[],
): Promise<{ read: SessionRead | null; counted: OpenSession["counted"] } | null> {
  if (!s.singleWriter) return null;
  const o = s.open.get(sid);
  const hold = o?.hold;
  if (o === undefined || hold === undefined) return null;
  // Plain loops, no per-call closures (tsx names every closure it creates: a defineProperty each).
  const reads: Promise<Transfer[]>[] = [meterTransfers(s, sessionMeterId(sid, TOOLS), sid, hold.timestamp, 0n)];
  let unread = 0;
  for (const l of TOKEN_LEDGERS) {
    if ((o.meters & (1 << l)) !== 0) reads.push(meterTransfers(s, sessionMeterId(sid, l), sid, hold.timestamp, 0n));
    else unread |= 1 << l;
  }
  const pages = await Promise.all(reads);
  const txs: Transfer[] = [hold];
  for (const t of closes) txs.push(t);
  let events = false;
  for (const page of pages) for (const t of page) txs.push(t);
  for (const t of pages[0]!) if (t.user_data_64 !== 0n) events = true;
  if (events && unread !== 0) {
    const rest: Promise<Transfer[]>[] = [];
    for (const l of TOKEN_LEDGERS) if ((unread & (1 << l)) !== 0) rest.push(meterTransfers(s, sessionMeterId(sid, l), sid, hold.timestamp, 0n));
    for (const page of await Promise.all(rest)) for (const t of page) txs.push(t);
  }
  return { read: withTxs(reconstructSession(sid, txs, s.clock()), txs), counted: o.counted };
}

/**
 * The session a Doff or Cancel acts on (null: no such session): readSessionWithTransfers, except
 * that the usage of a session this single-writer daemon indexes as open is not read. Those calls
 * only need its owner and status before they close its meters, and settlement then reads the
 * final usage fresh (readForSettlement), so reading it here too was a wasted read per meter.
 * The view's usage is therefore partial for an open session: price and reply come from the
 * settlement's read, never from this one.
 */
export async function readSessionForAction(s: SessionState, sid: bigint): Promise<SessionRead | null> {
  const hold = s.singleWriter ? s.open.get(sid)?.hold : undefined;
  if (hold === undefined) return readSessionWithTransfers(s, sid);
  const txs = [hold];
  return withTxs(reconstructSession(sid, txs, s.clock()), txs);
}

/** `v` (a view this module just built, so no one else holds it) with the transfers it was built from. */
function withTxs(v: SessionView | null, txs: Transfer[]): SessionRead | null {
  if (v === null) return null;
  const r = v as SessionRead;
  r._txs = txs;
  return r;
}

/** readSession, keeping the transfers (null: no such session). */
export async function readSessionWithTransfers(s: SessionState, sid: bigint, fresh = false): Promise<SessionRead | null> {
  const txs = await sessionTransfers(s, sid, fresh);
  const v = reconstructSession(sid, txs, s.clock());
  return v ? { ...v, _txs: txs } : null;
}

/**
 * The price book of `version` (undefined: stored nowhere): this daemon's cache, else the
 * control-plane database (a version another daemon registered). A cached version costs no I/O.
 */
export async function priceBookEntry(s: SessionState, version: number): Promise<PriceBookEntry | undefined> {
  return s.registry.peek(version) ?? (await s.registry.get(version));
}

/** The price book pinned at Don; a missing one is a bug (INTERNAL). */
export async function priceBookOf(s: SessionState, v: SessionView): Promise<PriceBookEntry> {
  const e = await priceBookEntry(s, v.price_version);
  if (!e) {
    throw statusError(Code.Internal, "PRICE_BOOK_MISSING", `price book ${v.price_version} of session ${idToHex(v.session_id)} is not in the control-plane database`);
  }
  return e;
}

/** NOT_FOUND SESSION_NOT_FOUND. */
export function sessionNotFound(sid: bigint) {
  return statusError(Code.NotFound, "SESSION_NOT_FOUND", `session ${idToHex(sid)} does not exist`, {
    session_id: idToHex(sid),
  });
}
