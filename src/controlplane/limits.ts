/**
 * Control-plane rows of peer transfers and refunds (migration 0009_limits): text the ledger
 * cannot hold (memos, reasons, agent names). Written before the ledger chain (insert-or-keep),
 * read back only for transfers the ledger has.
 */
import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

export interface PeerTransferRow {
  transfer_id: string;
  from_agent_id: string;
  to_agent_id: string;
  amount_micro: bigint;
  memo: string;
  idempotency_key: string;
  create_time_ns: bigint;
}

export interface RefundRow {
  refund_id: string;
  session_id: string;
  amount_micro: bigint;
  reason: string;
  requested_by: string;
  idempotency_key: string;
  create_time_ns: bigint;
}

export interface LimitsStore {
  /** Record a peer transfer's text; a row with the same id is kept as it is. */
  putPeerTransfer(row: PeerTransferRow): Promise<void>;
  /** The rows of these transfer ids (missing ids are absent from the map). */
  peerTransfers(ids: readonly string[]): Promise<Map<string, PeerTransferRow>>;
  /** Record a refund's text; a row with the same id is kept as it is. */
  putRefund(row: RefundRow): Promise<void>;
  refunds(ids: readonly string[]): Promise<Map<string, RefundRow>>;
}

interface RawPeer {
  transfer_id: string;
  from_agent_id: string;
  to_agent_id: string;
  amount_micro: string | number | bigint;
  memo: string;
  idempotency_key: string;
  create_time_ns: string | number | bigint;
}
interface RawRefund {
  refund_id: string;
  session_id: string;
  amount_micro: string | number | bigint;
  reason: string;
  requested_by: string;
  idempotency_key: string;
  create_time_ns: string | number | bigint;
}

export function createLimitsStore(db: Kysely<Database>): LimitsStore {
  return {
    async putPeerTransfer(r) {
      await sql`insert into peer_transfer (transfer_id, from_agent_id, to_agent_id, amount_micro, memo, idempotency_key, create_time_ns)
        values (${r.transfer_id}, ${r.from_agent_id}, ${r.to_agent_id}, ${r.amount_micro.toString()}, ${r.memo}, ${r.idempotency_key}, ${r.create_time_ns.toString()})
        on conflict (transfer_id) do nothing`.execute(db);
    },
    async peerTransfers(ids) {
      const out = new Map<string, PeerTransferRow>();
      if (ids.length === 0) return out;
      const res = await sql<RawPeer>`select * from peer_transfer where transfer_id in (${sql.join(ids)})`.execute(db);
      for (const r of res.rows) out.set(r.transfer_id, { ...r, amount_micro: BigInt(r.amount_micro), create_time_ns: BigInt(r.create_time_ns) });
      return out;
    },
    async putRefund(r) {
      await sql`insert into session_refund (refund_id, session_id, amount_micro, reason, requested_by, idempotency_key, create_time_ns)
        values (${r.refund_id}, ${r.session_id}, ${r.amount_micro.toString()}, ${r.reason}, ${r.requested_by}, ${r.idempotency_key}, ${r.create_time_ns.toString()})
        on conflict (refund_id) do nothing`.execute(db);
    },
    async refunds(ids) {
      const out = new Map<string, RefundRow>();
      if (ids.length === 0) return out;
      const res = await sql<RawRefund>`select * from session_refund where refund_id in (${sql.join(ids)})`.execute(db);
      for (const r of res.rows) out.set(r.refund_id, { ...r, amount_micro: BigInt(r.amount_micro), create_time_ns: BigInt(r.create_time_ns) });
      return out;
    },
  };
}
