/**
 * The settlement part of the control plane (issue 13, ADR 0086): ownership challenges, payout
 * destinations, payouts (quote, lease, signed transaction) and the signed transactions recorded.
 *
 * Money never lives here (ADR 0070): a payout row references its ledger hold by id and records
 * what the ledger cannot hold. Every state-changing method is ONE conditional statement (or one
 * transaction), so two daemons or two calls racing on a payout are serialised by PostgreSQL's row
 * locks: a claim, a cancel and a signed-transaction record exclude each other by their WHERE
 * clauses. Integers wider than 2^31 are read as text and returned as bigint.
 */
import { sql, type Kysely, type RawBuilder } from "kysely";
import type { RailName } from "../domain/codes.js";
import type { RailDestinations } from "../domain/settlement/destinations.js";
import type { OwnershipChallenge } from "../rails/base/ownership.js";
import { payoutEvent, settlementNotificationEvent } from "../webhooks/events.js";
import { appendAudit } from "./audit.js";
import { enqueueWebhookEvent } from "./webhooks.js";
import type { Database } from "./schema.js";

/** A stored challenge, with its id and when it was used (null: never). */
export interface StoredChallenge extends OwnershipChallenge {
  challenge_id: string;
  rail: RailName;
  used_at_ms: number | null;
}

/** One payout row (see migration 0003 for the columns). */
export interface PayoutRow {
  payout_id: string;
  author_id: string;
  idempotency_key: string;
  rail: RailName;
  /** What the author asked for: "amount:<micro>" or "all_available" (idempotency check). */
  request: string;
  amount_micro: bigint;
  fee_micro: bigint;
  net_micro: bigint;
  /** Solana: the part of fee_micro quoted for the destination's token account rent (ADR 0091). */
  account_rent_fee_micro: bigint;
  quote_expire_time_ns: bigint;
  create_time_ns: bigint;
  update_time_ns: bigint;
  destination_address: string | null;
  quote_cancelled: boolean;
  confirm_refused: boolean;
  held: boolean;
  queued_time_ns: bigint | null;
  claimed: boolean;
  lease_expire_time_ns: bigint | null;
  signed_transaction: Uint8Array | null;
  tx_ref: string | null;
  replay_guard: bigint | null;
  void_intent: "cancelled" | "failed" | null;
  failure_reason: string | null;
  settled: "posted" | "voided" | null;
  network_fee_native: bigint | null;
}

/** The rail's facts of a payout's transaction (ADR 0084); units as in CompletePayoutRequest. */
export interface PayoutRailFacts {
  network_fee_native: bigint;
  block_number: bigint;
  confirmations: number;
}

/** A payout's rail facts as the analytics copy reads them (payout id as stored, 32 hex digits). */
export interface PayoutRailFactsRow extends PayoutRailFacts {
  payout_id: string;
  tx_ref: string;
}

/**
 * Reads the rail facts of these payouts (those with a recorded transaction); for the streamer's
 * `settlements` rows (ADR 0084). Missing facts read as 0.
 */
export async function readPayoutRailFacts(db: Kysely<Database>, payout_ids: readonly string[]): Promise<PayoutRailFactsRow[]> {
  if (payout_ids.length === 0) return [];
  const r = await sql<{ payout_id: string; tx_ref: string; fee: string | null; block: string | null; confirmations: number | null }>`
    select payout_id, tx_ref, network_fee_native::text as fee, rail_block_number::text as block, rail_confirmations as confirmations
    from payout where payout_id in (${sql.join(payout_ids)}) and tx_ref is not null`.execute(db);
  return r.rows.map((x) => ({
    payout_id: x.payout_id,
    tx_ref: x.tx_ref,
    network_fee_native: BigInt(x.fee ?? "0"),
    block_number: BigInt(x.block ?? "0"),
    confirmations: x.confirmations ?? 0,
  }));
}

type RawPayout = Record<keyof PayoutRow, unknown>;

const PAYOUT_COLUMNS = sql.raw(
  [
    "payout_id", "author_id", "idempotency_key", "rail", "request",
    "amount_micro::text as amount_micro", "fee_micro::text as fee_micro", "net_micro::text as net_micro",
    "account_rent_fee_micro::text as account_rent_fee_micro",
    "quote_expire_time_ns::text as quote_expire_time_ns", "create_time_ns::text as create_time_ns",
    "update_time_ns::text as update_time_ns", "destination_address", "quote_cancelled", "confirm_refused", "held",
    "queued_time_ns::text as queued_time_ns", "claimed", "lease_expire_time_ns::text as lease_expire_time_ns",
    "signed_transaction", "tx_ref", "replay_guard::text as replay_guard", "void_intent", "failure_reason", "settled",
    "network_fee_native::text as network_fee_native",
  ].join(", "),
);

