/**
 * How the SessionService's state is rebuilt at start-up: the catalog's price books are stored in
 * the control-plane database (committed BEFORE any Don can put a hold referencing them on the
 * ledger: ADR 0071), every stored price book's author gets an earnings account, and every hold younger than the maximum session length
 * without a post or void is indexed as an open session (ADR 0032).
 */
import { QueryFilterFlags, TransferFlags, type Transfer } from "tigerbeetle-node";
import { Ledger, TransferCode } from "../../domain/codes.js";
import { reconstructSession, sessionTransferIds } from "../../domain/sessions.js";
import { ensureAuthors } from "./accounts.js";
import { LEDGER_LIMIT, sessionTransfers } from "./reads.js";
import { openSessionFromView, type SessionState } from "./state.js";
import { decodeHoldTag } from "../../domain/sessions.js";
import { sessionExpiredEvent } from "../../webhooks/events.js";
import { idToHex } from "../../domain/ids.js";

/**
 * `session.expired` for a hold the ledger voided while the daemon was down (ADR 0105). Idempotent
 * by event id, so every start may enqueue it again; a failure is logged, never fatal.
 */
async function notifyExpiredHold(s: SessionState, h: Transfer): Promise<void> {
  try {
    const e = await s.registry.get(decodeHoldTag(h.user_data_32).price_version);
    const deadline = h.timestamp + BigInt(h.timeout) * 1_000_000_000n;
    await s.webhooks.enqueue(sessionExpiredEvent(h.user_data_128, Number(h.user_data_64), e?.author ?? null, deadline), s.clock());
  } catch (err) {
    s.log.error({ err, session_id: idToHex(h.user_data_128) }, "session.expired webhook not enqueued");
  }
}

/** Rebuild `s` from the ledger; resolves when the service may serve. */
export async function rebuildState(s: SessionState): Promise<void> {
  // Database first, then the ledger: no Don may hold money under a version not yet committed.
  await s.registry.registerCatalog(s.live.files());
  // Published versions' price books were stored at publish, before their rows (ADR 0107).
  await s.live.refreshPublished();
  const books = await s.registry.all();
  const authors = new Set(books.map((e) => e.author));
  if (authors.size > 0) await ensureAuthors(s, [...authors]);
  await rebuildOpenSessions(s);
  s.log.info(
    { masques: s.catalog.list().length, price_books: books.length, open_sessions: s.open.size },
    "session service ready",
  );
}

/** Every hold younger than the max session length without post/void is an open session. */
async function rebuildOpenSessions(s: SessionState): Promise<void> {
  const now = s.clock();
  let cursor = now - BigInt(s.config.SESSION_MAX_S) * 1_000_000_000n - 60_000_000_000n;
  if (cursor < 1n) cursor = 1n;
  const holds: Transfer[] = [];
  for (;;) {
    const page = await s.ledger.queryTransfers({
      user_data_128: 0n,
      user_data_64: 0n,
      user_data_32: 0,
      ledger: Ledger.usd_micro,
      code: TransferCode.session_hold,
      timestamp_min: cursor,
      timestamp_max: 0n,
      limit: LEDGER_LIMIT,
      flags: QueryFilterFlags.none,
    });
    for (const t of page) if ((t.flags & TransferFlags.pending) !== 0) holds.push(t);
    if (page.length < LEDGER_LIMIT) break;
    cursor = page[page.length - 1]!.timestamp + 1n;
  }
  for (let i = 0; i < holds.length; i += 2000) {
    const chunk = holds.slice(i, i + 2000);
    const ends = await s.ledger.lookupTransfers(
      chunk.flatMap((h) => {
        const t = sessionTransferIds(h.user_data_128);
        return [t.post, t.void];
      }),
    );
    const closed = new Set(ends.map((t) => t.pending_id));
    const expired: Transfer[] = [];
    const candidates = chunk.filter((h) => {
      if (closed.has(h.id)) return false;
      const deadline = h.timestamp + BigInt(h.timeout) * 1_000_000_000n;
      if (h.timeout > 0 && deadline <= now) {
        expired.push(h); // expired while we were down
        return false;
      }
      return true;
    });
    for (const h of expired) await notifyExpiredHold(s, h);
    await Promise.all(
      candidates.map(async (h) => {
        const txs = await sessionTransfers(s, h.user_data_128);
        const v = reconstructSession(h.user_data_128, txs, now);
        if (!v || v.status !== "open") return;
        const meters = txs.reduce((m, t) => (t.ledger !== Ledger.usd_micro ? m | (1 << t.ledger) : m), 0);
        s.open.set(v.session_id, openSessionFromView(v, meters, { hold: h, closing: v.closing !== null }));
      }),
    );
  }
}
