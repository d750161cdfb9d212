/**
 * A session's revenue rule (issue 16, ADR 0100/0102; issue 20, ADR 0124). At Don the rule
 * applying to the masque is taken from the governance store's in-memory view of the active rules
 * and pinned in the ledger, on the session's usage meters, which are created before the hold (so
 * a session the ledger has always has its pin, and a Don costs no control-plane write). At
 * settlement the pin is read back: from this daemon's open-session index, else from the meters,
 * else from the control plane (sessions donned before ADR 0124), else PLATFORM_FEE_BPS (sessions
 * donned before revenue rules existed).
 */
import type { Masque } from "../../domain/catalog.js";
import { idToHex } from "../../domain/ids.js";
import { decodeRulePin, type LedgerRulePin } from "../../domain/rule-pin.js";
import { ensurePinnedMeters, ensureSessionMeters, pinMeterId } from "./accounts.js";
import type { SessionState } from "./state.js";

/** Most control-plane pins cached; the cache is cleared when full. */
const PIN_CACHE_MAX = 100_000;

const loads = new WeakMap<SessionState, Promise<void>>();

/**
 * The pin a session donned now gets: the active rule applying to `masque` (masque, then author,
 * then platform scope), from the store's in-memory view (loaded on first use); null when no rule
 * is active.
 */
export async function activePin(s: SessionState, masque: Masque): Promise<LedgerRulePin | null> {
  let r = s.rules.activeFor(masque.name, masque.author);
  if (r === undefined) {
    let load = loads.get(s);
    if (!load) {
      load = s.rules.refreshActive();
      loads.set(s, load);
      load.catch(() => loads.delete(s)); // a failed load is retried by the next Don
    }
    await load;
    r = s.rules.activeFor(masque.name, masque.author) ?? null;
  }
  return r === null ? null : { scope_kind: r.scope.kind, platform_fee_bps: r.platform_fee_bps, activate_time_ns: r.activate_time_ns };
}

/**
 * Pin `pin` to session `sid` before its hold exists: create its usage meters carrying it. A
 * retried Don keeps the first pin. Returns the platform fee (bps) the session will settle with
 * when known now (undefined: read at settlement).
 */
export async function pinRule(s: SessionState, sid: bigint, wallet_id: bigint, masque: Masque, pin: LedgerRulePin | null): Promise<number | undefined> {
  if (pin === null) {
    await ensureSessionMeters(s, sid, wallet_id);
    return undefined;
  }
  const held = await ensurePinnedMeters(s, sid, wallet_id, pin);
  if (held === undefined) return undefined; // this daemon made the meters on an earlier call
  if (held !== null) return held.platform_fee_bps;
  // The meters existed without a pin (a session donned before ADR 0124, don again): the
  // control-plane pin, as before; a session pinned there keeps its first pin.
  const old = await s.rules.pinSession(idToHex(sid), masque.name, masque.author);
  if (old) remember(s, sid, old);
  return old?.platform_fee_bps;
}

function remember(s: SessionState, sid: bigint, pin: NonNullable<Awaited<ReturnType<SessionState["rules"]["pinOf"]>>>): void {
  if (s.pins.size >= PIN_CACHE_MAX) s.pins.clear();
  s.pins.set(sid, pin);
}

/**
 * The platform fee (bps) session `sid` settles with: its pinned rule's (open-session index, the
 * session's meters, the control plane); PLATFORM_FEE_BPS for a session without a pin (donned
 * before revenue rules existed).
 */
export async function pinnedFeeBps(s: SessionState, sid: bigint): Promise<number> {
  const known = s.open.get(sid)?.fee_bps ?? s.pins.get(sid)?.platform_fee_bps;
  if (known !== undefined) return known;
  const [meter] = await s.ledger.lookupAccounts([pinMeterId(sid)]);
  const pin = meter ? decodeRulePin(meter) : null;
  if (pin !== null) return pin.platform_fee_bps;
  const read = await s.rules.pinOf(idToHex(sid));
  if (read) remember(s, sid, read);
  return read ? read.platform_fee_bps : s.config.PLATFORM_FEE_BPS;
}