const big = (v: unknown): bigint => BigInt(String(v));
const bigOrNull = (v: unknown): bigint | null => (v === null || v === undefined ? null : BigInt(String(v)));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function toPayout(r: RawPayout): PayoutRow {
  return {
    payout_id: String(r.payout_id),
    author_id: String(r.author_id),
    idempotency_key: String(r.idempotency_key),
    rail: String(r.rail) as RailName,
    request: String(r.request),
    amount_micro: big(r.amount_micro),
    fee_micro: big(r.fee_micro),
    net_micro: big(r.net_micro),
    account_rent_fee_micro: big(r.account_rent_fee_micro),
    quote_expire_time_ns: big(r.quote_expire_time_ns),
    create_time_ns: big(r.create_time_ns),
    update_time_ns: big(r.update_time_ns),
    destination_address: strOrNull(r.destination_address),
    quote_cancelled: r.quote_cancelled === true,
    confirm_refused: r.confirm_refused === true,
    held: r.held === true,
    queued_time_ns: bigOrNull(r.queued_time_ns),
    claimed: r.claimed === true,
    lease_expire_time_ns: bigOrNull(r.lease_expire_time_ns),
    signed_transaction: r.signed_transaction instanceof Uint8Array ? new Uint8Array(r.signed_transaction) : null,
    tx_ref: strOrNull(r.tx_ref),
    replay_guard: bigOrNull(r.replay_guard),
    void_intent: strOrNull(r.void_intent) as PayoutRow["void_intent"],
    failure_reason: strOrNull(r.failure_reason),
    settled: strOrNull(r.settled) as PayoutRow["settled"],
    network_fee_native: bigOrNull(r.network_fee_native),
  };
}

/**
 * An event the author must hear about (settlement outbox, migration 0005): written in the same
 * transaction as the change it reports; the webhook engine delivers it and sets relay_time_ns.
 * `payload` is the Standard Webhooks body (`{"type", "timestamp", "data"}`) as JSON text.
 */
export interface SettlementNotification {
  notification_id: string;
  event_type: string;
  author_id: string;
  rail: RailName;
  payload: string;
  create_time_ns: bigint;
}

/** What a new payout row holds (the quote). */
export type NewPayout = Pick<
  PayoutRow,
  "payout_id" | "author_id" | "idempotency_key" | "rail" | "request" | "amount_micro" | "fee_micro" | "net_micro" | "quote_expire_time_ns" | "create_time_ns"
> & { account_rent_fee_micro?: bigint };

/** Why RecordSignedTransaction's conditional update did not apply (read back after it). */
export type RecordSignedResult = { ok: true; row: PayoutRow } | { ok: false; row: PayoutRow | null };

export interface SettlementStore {
  insertChallenge(c: StoredChallenge): Promise<void>;
  getChallenge(challenge_id: string): Promise<StoredChallenge | null>;
  /** Marks a challenge used; false when it was used already (each challenge proves once). */
  useChallenge(challenge_id: string, now_ms: number): Promise<boolean>;

  getDestinations(author_id: string, rail: RailName): Promise<RailDestinations>;
  /**
   * Replaces the author's destinations on the rail and, in the same transaction, records the
   * author's notification of the change when there is one (the outbox: never a change without it).
   */
  putDestinations(author_id: string, rail: RailName, d: RailDestinations, notification?: SettlementNotification | null): Promise<void>;
  /** The latest notification of `event_type` for (author, rail) whose payload data names `address`. */
  latestNotification(author_id: string, rail: RailName, event_type: string, address: string): Promise<SettlementNotification | null>;

  /** Inserts a quoted payout; returns the row now stored under its id (an earlier one wins). */
  insertPayout(p: NewPayout): Promise<PayoutRow>;
  getPayout(payout_id: string): Promise<PayoutRow | null>;
  /** Whether a payout of the author on the rail to `address` was ever posted (paid). */
  hasPaidDestination(author_id: string, rail: RailName, address: string): Promise<boolean>;
  /**
   * The author's payouts (`author_id` "": every author's, for admin reads), newest first,
   * strictly older than `before` (create_time_ns, payout_id).
   */
  listPayouts(author_id: string, rail: RailName | null, before: { create_time_ns: bigint; payout_id: string } | null, limit: number): Promise<PayoutRow[]>;

  /** Fixes the destination at confirmation (only once, only if the quote was not cancelled). */
  fixDestination(payout_id: string, address: string, now_ns: bigint): Promise<PayoutRow | null>;
  markHeld(payout_id: string, now_ns: bigint): Promise<void>;
  markConfirmRefused(payout_id: string, now_ns: bigint): Promise<void>;
  /** Abandons a quote that was never confirmed; false when confirmation already started. */
  cancelQuote(payout_id: string, now_ns: bigint): Promise<boolean>;

