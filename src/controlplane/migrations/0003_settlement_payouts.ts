/**
 * 0003: settlement payouts (issue 13, ADR 0086): ownership challenges, payout destinations,
 * payouts (quote, lease, signed transaction) and every signed transaction recorded. Rows
 * reference ledger ids (payout_id = the hold's transfer id); money stays in the ledger.
 * Never edit: add a new migration instead.
 */
import type { ControlPlaneMigration } from "../migrations.js";

export const m0003: ControlPlaneMigration = {
  name: "0003_settlement_payouts",
  statements: [
    `create table settlement_challenge (
      challenge_id text primary key,
      purpose text not null check (purpose in ('payout_destination', 'deposit_source')),
      principal text not null,
      rail text not null,
      chain_id bigint not null,
      address text not null,
      nonce text not null,
      message text not null,
      issued_at_ms bigint not null,
      expires_at_ms bigint not null,
      used_at_ms bigint
    )`,
    `create table payout_destination (
      author_id text not null,
      rail text not null,
      slot text not null check (slot in ('active', 'pending')),
      address text not null,
      effective_time_ns bigint not null,
      create_time_ns bigint not null,
      primary key (author_id, rail, slot)
    )`,
    `create table payout (
      payout_id text primary key,
      author_id text not null,
      idempotency_key text not null,
      rail text not null,
      request text not null,
      amount_micro bigint not null check (amount_micro > 0),
      fee_micro bigint not null check (fee_micro >= 0),
      net_micro bigint not null check (net_micro > 0),
      quote_expire_time_ns bigint not null,
      create_time_ns bigint not null,
      update_time_ns bigint not null,
      destination_address text,
      quote_cancelled boolean not null default false,
      confirm_refused boolean not null default false,
      held boolean not null default false,
      queued_time_ns bigint,
      claimed boolean not null default false,
      lease_expire_time_ns bigint,
      signed_transaction bytea,
      tx_ref text,
      replay_guard bigint,
      void_intent text check (void_intent in ('cancelled', 'failed')),
      failure_reason text,
      settled text check (settled in ('posted', 'voided')),
      network_fee_native numeric(20, 0),
      unique (author_id, idempotency_key),
      check (amount_micro = fee_micro + net_micro)
    )`,
    `create index payout_author on payout (author_id, create_time_ns desc, payout_id desc)`,
    `create index payout_queue on payout (rail, queued_time_ns) where held and settled is null and void_intent is null`,
    `create table payout_transaction (
      payout_id text not null references payout (payout_id),
      tx_ref text not null,
      signed_transaction bytea not null,
      replay_guard bigint not null,
      record_time_ns bigint not null,
      replaced_by text,
      primary key (payout_id, tx_ref)
    )`,
  ],
};
