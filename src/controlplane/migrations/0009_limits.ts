/**
 * 0009: limits (issue 17, ADR 0111/0112): what the ledger cannot hold for peer transfers and
 * refunds — the memo and the agents' names of a peer transfer, the reason and requester of a
 * refund. Rows reference ledger ids (the transfer id); the ledger decides whether the money
 * moved, and every listing is driven by the ledger (a row whose transfer the ledger refused is
 * never shown). Never edit: add a new migration instead.
 */
import type { ControlPlaneMigration } from "../migrations.js";

export const m0009: ControlPlaneMigration = {
  name: "0009_limits",
  statements: [
    `create table peer_transfer (
      transfer_id text primary key,
      from_agent_id text not null,
      to_agent_id text not null,
      amount_micro bigint not null check (amount_micro > 0),
      memo text not null,
      idempotency_key text not null,
      create_time_ns bigint not null
    )`,
    `create table session_refund (
      refund_id text primary key,
      session_id text not null,
      amount_micro bigint not null check (amount_micro > 0),
      reason text not null,
      requested_by text not null,
      idempotency_key text not null,
      create_time_ns bigint not null
    )`,
    `create index session_refund_session on session_refund (session_id, create_time_ns desc)`,
  ],
};
