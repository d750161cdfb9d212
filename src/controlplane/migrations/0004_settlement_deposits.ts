/**
 * 0004: settlement deposits (issue 13, ADR 0087): deposit sources bound to agents, deposits
 * reported by rail adapters (one row per chain event), and every refused report. Rows reference
 * ledger ids (deposit_id = the credit's transfer id). Never edit: add a new migration instead.
 */
import type { ControlPlaneMigration } from "../migrations.js";

export const m0004: ControlPlaneMigration = {
  name: "0004_settlement_deposits",
  statements: [
    `create table deposit_source (
      rail text not null,
      address text not null,
      agent_id text not null,
      create_time_ns bigint not null,
      primary key (rail, address)
    )`,
    `create index deposit_source_agent on deposit_source (agent_id, create_time_ns desc)`,
    `create table deposit (
      deposit_id text primary key,
      rail text not null,
      chain_id text not null,
      tx_ref text not null,
      event_index integer not null,
      from_address text not null,
      amount_micro bigint not null check (amount_micro > 0),
      block_number bigint not null,
      block_hash text not null,
      confirmations integer not null,
      finality_depth integer not null,
      state text not null check (state in ('confirming', 'credited', 'held')),
      agent_id text,
      create_time_ns bigint not null,
      update_time_ns bigint not null,
      unique (chain_id, tx_ref, event_index)
    )`,
    `create index deposit_agent on deposit (agent_id, create_time_ns desc)`,
    `create table deposit_refusal (
      refusal_id bigserial primary key,
      rail text not null,
      chain_id text not null,
      tx_ref text not null,
      event_index integer not null,
      reason text not null,
      detail text not null,
      report text not null,
      time_ns bigint not null
    )`,
  ],
};
