/**
 * The Lightning part of the control plane (issue 15, migration 0010, ADR 0094/0095): a Lightning
 * payout's conversion quote and the author's invoice, and agents' deposit invoices.
 *
 * Money never lives here (ADR 0070). The unique payment_hash columns are what make "a payment hash
 * is paid at most once" hold across daemons: a second payout naming a hash already attached to any
 * payout is refused by PostgreSQL, not by one process's memory. Every state change is one
 * conditional statement. Wide integers are read as text and returned as bigint.
 */
import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

/** A Lightning payout's quote (msat at a recorded rate) and, once confirmed, its invoice. */
export interface LightningPayoutRow {
  payout_id: string;
  amount_msat: bigint;
  rate_e6: bigint;
  rate_source: string;
  rate_time_ns: bigint;
  bolt11: string | null;
  payment_hash: string | null;
  payee: string | null;
  invoice_expire_time_s: bigint | null;
  preimage: string | null;
  fee_msat: bigint | null;
}

/** An agent's deposit invoice. */
export interface DepositInvoiceRow {
  deposit_invoice_id: string;
  agent_id: string;
  idempotency_key: string;
  amount_micro: bigint;
  amount_msat: bigint;
  rate_e6: bigint;
  rate_source: string;
  rate_time_ns: bigint;
  expire_time_ns: bigint;
  create_time_ns: bigint;
  lease_expire_time_ns: bigint | null;
  bolt11: string | null;
  payment_hash: string | null;
  deposit_id: string | null;
  amount_paid_msat: bigint | null;
  credit_time_ns: bigint | null;
}

export type AttachInvoiceResult = { ok: true; row: LightningPayoutRow } | { ok: false; why: "hash_used" | "other_invoice"; row: LightningPayoutRow | null };

export interface LightningStore {
  /** Inserts a payout's quote; an existing row wins (idempotent retry). */
  insertPayoutQuote(r: Pick<LightningPayoutRow, "payout_id" | "amount_msat" | "rate_e6" | "rate_source" | "rate_time_ns">): Promise<LightningPayoutRow>;
  getPayout(payout_id: string): Promise<LightningPayoutRow | null>;
  /**
   * Attaches the author's invoice at confirmation. Refused when this payout already has another
   * invoice, or when the payment hash belongs to any payout (unique: paid at most once, ever).
   */
  attachInvoice(a: { payout_id: string; bolt11: string; payment_hash: string; payee: string; invoice_expire_time_s: number }): Promise<AttachInvoiceResult>;
  /** Records the preimage and the routing fee once the node reported success. */
  recordPaid(payout_id: string, preimage: string, fee_msat: bigint): Promise<void>;

  /** Inserts a deposit invoice quote; an existing row for (agent, key) wins. */
  insertDepositInvoice(r: Omit<DepositInvoiceRow, "lease_expire_time_ns" | "bolt11" | "payment_hash" | "deposit_id" | "amount_paid_msat" | "credit_time_ns">): Promise<DepositInvoiceRow>;
  getDepositInvoice(id: string): Promise<DepositInvoiceRow | null>;
  byPaymentHash(payment_hash: string): Promise<DepositInvoiceRow | null>;
  /**
   * Leases up to `max` deposit invoices still to be created (quote not expired, no live lease)
   * until `lease_until_ns`, and returns them with every created, uncredited invoice not yet past
   * its expiry by `watch_grace_ns` (the adapter watches those for payment).
   */
  claimDepositInvoices(now_ns: bigint, lease_until_ns: bigint, max: number, watch_grace_ns: bigint): Promise<DepositInvoiceRow[]>;
  /** Records the created invoice (once; the same invoice again is a no-op). Null when another invoice is recorded. */
  recordDepositInvoice(id: string, bolt11: string, payment_hash: string): Promise<DepositInvoiceRow | null>;
  /** Records the credit (after the ledger accepted it). */
  markDepositCredited(id: string, deposit_id: string, amount_paid_msat: bigint, now_ns: bigint): Promise<void>;
}

