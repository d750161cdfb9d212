/**
 * 0010: the Lightning rail (issue 15, ADR 0094/0095): each Lightning payout's conversion quote and
 * the author's BOLT11 invoice (a payment hash belongs to at most one payout, ever), and the
 * agents' deposit invoices (quote, lease of the adapter creating it, the invoice, the credit).
 * Rows reference ledger ids; money stays in the ledger. Never edit: add a new migration instead.
 */
import type { ControlPlaneMigration } from "../migrations.js";

export const m0010: ControlPlaneMigration = {
  name: "0010_lightning",
  statements: [
    `create table lightning_payout (
      payout_id text primary key references payout (payout_id),
      amount_msat numeric(20, 0) not null check (amount_msat > 0),
      rate_e6 numeric(20, 0) not null check (rate_e6 > 0),
      rate_source text not null,
      rate_time_ns bigint not null,
      bolt11 text,
      payment_hash text unique,
      payee text,
      invoice_expire_time_s bigint,
      preimage text,
      fee_msat numeric(20, 0),
      check ((bolt11 is null) = (payment_hash is null))
    )`,
    `create table lightning_deposit_invoice (
      deposit_invoice_id text primary key,
      agent_id text not null,
      idempotency_key text not null,
      amount_micro bigint not null check (amount_micro > 0),
      amount_msat numeric(20, 0) not null check (amount_msat > 0),
      rate_e6 numeric(20, 0) not null check (rate_e6 > 0),
      rate_source text not null,
      rate_time_ns bigint not null,
      expire_time_ns bigint not null,
      create_time_ns bigint not null,
      lease_expire_time_ns bigint,
      bolt11 text,
      payment_hash text unique,
      deposit_id text,
      amount_paid_msat numeric(20, 0),
      credit_time_ns bigint,
      unique (agent_id, idempotency_key),
      check ((bolt11 is null) = (payment_hash is null))
    )`,
    `create index lightning_deposit_invoice_open on lightning_deposit_invoice (expire_time_ns) where credit_time_ns is null`,
  ],
};
