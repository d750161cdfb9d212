/**
 * Deposits' rail facts (issue 13, ADR 0084): control-plane `deposit` rows → ClickHouse
 * `rail_deposits` (sql/011), every row again whenever it changes. The copy's cursor is its own
 * newest (update_time_ns, deposit_id); rows at that time are copied again (ReplacingMergeTree on
 * update_time_ns keeps one), so a copy interrupted anywhere loses nothing and repeats nothing
 * visible through FINAL.
 */
import type { Kysely } from "kysely";
import { listDepositsChangedSince } from "../controlplane/settlement.js";
import type { Database } from "../controlplane/schema.js";
import { bindDatabase, type Sink } from "./sink.js";

/** Rows copied per page. */
const PAGE = 500;
/** Pages per call at most (the rest on the next call). */
const PAGES_MAX = 100;

const COLUMNS = [
  "deposit_id", "rail", "chain_id", "tx_ref", "event_index", "from_address", "agent_id", "amount_micro",
  "block_number", "block_hash", "confirmations", "finality_depth", "state", "create_time_ns", "update_time_ns",
] as const;

/** Copy deposits changed since the copy's newest row; returns how many rows were written. */
export async function copyRailDeposits(db: Kysely<Database>, sink: Sink): Promise<number> {
  const [row] = await sink.query(bindDatabase("SELECT max(update_time_ns) AS t FROM {{db}}.rail_deposits", sink.database));
  const newest = BigInt(String(row?.["t"] ?? "0"));
  // Re-copy the newest instant: a row changed in the same nanosecond after the last copy is caught.
  let cursor = { update_time_ns: newest === 0n ? -1n : newest - 1n, deposit_id: "" };
  let copied = 0;
  for (let page = 0; page < PAGES_MAX; page++) {
    const rows = await listDepositsChangedSince(db, cursor, PAGE);
    if (rows.length === 0) break;
    await sink.insert(
      "rail_deposits",
      COLUMNS,
      rows.map((d) => [
        d.deposit_id, d.rail, d.chain_id, d.tx_ref, d.event_index, d.from_address, d.agent_id ?? "", d.amount_micro,
        d.block_number, d.block_hash, d.confirmations, d.finality_depth, d.state, d.create_time_ns, d.update_time_ns,
      ]),
    );
    copied += rows.length;
    const last = rows[rows.length - 1]!;
    cursor = { update_time_ns: last.update_time_ns, deposit_id: last.deposit_id };
    if (rows.length < PAGE) break;
  }
  return copied;
}