const big = (v: unknown): bigint => BigInt(String(v));
const bigOrNull = (v: unknown): bigint | null => (v === null || v === undefined ? null : BigInt(String(v)));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

const PAYOUT_COLS = sql.raw(
  "payout_id, amount_msat::text as amount_msat, rate_e6::text as rate_e6, rate_source, rate_time_ns::text as rate_time_ns, bolt11, payment_hash, payee, invoice_expire_time_s::text as invoice_expire_time_s, preimage, fee_msat::text as fee_msat",
);
const INVOICE_COLS = sql.raw(
  [
    "deposit_invoice_id", "agent_id", "idempotency_key", "amount_micro::text as amount_micro", "amount_msat::text as amount_msat",
    "rate_e6::text as rate_e6", "rate_source", "rate_time_ns::text as rate_time_ns", "expire_time_ns::text as expire_time_ns",
    "create_time_ns::text as create_time_ns", "lease_expire_time_ns::text as lease_expire_time_ns", "bolt11", "payment_hash", "deposit_id",
    "amount_paid_msat::text as amount_paid_msat", "credit_time_ns::text as credit_time_ns",
  ].join(", "),
);

function toPayout(r: Record<string, unknown>): LightningPayoutRow {
  return {
    payout_id: String(r.payout_id),
    amount_msat: big(r.amount_msat),
    rate_e6: big(r.rate_e6),
    rate_source: String(r.rate_source),
    rate_time_ns: big(r.rate_time_ns),
    bolt11: strOrNull(r.bolt11),
    payment_hash: strOrNull(r.payment_hash),
    payee: strOrNull(r.payee),
    invoice_expire_time_s: bigOrNull(r.invoice_expire_time_s),
    preimage: strOrNull(r.preimage),
    fee_msat: bigOrNull(r.fee_msat),
  };
}

function toInvoice(r: Record<string, unknown>): DepositInvoiceRow {
  return {
    deposit_invoice_id: String(r.deposit_invoice_id),
    agent_id: String(r.agent_id),
    idempotency_key: String(r.idempotency_key),
    amount_micro: big(r.amount_micro),
    amount_msat: big(r.amount_msat),
    rate_e6: big(r.rate_e6),
    rate_source: String(r.rate_source),
    rate_time_ns: big(r.rate_time_ns),
    expire_time_ns: big(r.expire_time_ns),
    create_time_ns: big(r.create_time_ns),
    lease_expire_time_ns: bigOrNull(r.lease_expire_time_ns),
    bolt11: strOrNull(r.bolt11),
    payment_hash: strOrNull(r.payment_hash),
    deposit_id: strOrNull(r.deposit_id),
    amount_paid_msat: bigOrNull(r.amount_paid_msat),
    credit_time_ns: bigOrNull(r.credit_time_ns),
  };
}

/** PostgreSQL's unique_violation. */
function isUniqueViolation(e: unknown): boolean {
  return typeof e === "object" && e !== null && (e as { code?: unknown }).code === "23505";
}

