/**
 * 0006: governance (issue 16, ADR 0100/0101/0102): revenue rules with their lifecycle, the rule
 * each session pinned at Don, and the hash-chained audit log with its ledger anchors.
 * Never edit: add a new migration instead.
 *
 * - `revenue_rule_one_active`: at most one active rule per scope at any instant, enforced by the
 *   database (a partial unique index), whatever the daemons do.
 * - `audit_head`: one row; appending an entry updates it, which row-locks it, so appends are
 *   serialised across connections and daemons and `seq` has no gaps.
 */
import type { ControlPlaneMigration } from "../migrations.js";

export const m0006: ControlPlaneMigration = {
  name: "0006_governance",
  statements: [
    `create table revenue_rule (
      rule_id text primary key,
      scope_kind text not null check (scope_kind in ('platform', 'masque', 'author')),
      scope_value text not null,
      author_bps integer not null check (author_bps between 0 and 10000),
      platform_fee_bps integer not null check (platform_fee_bps between 0 and 10000),
      state text not null check (state in ('draft', 'pending_approval', 'cooling_down', 'active', 'superseded', 'rejected')),
      description text not null,
      emergency boolean not null default false,
      justification text not null default '',
      created_by text not null,
      approved_by text,
      rejected_by text,
      reject_reason text,
      activated_by text,
      superseded_by_rule text,
      create_time_ns bigint not null,
      submit_time_ns bigint,
      approve_time_ns bigint,
      cooling_end_time_ns bigint,
      activate_time_ns bigint,
      supersede_time_ns bigint,
      reject_time_ns bigint,
      check (author_bps + platform_fee_bps = 10000),
      check ((scope_kind = 'platform') = (scope_value = ''))
    )`,
    `create unique index revenue_rule_one_active on revenue_rule (scope_kind, scope_value) where state = 'active'`,
    `create index revenue_rule_cooling on revenue_rule (cooling_end_time_ns) where state = 'cooling_down'`,
    `create table session_rule_pin (
      session_id text primary key,
      rule_id text not null references revenue_rule (rule_id),
      platform_fee_bps integer not null check (platform_fee_bps between 0 and 10000),
      pin_time_ns bigint not null
    )`,
    `create table audit_entry (
      seq bigint primary key check (seq >= 1),
      time_ns bigint not null,
      actor_kind text not null,
      actor_id text not null,
      action text not null,
      subject text not null,
      rule_id text,
      request_id text not null,
      reason text not null,
      before_json text,
      after_json text,
      emergency boolean not null,
      dedupe_key text unique,
      prev_hash text not null,
      hash text not null
    )`,
    `create index audit_entry_rule on audit_entry (rule_id, seq) where rule_id is not null`,
    `create index audit_entry_actor on audit_entry (actor_id, seq)`,
    `create index audit_entry_time on audit_entry (time_ns, seq)`,
    `create table audit_head (
      id integer primary key check (id = 1),
      seq bigint not null,
      hash text not null
    )`,
    `insert into audit_head (id, seq, hash) values (1, 0, '${"0".repeat(64)}')`,
    `create table audit_anchor (
      seq bigint primary key,
      hash text not null,
      transfer_id text not null,
      time_ns bigint not null
    )`,
  ],
};