  /** Leases up to `max` queued (or lease-expired) payouts of the rail until `lease_until_ns`. */
  claim(rail: RailName, now_ns: bigint, lease_until_ns: bigint, max: number): Promise<PayoutRow[]>;
  /** The rail's payouts whose lease runs after `now_ns` and that are still open. */
  leased(rail: RailName, now_ns: bigint): Promise<PayoutRow[]>;

  /**
   * Records a signed transaction: only under an unexpired lease, with no void intent and nothing
   * settled, and only when nothing is recorded yet or `replaces_tx_ref` names the recorded one.
   * The transaction is also kept in payout_transaction (the replaced one is marked).
   */
  recordSigned(args: { payout_id: string; now_ns: bigint; signed_transaction: Uint8Array; tx_ref: string; replay_guard: bigint; replaces_tx_ref: string }): Promise<RecordSignedResult>;

  /**
   * Records the intent to void (before the ledger void). Cancel: only with nothing signed and no
   * live lease. Fail: any open payout. Returns the row when the intent is (now) `cause`.
   */
  setVoidIntent(payout_id: string, cause: "cancelled" | "failed", reason: string, now_ns: bigint): Promise<PayoutRow | null>;
  /** Records the ledger's post or void (after the ledger accepted it). */
  markSettled(payout_id: string, settled: "posted" | "voided", now_ns: bigint, network_fee_native: bigint | null): Promise<void>;
  /**
   * Records what the rail reports of a payout's final transaction (fee in the rail's native
   * unit, block or slot, confirmations) BEFORE the ledger post (ADR 0084). Idempotent: a retry
   * overwrites with the adapter's latest report; nothing changes once the payout is settled.
   */
  recordRailFacts(payout_id: string, facts: PayoutRailFacts, now_ns: bigint): Promise<void>;
}

