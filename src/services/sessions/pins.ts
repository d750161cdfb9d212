/**
 * A session's revenue rule (issue 16, ADR 0100): pinned at Don in the control plane, keyed by the
 * session id, read back at settlement. The pin never changes, so it is cached without expiry.
 */
import type { Masque } from "../../domain/catalog.js";
import { idToHex } from "../../domain/ids.js";
import type { SessionState } from "./state.js";

/** Most pins cached; the cache is cleared when full. */
const PIN_CACHE_MAX = 100_000;

function remember(s: SessionState, sid: bigint, pin: NonNullable<Awaited<ReturnType<SessionState["rules"]["pinOf"]>>>): void {
  if (s.pins.size >= PIN_CACHE_MAX) s.pins.clear();
  s.pins.set(sid, pin);
}

/** Pin the rule applying to `masque` to session `sid` (a retried Don keeps the first pin). */
export async function pinRule(s: SessionState, sid: bigint, masque: Masque): Promise<void> {
  if (s.pins.has(sid)) return;
  const pin = await s.rules.pinSession(idToHex(sid), masque.name, masque.author);
  if (pin) remember(s, sid, pin);
}

/**
 * The platform fee (bps) session `sid` settles with: its pinned rule's; PLATFORM_FEE_BPS for a
 * session without a pin (donned before revenue rules existed).
 */
export async function pinnedFeeBps(s: SessionState, sid: bigint): Promise<number> {
  let pin = s.pins.get(sid);
  if (!pin) {
    const read = await s.rules.pinOf(idToHex(sid));
    if (read) remember(s, sid, read);
    pin = read ?? undefined;
  }
  return pin ? pin.platform_fee_bps : s.config.PLATFORM_FEE_BPS;
}
