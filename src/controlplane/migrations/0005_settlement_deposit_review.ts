/**
 * 0005: settlement, second part (issue 13; docs/adr/0088, 0089): admin release of held deposits
 * (who, why, when), reorged deposits (state `reorged`, and the blocks an adapter reported as
 * orphaned for a deposit, so a stale report naming one is refused), and the settlement
 * notification outbox (one row per event an author must hear about, e.g. a payout destination
 * change; delivered later by the webhook engine, which marks `relay_time_ns`); and, for Solana
 * payouts (issue 14, ADR 0091), the part of a payout's fee quoted for the destination's token
 * account rent.
 * Never edit: add a new migration instead.
 */
import type { ControlPlaneMigration } from "../migrations.js";

export const m0005: ControlPlaneMigration = {
  name: "0005_settlement_deposit_review",
  statements: [
    `alter table deposit drop constraint deposit_state_check`,
    `alter table deposit add constraint deposit_state_check check (state in ('confirming', 'credited', 'held', 'reorged'))`,
    `alter table deposit add column released_by text`,
    `alter table deposit add column release_reason text`,
    `alter table deposit add column release_time_ns bigint`,
    `create index deposit_held on deposit (create_time_ns desc, deposit_id desc) where state = 'held'`,
    `create table deposit_orphaned_block (
      deposit_id text not null references deposit (deposit_id),
      block_hash text not null,
      report_time_ns bigint not null,
      primary key (deposit_id, block_hash)
    )`,
    `create table settlement_notification (
      notification_id text primary key,
      event_type text not null,
      author_id text not null,
      rail text not null,
      payload text not null,
      create_time_ns bigint not null,
      relay_time_ns bigint
    )`,
    `create index settlement_notification_author on settlement_notification (author_id, rail, create_time_ns desc)`,
    `alter table payout add column account_rent_fee_micro bigint not null default 0 check (account_rent_fee_micro >= 0 and account_rent_fee_micro <= fee_micro)`,
    `create index payout_destination_paid on payout (author_id, rail, destination_address) where settled = 'posted'`,
    `create index settlement_notification_unrelayed on settlement_notification (create_time_ns) where relay_time_ns is null`,
  ],
};