export function createSettlementStore(db: Kysely<Database>): SettlementStore {
  const one = async (q: RawBuilder<RawPayout>): Promise<PayoutRow | null> => {
    const r = await q.execute(db);
    return r.rows[0] ? toPayout(r.rows[0]) : null;
  };
  const getPayout = (id: string) => one(sql<RawPayout>`select ${PAYOUT_COLUMNS} from payout where payout_id = ${id}`);
  return {
    async insertChallenge(c) {
      await sql`insert into settlement_challenge (challenge_id, purpose, principal, rail, chain_id, address, nonce, message, issued_at_ms, expires_at_ms)
        values (${c.challenge_id}, ${c.purpose}, ${c.principal}, ${c.rail}, ${c.chain_id}, ${c.address}, ${c.nonce}, ${c.message}, ${c.issued_at_ms}, ${c.expires_at_ms})`.execute(db);
    },
    async getChallenge(id) {
      const r = await sql<Record<string, unknown>>`select challenge_id, purpose, principal, rail, chain_id::text as chain_id, address, nonce, message,
        issued_at_ms::text as issued_at_ms, expires_at_ms::text as expires_at_ms, used_at_ms::text as used_at_ms
        from settlement_challenge where challenge_id = ${id}`.execute(db);
      const c = r.rows[0];
      if (!c) return null;
      return {
        challenge_id: String(c.challenge_id),
        purpose: String(c.purpose) as StoredChallenge["purpose"],
        principal: String(c.principal),
        rail: String(c.rail) as RailName,
        chain_id: Number(c.chain_id),
        address: String(c.address) as StoredChallenge["address"],
        nonce: String(c.nonce) as StoredChallenge["nonce"],
        message: String(c.message),
        issued_at_ms: Number(c.issued_at_ms),
        expires_at_ms: Number(c.expires_at_ms),
        used_at_ms: c.used_at_ms === null ? null : Number(c.used_at_ms),
      };
    },
    async useChallenge(id, now_ms) {
      const r = await sql`update settlement_challenge set used_at_ms = ${now_ms} where challenge_id = ${id} and used_at_ms is null returning challenge_id`.execute(db);
      return r.rows.length === 1;
    },

    async getDestinations(author_id, rail) {
      const r = await sql<{ slot: string; address: string; effective_time_ns: string; create_time_ns: string }>`select slot, address,
        effective_time_ns::text as effective_time_ns, create_time_ns::text as create_time_ns
        from payout_destination where author_id = ${author_id} and rail = ${rail}`.execute(db);
      const d: RailDestinations = { active: null, pending: null };
      for (const row of r.rows) {
        const dest = { address: row.address, effective_time_ns: BigInt(row.effective_time_ns), create_time_ns: BigInt(row.create_time_ns) };
        if (row.slot === "active") d.active = dest;
        else d.pending = dest;
      }
      return d;
    },
    async putDestinations(author_id, rail, d, notification = null) {
      await db.transaction().execute(async (trx) => {
        if (notification !== null) {
          const n = notification;
          // Relayed into the webhook outbox in this same transaction (ADR 0109): relay_time_ns is set.
          await enqueueWebhookEvent(trx, settlementNotificationEvent(n), n.create_time_ns);
          await sql`insert into settlement_notification (notification_id, event_type, author_id, rail, payload, create_time_ns, relay_time_ns)
            values (${n.notification_id}, ${n.event_type}, ${n.author_id}, ${n.rail}, ${n.payload}, ${n.create_time_ns.toString()}, ${n.create_time_ns.toString()})`.execute(trx);
        }
        await sql`delete from payout_destination where author_id = ${author_id} and rail = ${rail}`.execute(trx);
        for (const [slot, dest] of [["active", d.active], ["pending", d.pending]] as const) {
          if (dest === null) continue;
          await sql`insert into payout_destination (author_id, rail, slot, address, effective_time_ns, create_time_ns)
            values (${author_id}, ${rail}, ${slot}, ${dest.address}, ${dest.effective_time_ns.toString()}, ${dest.create_time_ns.toString()})`.execute(trx);
        }
      });
    },

    async latestNotification(author_id, rail, event_type, address) {
      const r = await sql<{ notification_id: string; event_type: string; author_id: string; rail: string; payload: string; create_time_ns: string }>`select
          notification_id, event_type, author_id, rail, payload, create_time_ns::text as create_time_ns from settlement_notification
        where author_id = ${author_id} and rail = ${rail} and event_type = ${event_type} and (payload::jsonb -> 'data' ->> 'address') = ${address}
        order by create_time_ns desc limit 1`.execute(db);
      const n = r.rows[0];
      return n ? { ...n, rail: n.rail as RailName, create_time_ns: BigInt(n.create_time_ns) } : null;
    },

    async insertPayout(p) {
      await sql`insert into payout (payout_id, author_id, idempotency_key, rail, request, amount_micro, fee_micro, net_micro, account_rent_fee_micro, quote_expire_time_ns, create_time_ns, update_time_ns)
        values (${p.payout_id}, ${p.author_id}, ${p.idempotency_key}, ${p.rail}, ${p.request}, ${p.amount_micro.toString()}, ${p.fee_micro.toString()},
          ${p.net_micro.toString()}, ${(p.account_rent_fee_micro ?? 0n).toString()}, ${p.quote_expire_time_ns.toString()}, ${p.create_time_ns.toString()}, ${p.create_time_ns.toString()})
        on conflict do nothing`.execute(db);
      const row = await getPayout(p.payout_id);
      if (row === null) throw new Error(`payout ${p.payout_id} neither inserted nor found`);
      return row;
    },
    getPayout,
    async hasPaidDestination(author_id, rail, address) {
      const r = await sql`select 1 from payout where author_id = ${author_id} and rail = ${rail} and destination_address = ${address} and settled = 'posted' limit 1`.execute(db);
      return r.rows.length > 0;
    },
    async listPayouts(author_id, rail, before, limit) {
      const r = await sql<RawPayout>`select ${PAYOUT_COLUMNS} from payout where (${author_id} = '' or author_id = ${author_id})
        and (${rail}::text is null or rail = ${rail})
        and (${before === null} or (create_time_ns, payout_id) < (${before?.create_time_ns.toString() ?? "0"}::bigint, ${before?.payout_id ?? ""}))
        order by create_time_ns desc, payout_id desc limit ${limit}`.execute(db);
      return r.rows.map(toPayout);
    },

    async fixDestination(id, address, now_ns) {
      return one(sql<RawPayout>`update payout set destination_address = coalesce(destination_address, ${address}), update_time_ns = ${now_ns.toString()}
        where payout_id = ${id} and not quote_cancelled returning ${PAYOUT_COLUMNS}`);
    },
    async markHeld(id, now_ns) {
      await db.transaction().execute(async (trx) => {
        const r = await sql<RawPayout>`update payout set held = true, queued_time_ns = coalesce(queued_time_ns, ${now_ns.toString()}), update_time_ns = ${now_ns.toString()}
          where payout_id = ${id} and not held returning ${PAYOUT_COLUMNS}`.execute(trx);
        if (r.rows[0]) await enqueueWebhookEvent(trx, payoutEvent("payout.requested", toPayout(r.rows[0]), now_ns), now_ns);
      });
    },
    async markConfirmRefused(id, now_ns) {
      await sql`update payout set confirm_refused = true, update_time_ns = ${now_ns.toString()} where payout_id = ${id} and not held`.execute(db);
    },
    async cancelQuote(id, now_ns) {
      const r = await sql`update payout set quote_cancelled = true, update_time_ns = ${now_ns.toString()}
        where payout_id = ${id} and destination_address is null returning payout_id`.execute(db);
      return r.rows.length === 1;
    },

    async claim(rail, now_ns, lease_until_ns, max) {
      const now = now_ns.toString();
      const r = await sql<RawPayout>`update payout set claimed = true, lease_expire_time_ns = ${lease_until_ns.toString()}, update_time_ns = ${now}
        where payout_id in (
          select payout_id from payout
          where rail = ${rail} and held and settled is null and void_intent is null
            and (lease_expire_time_ns is null or lease_expire_time_ns <= ${now}::bigint)
          order by queued_time_ns, payout_id limit ${max} for update skip locked)
        returning ${PAYOUT_COLUMNS}`.execute(db);
      return r.rows.map(toPayout);
    },
    async leased(rail, now_ns) {
      const r = await sql<RawPayout>`select ${PAYOUT_COLUMNS} from payout where rail = ${rail} and held and settled is null
        and void_intent is null and lease_expire_time_ns > ${now_ns.toString()}::bigint order by queued_time_ns, payout_id`.execute(db);
      return r.rows.map(toPayout);
    },

    async recordSigned(a) {
      const now = a.now_ns.toString();
      const updated = await db.transaction().execute(async (trx) => {
        const r = await sql<RawPayout>`update payout set signed_transaction = ${a.signed_transaction}, tx_ref = ${a.tx_ref},
            replay_guard = ${a.replay_guard.toString()}, update_time_ns = ${now}
          where payout_id = ${a.payout_id} and held and settled is null and void_intent is null
            and lease_expire_time_ns > ${now}::bigint
            and (tx_ref is null or (${a.replaces_tx_ref} <> '' and tx_ref = ${a.replaces_tx_ref}))
          returning ${PAYOUT_COLUMNS}`.execute(trx);
        if (r.rows.length === 0) return null;
        if (a.replaces_tx_ref !== "") {
          await sql`update payout_transaction set replaced_by = ${a.tx_ref} where payout_id = ${a.payout_id} and tx_ref = ${a.replaces_tx_ref}`.execute(trx);
        }
        await sql`insert into payout_transaction (payout_id, tx_ref, signed_transaction, replay_guard, record_time_ns)
          values (${a.payout_id}, ${a.tx_ref}, ${a.signed_transaction}, ${a.replay_guard.toString()}, ${now})`.execute(trx);
        const row = toPayout(r.rows[0]!);
        // The first signed transaction is the submission (a fee bump keeps the event: same id).
        await enqueueWebhookEvent(trx, payoutEvent("payout.submitted", row, a.now_ns), a.now_ns);
        return row;
      });
      return updated !== null ? { ok: true, row: updated } : { ok: false, row: await getPayout(a.payout_id) };
    },

    async setVoidIntent(id, cause, reason, now_ns) {
      const now = now_ns.toString();
      if (cause === "cancelled") {
        return one(sql<RawPayout>`update payout set void_intent = 'cancelled', failure_reason = coalesce(failure_reason, ${reason}), update_time_ns = ${now}
          where payout_id = ${id} and held and settled is null and tx_ref is null
            and (void_intent = 'cancelled' or (void_intent is null and (lease_expire_time_ns is null or lease_expire_time_ns <= ${now}::bigint)))
          returning ${PAYOUT_COLUMNS}`);
      }
      return one(sql<RawPayout>`update payout set void_intent = 'failed', failure_reason = coalesce(failure_reason, ${reason}), update_time_ns = ${now}
        where payout_id = ${id} and held and (void_intent is null or void_intent = 'failed') and (settled is null or settled = 'voided')
        returning ${PAYOUT_COLUMNS}`);
    },
    async recordRailFacts(id, f, now_ns) {
      await sql`update payout set network_fee_native = ${f.network_fee_native.toString()}::numeric, rail_block_number = ${f.block_number.toString()}::numeric,
        rail_confirmations = ${f.confirmations}, update_time_ns = ${now_ns.toString()} where payout_id = ${id} and settled is null`.execute(db);
    },
    async markSettled(id, settled, now_ns, fee) {
      await db.transaction().execute(async (trx) => {
        const r = await sql<RawPayout>`update payout set settled = ${settled}, network_fee_native = coalesce(${fee === null ? null : fee.toString()}::numeric, network_fee_native),
          update_time_ns = ${now_ns.toString()} where payout_id = ${id} and (settled is null or settled = ${settled}) returning ${PAYOUT_COLUMNS}`.execute(trx);
        const row = r.rows[0] ? toPayout(r.rows[0]) : null;
        if (row === null) return;
        // A repeat (same `settled`) enqueues the same event id again: nothing new is stored.
        const type = settled === "posted" ? "payout.completed" : row.void_intent === "cancelled" ? "payout.cancelled" : "payout.failed";
        await enqueueWebhookEvent(trx, payoutEvent(type, row, now_ns), now_ns);
      });
    },
  };
}

