/**
 * ListSessions: holds of an agent (by wallet) or of masque indexes (by user_data_64), newest
 * first, each rebuilt from the ledger; a timestamp cursor makes pages stable (ADR 0032).
 */
import { AccountFilterFlags, QueryFilterFlags, TransferFlags, type Transfer } from "tigerbeetle-node";
import { SessionStatus as ApiSessionStatus, type Session } from "../../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { agentWalletId } from "../../domain/accounts.js";
import { Ledger, TransferCode } from "../../domain/codes.js";
import { reconstructSession } from "../../domain/sessions.js";
import { encodePageToken } from "../views.js";
import { sessionToProto, STATUS_TO_API } from "./proto.js";
import { LEDGER_LIMIT, priceBookEntry, sessionTransfers } from "./reads.js";
import type { SessionState } from "./state.js";

export interface ListQuery {
  /** Whose sessions: an agent, masque indexes, or everything (admins). */
  owner: { case: "agentId"; agent_id: string } | { case: "masques"; indexes: number[] } | { case: "all" };
  statuses: ReadonlySet<ApiSessionStatus>;
  /** Only sessions whose pinned price book pays this author (null: any). */
  payee: string | null;
  /** Page size (1..500). */
  size: number;
  /** Continue strictly before this ledger timestamp (0: from the newest). */
  before_ns: bigint;
  /** Fingerprint input of the page token. */
  token_query: readonly unknown[];
}

/** At most this many ledger reads per page; then the caller continues from the token. */
const SCAN_BUDGET = 50;

export async function executeList(s: SessionState, q: ListQuery): Promise<{ sessions: Session[]; nextPageToken: string }> {
  const fetchHolds = async (beforeNs: bigint, limit: number): Promise<Transfer[]> => {
    const tmax = beforeNs === 0n ? 0n : beforeNs - 1n;
    if (q.owner.case === "agentId") {
      return s.ledger.getAccountTransfers({
        account_id: agentWalletId(q.owner.agent_id),
        user_data_128: 0n,
        user_data_64: 0n,
        user_data_32: 0,
        code: TransferCode.session_hold,
        timestamp_min: 0n,
        timestamp_max: tmax,
        limit,
        flags: AccountFilterFlags.debits | AccountFilterFlags.reversed,
      });
    }
    const filters = q.owner.case === "all" ? [0] : q.owner.indexes;
    const all: Transfer[] = [];
    for (const idx of filters) {
      all.push(
        ...(await s.ledger.queryTransfers({
          user_data_128: 0n,
          user_data_64: BigInt(idx),
          user_data_32: 0,
          ledger: Ledger.usd_micro,
          code: TransferCode.session_hold,
          timestamp_min: 0n,
          timestamp_max: tmax,
          limit,
          flags: QueryFilterFlags.reversed,
        })),
      );
    }
    all.sort((a, b) => (a.timestamp < b.timestamp ? 1 : a.timestamp > b.timestamp ? -1 : 0));
    return all.slice(0, limit);
  };

  const out: Session[] = [];
  let next = "";
  let before = q.before_ns;
  const batch = Math.min(LEDGER_LIMIT, q.size * 4);
  const noHolds = q.owner.case === "masques" && q.owner.indexes.length === 0;
  for (let scans = 0; !noHolds; scans++) {
    if (scans === SCAN_BUDGET) {
      next = encodePageToken(before, q.token_query); // scan budget spent: the caller continues from here
      break;
    }
    const raw = await fetchHolds(before, batch);
    let full = false;
    for (const t of raw) {
      before = t.timestamp;
      if ((t.flags & TransferFlags.pending) === 0) continue; // posts and voids of holds share the code
      const v = reconstructSession(t.user_data_128, await sessionTransfers(s, t.user_data_128), s.clock());
      if (!v) continue;
      if (q.statuses.size > 0 && !q.statuses.has(STATUS_TO_API[v.status])) continue;
      // A masque index may change authors between price books: an author sees only the
      // sessions whose pinned price book pays them.
      if (q.payee !== null && (await priceBookEntry(s, v.price_version))?.author !== q.payee) continue;
      out.push(await sessionToProto(s, v));
      if (out.length === q.size) {
        full = true;
        break;
      }
    }
    if (full) {
      next = encodePageToken(before, q.token_query);
      break;
    }
    if (raw.length < batch) break;
  }
  return { sessions: out, nextPageToken: next };
}
