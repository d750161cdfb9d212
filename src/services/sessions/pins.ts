/**
 * A session's revenue rule (issue 16, ADR 0100): pinned at Don in the control plane, keyed by the
 * session id, read back at settlement. The pin never changes, so it is cached without expiry.
 */
import type { Masque } from "../../domain/catalog.js";
import { idToHex } from "../../domain/ids.js";
import type { SessionState } from "./state.js";

/** Most pins cached; the cache is cleared when full. */
const PIN_CACHE_MAX = 100_000;

function remember(s: SessionState, sid: bigint, pin: Pin): void {
  if (s.pins.size >= PIN_CACHE_MAX) s.pins.clear();
  s.pins.set(sid, pin);
}

type Pin = NonNullable<Awaited<ReturnType<SessionState["rules"]["pinOf"]>>>;
interface PendingPin {
  item: { session_id: string; masque_name: string; author: string };
  resolve(pin: Pin | null): void;
  reject(err: unknown): void;
}

/** Most pins written in one statement. */
const PIN_BATCH_MAX = 512;

/**
 * Group commit of Don's pins (issue 20, ADR 0126): one INSERT per control-plane commit was a third
 * of the daemon's CPU under load. Pins requested while a write is in flight (or in the same turn
 * of the event loop) go out together in one statement; each Don still waits for its own pin to
 * be committed before its hold is created, so ADR 0100's order is unchanged.
 */
class PinBatcher {
  private queue: PendingPin[] = [];
  private running = false;
  constructor(private readonly s: SessionState) {}

  pin(item: PendingPin["item"]): Promise<Pin | null> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    await new Promise<void>((r) => setImmediate(r)); // let the other calls of this turn join
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, PIN_BATCH_MAX);
        try {
          const pins = await this.s.rules.pinSessions(batch.map((b) => b.item));
          batch.forEach((b, i) => b.resolve(pins[i] ?? null));
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }
}

const batchers = new WeakMap<SessionState, PinBatcher>();

/** Pin the rule applying to `masque` to session `sid` (a retried Don keeps the first pin). */
export async function pinRule(s: SessionState, sid: bigint, masque: Masque): Promise<void> {
  if (s.pins.has(sid)) return;
  let b = batchers.get(s);
  if (!b) batchers.set(s, (b = new PinBatcher(s)));
  const pin = await b.pin({ session_id: idToHex(sid), masque_name: masque.name, author: masque.author });
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