// ---- deposits (migration 0004, ADR 0087) -------------------------------------------------------

/** A deposit as recorded (one row per canonical chain event). */
export interface DepositRow {
  deposit_id: string;
  rail: RailName;
  chain_id: string;
  tx_ref: string;
  event_index: number;
  from_address: string;
  amount_micro: bigint;
  block_number: bigint;
  block_hash: string;
  confirmations: number;
  finality_depth: number;
  state: "confirming" | "credited" | "held" | "reorged";
  agent_id: string | null;
  create_time_ns: bigint;
  update_time_ns: bigint;
  /** Admin release (HELD → CREDITED, ADR 0088): the admin principal's id, reason and time. */
  released_by: string | null;
  release_reason: string | null;
  release_time_ns: bigint | null;
}

/** A bound deposit source. */
export interface DepositSourceRow {
  rail: RailName;
  address: string;
  agent_id: string;
  create_time_ns: bigint;
}

/** A refused deposit report, as kept. */
export interface DepositRefusalRow {
  refusal_id: bigint;
  rail: RailName;
  chain_id: string;
  tx_ref: string;
  event_index: number;
  reason: string;
  detail: string;
  report: string;
  time_ns: bigint;
}

/** Paging position: strictly older than (time, id), newest first. */
export interface PageBefore {
  time_ns: bigint;
  id: string;
}