export function createLightningStore(db: Kysely<Database>): LightningStore {
  const payout = async (id: string) => {
    const r = await sql<Record<string, unknown>>`select ${PAYOUT_COLS} from lightning_payout where payout_id = ${id}`.execute(db);
    return r.rows[0] ? toPayout(r.rows[0]) : null;
  };
  const invoice = async (id: string) => {
    const r = await sql<Record<string, unknown>>`select ${INVOICE_COLS} from lightning_deposit_invoice where deposit_invoice_id = ${id}`.execute(db);
    return r.rows[0] ? toInvoice(r.rows[0]) : null;
  };
  return {
    async insertPayoutQuote(q) {
      await sql`insert into lightning_payout (payout_id, amount_msat, rate_e6, rate_source, rate_time_ns)
        values (${q.payout_id}, ${q.amount_msat.toString()}, ${q.rate_e6.toString()}, ${q.rate_source}, ${q.rate_time_ns.toString()})
        on conflict (payout_id) do nothing`.execute(db);
      return (await payout(q.payout_id))!;
    },
    getPayout: payout,
    async attachInvoice(a) {
      try {
        const r = await sql<Record<string, unknown>>`update lightning_payout set bolt11 = ${a.bolt11}, payment_hash = ${a.payment_hash}, payee = ${a.payee},
          invoice_expire_time_s = ${a.invoice_expire_time_s}
          where payout_id = ${a.payout_id} and (payment_hash is null or payment_hash = ${a.payment_hash}) returning ${PAYOUT_COLS}`.execute(db);
        if (r.rows[0]) return { ok: true, row: toPayout(r.rows[0]) };
        return { ok: false, why: "other_invoice", row: await payout(a.payout_id) };
      } catch (e) {
        if (isUniqueViolation(e)) return { ok: false, why: "hash_used", row: await payout(a.payout_id) };
        throw e;
      }
    },
    async recordPaid(id, preimage, fee_msat) {
      await sql`update lightning_payout set preimage = ${preimage}, fee_msat = ${fee_msat.toString()} where payout_id = ${id}`.execute(db);
    },

    async insertDepositInvoice(d) {
      await sql`insert into lightning_deposit_invoice (deposit_invoice_id, agent_id, idempotency_key, amount_micro, amount_msat, rate_e6, rate_source,
          rate_time_ns, expire_time_ns, create_time_ns)
        values (${d.deposit_invoice_id}, ${d.agent_id}, ${d.idempotency_key}, ${d.amount_micro.toString()}, ${d.amount_msat.toString()}, ${d.rate_e6.toString()},
          ${d.rate_source}, ${d.rate_time_ns.toString()}, ${d.expire_time_ns.toString()}, ${d.create_time_ns.toString()})
        on conflict do nothing`.execute(db);
      return (await invoice(d.deposit_invoice_id))!;
    },
    getDepositInvoice: invoice,
    async byPaymentHash(h) {
      const r = await sql<Record<string, unknown>>`select ${INVOICE_COLS} from lightning_deposit_invoice where payment_hash = ${h}`.execute(db);
      return r.rows[0] ? toInvoice(r.rows[0]) : null;
    },
    async claimDepositInvoices(now, until, max, grace) {
      await sql`update lightning_deposit_invoice set lease_expire_time_ns = ${until.toString()}
        where deposit_invoice_id in (
          select deposit_invoice_id from lightning_deposit_invoice
          where bolt11 is null and expire_time_ns > ${now.toString()} and (lease_expire_time_ns is null or lease_expire_time_ns <= ${now.toString()})
          order by create_time_ns limit ${max} for update skip locked)`.execute(db);
      const r = await sql<Record<string, unknown>>`select ${INVOICE_COLS} from lightning_deposit_invoice
        where credit_time_ns is null and expire_time_ns + ${grace.toString()} > ${now.toString()}
          and ((bolt11 is null and lease_expire_time_ns > ${now.toString()}) or bolt11 is not null)
        order by create_time_ns limit 1000`.execute(db);
      return r.rows.map(toInvoice);
    },
    async recordDepositInvoice(id, bolt11, hash) {
      const r = await sql<Record<string, unknown>>`update lightning_deposit_invoice set bolt11 = ${bolt11}, payment_hash = ${hash}
        where deposit_invoice_id = ${id} and (bolt11 is null or bolt11 = ${bolt11}) returning ${INVOICE_COLS}`.execute(db);
      return r.rows[0] ? toInvoice(r.rows[0]) : null;
    },
    async markDepositCredited(id, deposit_id, paid, now) {
      await sql`update lightning_deposit_invoice set deposit_id = ${deposit_id}, amount_paid_msat = ${paid.toString()}, credit_time_ns = ${now.toString()}
        where deposit_invoice_id = ${id} and credit_time_ns is null`.execute(db);
    },
  };
}
