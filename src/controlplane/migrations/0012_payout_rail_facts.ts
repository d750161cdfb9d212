/**
 * 0012: the rail's facts of a completed payout (issue 13, ADR 0084): the block (or slot) that
 * includes the transaction and the confirmations at which the adapter judged it final. Written
 * with network_fee_native BEFORE the ledger post, so the streamer that sees the post always finds
 * them. Never edit: add a new migration instead.
 */
import type { ControlPlaneMigration } from "../migrations.js";

export const m0012: ControlPlaneMigration = {
  name: "0012_payout_rail_facts",
  statements: [
    `alter table payout add column rail_block_number numeric(20, 0)`,
    `alter table payout add column rail_confirmations integer check (rail_confirmations >= 0)`,
  ],
};