/** Who releases a held deposit, for its audit entry (the actor id is the releasing admin). */
export interface ReleaseAudit {
  actor_kind: string;
  request_id: string;
}

export interface DepositStore {
  /** The agent an address is bound to on a rail, or null. */
  sourceAgent(rail: RailName, address: string): Promise<string | null>;
  /** Binds an address to an agent; returns the agent it is bound to now (the first binder wins). */
  bindSource(rail: RailName, address: string, agent_id: string, now_ns: bigint): Promise<string>;
  getDeposit(deposit_id: string): Promise<DepositRow | null>;
  /**
   * Records a report. A credited row stays credited (only confirmations and the block move);
   * a held row becomes credited only by an admin's release (not here).
   */
  recordDeposit(d: Omit<DepositRow, "create_time_ns" | "update_time_ns">, now_ns: bigint): Promise<DepositRow>;
  /** Keeps a refused report for the record. */
  recordRefusal(r: { rail: RailName; chain_id: string; tx_ref: string; event_index: number; reason: string; detail: string; report: string }, now_ns: bigint): Promise<void>;

  /** The agent's sources, newest first, strictly older than `before` (create_time_ns, address). */
  listSources(agent_id: string, rail: RailName | null, before: PageBefore | null, limit: number): Promise<DepositSourceRow[]>;
  /**
   * Deposits newest first, strictly older than `before` (create_time_ns, deposit_id): the agent's
   * (recorded for it: from a source bound to it, or released to it), or with agent_id null the
   * HELD ones (an admin's review queue).
   */
  listDeposits(agent_id: string | null, rail: RailName | null, before: PageBefore | null, limit: number): Promise<DepositRow[]>;
  /** Refused reports, newest first, with refusal_id < `before`. */
  listRefusals(rail: RailName | null, before: bigint | null, limit: number): Promise<DepositRefusalRow[]>;
  /**
   * Records an admin's release after the ledger credited it: HELD → CREDITED to `agent_id`
   * (only from HELD; a retry for the same agent returns the row). Null when the row is neither.
   */
  releaseHeld(deposit_id: string, agent_id: string, admin_id: string, reason: string, now_ns: bigint, audit?: ReleaseAudit): Promise<DepositRow | null>;
  /**
   * The adapter reported the deposit's block `block_hash` gone from the canonical chain: the
   * block is remembered as orphaned for this deposit, and a CONFIRMING / HELD row whose recorded
   * block is that one becomes REORGED. Returns the row after.
   */
  markOrphaned(deposit_id: string, block_hash: string, now_ns: bigint): Promise<DepositRow>;
  /** True when the adapter reported `block_hash` orphaned for this deposit. */
  isOrphaned(deposit_id: string, block_hash: string): Promise<boolean>;
}

const DEPOSIT_COLUMNS = sql.raw(
  "deposit_id, rail, chain_id, tx_ref, event_index, from_address, amount_micro::text as amount_micro, block_number::text as block_number, " +
    "block_hash, confirmations, finality_depth, state, agent_id, create_time_ns::text as create_time_ns, update_time_ns::text as update_time_ns, " +
    "released_by, release_reason, release_time_ns::text as release_time_ns",
);

function toDeposit(r: Record<string, unknown>): DepositRow {
  return {
    deposit_id: String(r.deposit_id),
    rail: String(r.rail) as RailName,
    chain_id: String(r.chain_id),
    tx_ref: String(r.tx_ref),
    event_index: Number(r.event_index),
    from_address: String(r.from_address),
    amount_micro: big(r.amount_micro),
    block_number: big(r.block_number),
    block_hash: String(r.block_hash),
    confirmations: Number(r.confirmations),
    finality_depth: Number(r.finality_depth),
    state: String(r.state) as DepositRow["state"],
    agent_id: strOrNull(r.agent_id),
    create_time_ns: big(r.create_time_ns),
    update_time_ns: big(r.update_time_ns),
    released_by: strOrNull(r.released_by),
    release_reason: strOrNull(r.release_reason),
    release_time_ns: bigOrNull(r.release_time_ns),
  };
}

export function createDepositStore(db: Kysely<Database>): DepositStore {
  return {
    async sourceAgent(rail, address) {
      const r = await sql<{ agent_id: string }>`select agent_id from deposit_source where rail = ${rail} and address = ${address}`.execute(db);
      return r.rows[0]?.agent_id ?? null;
    },
    async bindSource(rail, address, agent_id, now_ns) {
      await sql`insert into deposit_source (rail, address, agent_id, create_time_ns) values (${rail}, ${address}, ${agent_id}, ${now_ns.toString()})
        on conflict do nothing`.execute(db);
      const r = await sql<{ agent_id: string }>`select agent_id from deposit_source where rail = ${rail} and address = ${address}`.execute(db);
      return r.rows[0]!.agent_id;
    },
    async getDeposit(id) {
      const r = await sql<Record<string, unknown>>`select ${DEPOSIT_COLUMNS} from deposit where deposit_id = ${id}`.execute(db);
      return r.rows[0] ? toDeposit(r.rows[0]) : null;
    },
    async recordDeposit(d, now_ns) {
      const now = now_ns.toString();
      const r = await sql<Record<string, unknown>>`insert into deposit (deposit_id, rail, chain_id, tx_ref, event_index, from_address, amount_micro,
          block_number, block_hash, confirmations, finality_depth, state, agent_id, create_time_ns, update_time_ns)
        values (${d.deposit_id}, ${d.rail}, ${d.chain_id}, ${d.tx_ref}, ${d.event_index}, ${d.from_address}, ${d.amount_micro.toString()},
          ${d.block_number.toString()}, ${d.block_hash}, ${d.confirmations}, ${d.finality_depth}, ${d.state}, ${d.agent_id}, ${now}, ${now})
        on conflict (deposit_id) do update set
          block_number = excluded.block_number, block_hash = excluded.block_hash,
          confirmations = excluded.confirmations, update_time_ns = excluded.update_time_ns,
          state = case when deposit.state in ('confirming', 'reorged') then excluded.state else deposit.state end,
          agent_id = case when deposit.state in ('confirming', 'reorged') then excluded.agent_id else deposit.agent_id end
        returning ${DEPOSIT_COLUMNS}`.execute(db);
      return toDeposit(r.rows[0]!);
    },
    async recordRefusal(x, now_ns) {
      await sql`insert into deposit_refusal (rail, chain_id, tx_ref, event_index, reason, detail, report, time_ns)
        values (${x.rail}, ${x.chain_id}, ${x.tx_ref}, ${x.event_index}, ${x.reason}, ${x.detail}, ${x.report}, ${now_ns.toString()})`.execute(db);
    },
    async listSources(agent_id, rail, before, limit) {
      const r = await sql<{ rail: string; address: string; agent_id: string; create_time_ns: string }>`select rail, address, agent_id,
          create_time_ns::text as create_time_ns from deposit_source
        where agent_id = ${agent_id} and (${rail}::text is null or rail = ${rail})
          and (${before === null} or (create_time_ns, address) < (${before?.time_ns.toString() ?? "0"}::bigint, ${before?.id ?? ""}))
        order by create_time_ns desc, address desc limit ${limit}`.execute(db);
      return r.rows.map((x) => ({ rail: x.rail as RailName, address: x.address, agent_id: x.agent_id, create_time_ns: BigInt(x.create_time_ns) }));
    },
    async listDeposits(agent_id, rail, before, limit) {
      const r = await sql<Record<string, unknown>>`select ${DEPOSIT_COLUMNS} from deposit
        where (${rail}::text is null or rail = ${rail})
          and (case when ${agent_id}::text is null then state = 'held' else agent_id = ${agent_id} end)
          and (${before === null} or (create_time_ns, deposit_id) < (${before?.time_ns.toString() ?? "0"}::bigint, ${before?.id ?? ""}))
        order by create_time_ns desc, deposit_id desc limit ${limit}`.execute(db);
      return r.rows.map(toDeposit);
    },
    async listRefusals(rail, before, limit) {
      const r = await sql<Record<string, unknown>>`select refusal_id::text as refusal_id, rail, chain_id, tx_ref, event_index, reason, detail, report,
          time_ns::text as time_ns from deposit_refusal
        where (${rail}::text is null or rail = ${rail}) and (${before === null} or refusal_id < ${before?.toString() ?? "0"}::bigint)
        order by refusal_id desc limit ${limit}`.execute(db);
      return r.rows.map((x) => ({
        refusal_id: big(x.refusal_id),
        rail: String(x.rail) as RailName,
        chain_id: String(x.chain_id),
        tx_ref: String(x.tx_ref),
        event_index: Number(x.event_index),
        reason: String(x.reason),
        detail: String(x.detail),
        report: String(x.report),
        time_ns: big(x.time_ns),
      }));
    },
    async releaseHeld(id, agent_id, admin_id, reason, now_ns, audit) {
      const now = now_ns.toString();
      const released = await db.transaction().execute(async (trx) => {
        const before = await sql<Record<string, unknown>>`select ${DEPOSIT_COLUMNS} from deposit where deposit_id = ${id} and state = 'held' for update`.execute(trx);
        const r = await sql<Record<string, unknown>>`update deposit set state = 'credited', agent_id = ${agent_id}, released_by = ${admin_id},
            release_reason = ${reason}, release_time_ns = ${now}, update_time_ns = ${now}
          where deposit_id = ${id} and state = 'held' returning ${DEPOSIT_COLUMNS}`.execute(trx);
        if (!r.rows[0] || !before.rows[0]) return null;
        const after = toDeposit(r.rows[0]);
        if (audit) {
          const b = toDeposit(before.rows[0]);
          // The release and its audit entry commit together (issue 16, ADR 0109).
          await appendAudit(trx, {
            time_ns: now_ns,
            actor_kind: audit.actor_kind,
            actor_id: admin_id,
            action: "deposit.release_held",
            subject: `deposit:${id}`,
            request_id: audit.request_id,
            reason,
            before: { state: b.state, agent_id: b.agent_id, amount_micro: b.amount_micro.toString() },
            after: { state: after.state, agent_id: after.agent_id, amount_micro: after.amount_micro.toString() },
            dedupe_key: `deposit.release_held:${id}`,
          });
        }
        return after;
      });
      if (released) return released;
      const cur = await sql<Record<string, unknown>>`select ${DEPOSIT_COLUMNS} from deposit where deposit_id = ${id}
        and state = 'credited' and agent_id = ${agent_id} and released_by is not null`.execute(db);
      return cur.rows[0] ? toDeposit(cur.rows[0]) : null;
    },
    async markOrphaned(id, block_hash, now_ns) {
      const now = now_ns.toString();
      return db.transaction().execute(async (trx) => {
        await sql`insert into deposit_orphaned_block (deposit_id, block_hash, report_time_ns) values (${id}, ${block_hash}, ${now})
          on conflict do nothing`.execute(trx);
        await sql`update deposit set state = 'reorged', update_time_ns = ${now}
          where deposit_id = ${id} and state in ('confirming', 'held') and block_hash = ${block_hash}`.execute(trx);
        const r = await sql<Record<string, unknown>>`select ${DEPOSIT_COLUMNS} from deposit where deposit_id = ${id}`.execute(trx);
        return toDeposit(r.rows[0]!);
      });
    },
    async isOrphaned(id, block_hash) {
      const r = await sql`select 1 from deposit_orphaned_block where deposit_id = ${id} and block_hash = ${block_hash}`.execute(db);
      return r.rows.length > 0;
    },
  };
}

/**
 * Deposits changed at or after `from` (update_time_ns, deposit_id), oldest change first: the rail
 * facts of deposits copied into ClickHouse `rail_deposits` by the streamer (issue 13, ADR 0084).
 * Keyset order (update_time_ns, deposit_id), so a page boundary never skips a row.
 */
export async function listDepositsChangedSince(
  db: Kysely<Database>,
  from: { update_time_ns: bigint; deposit_id: string },
  limit: number,
): Promise<DepositRow[]> {
  const r = await sql<Record<string, unknown>>`select ${DEPOSIT_COLUMNS} from deposit
    where (update_time_ns, deposit_id) > (${from.update_time_ns.toString()}::bigint, ${from.deposit_id})
    order by update_time_ns, deposit_id limit ${limit}`.execute(db);
  return r.rows.map(toDeposit);
}
