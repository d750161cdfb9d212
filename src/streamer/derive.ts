/**
 * SQL that derives business tables (sessions, settlements) from the ledger mirror, run in-engine
 * (INSERT ... SELECT) by whichever sink is in use. A row is always recomputed from every transfer
 * of its session/payout, so replays and out-of-order batch boundaries converge to the same state.
 * A hold's expiry (an event of the ledger that is not a transfer) is in tagged_transfers as a row
 * with phase 'expired' at the deadline, written by the streamer.
 */
import { TransferCode } from "../domain/codes.js";
import { bindDatabase, u128Array } from "./sink.js";

const C = TransferCode;

/** Codes whose user_data_128 is a session id. */
export const SESSION_CODES: ReadonlySet<number> = new Set([
  C.session_hold, C.session_author_share, C.session_platform_fee, C.session_overrun_debt,
  C.usage_input_tokens, C.usage_output_tokens, C.usage_tool_calls,
]);
/** Codes whose user_data_128 is a payout id. */
export const PAYOUT_CODES: ReadonlySet<number> = new Set([C.payout]);

// Ids are matched with `tag_id IN (SELECT arrayJoin([...]))`: it uses the primary key under FINAL
// (has([...], tag_id) does too, but is ~8x slower with FINAL in chDB 26.7).

/** Recompute the `sessions` rows of these session ids. */
export function recomputeSessionsSql(database: string, sessionIds: Iterable<bigint>): string {
  const ids = u128Array(sessionIds);
  const hold = `code = ${C.session_hold} AND phase = 'pending'`;
  return bindDatabase(
    `INSERT INTO {{db}}.sessions
    (session_id, status, agent_account_id, escrow_account_id, masque_index, author_account_id,
     platform_account_id, price_book_version, billing_mode, hold_transfer_id, hold_micro, price_micro,
     author_micro, platform_micro, refund_micro, debt_micro, usage_input_tokens, usage_output_tokens,
     usage_tool_calls, platform_fee_bps, billed_duration_ms, close_reason, timeout_s, opened_ns,
     closed_ns, last_activity_ns, version)
SELECT
    s.tag_id AS session_id,
    multiIf(s.posted_ns > 0, 'closed', s.voided_ns > 0, 'cancelled', s.expired_ns > 0, 'expired', 'open') AS status,
    s.agent_account_id, s.escrow_account_id, s.masque_index, s.author_account_id, s.platform_account_id,
    bitShiftRight(s.hold_ud32, 2) AS price_book_version,
    toInt8(bitAnd(s.hold_ud32, 3)) AS billing_mode,
    s.hold_transfer_id,
    toUInt128(s.hold_micro) AS hold_micro,
    toUInt128(s.price_micro) AS price_micro,
    toUInt128(s.author_micro) AS author_micro,
    toUInt128(s.platform_micro) AS platform_micro,
    toUInt128(multiIf(s.posted_ns > 0, s.hold_micro - s.price_micro,
                      s.voided_ns > 0 OR s.expired_ns > 0, s.hold_micro, 0)) AS refund_micro,
    toUInt128(s.debt_micro) AS debt_micro,
    toUInt128(s.usage_input_tokens), toUInt128(s.usage_output_tokens), toUInt128(s.usage_tool_calls),
    s.platform_fee_bps, s.billed_duration_ms,
    toInt8(multiIf(s.posted_ns > 0, if(s.author_reason BETWEEN 1 AND 3, s.author_reason, 1),
                   s.voided_ns > 0, 4, s.expired_ns > 0, 5, 0)) AS close_reason,
    s.timeout_s, s.opened_ns,
    multiIf(s.posted_ns > 0, s.posted_ns, s.voided_ns > 0, s.voided_ns, s.expired_ns) AS closed_ns,
    greatest(s.last_usage_ns, s.opened_ns) AS last_activity_ns,
    greatest(s.last_ns, s.expired_ns) AS version
FROM
(
    SELECT
        tag_id,
        argMinIf(debit_account_id, timestamp, ${hold}) AS agent_account_id,
        argMinIf(credit_account_id, timestamp, ${hold}) AS escrow_account_id,
        argMinIf(user_data_64, timestamp, ${hold}) AS masque_index,
        argMaxIf(credit_account_id, timestamp, code = ${C.session_author_share}) AS author_account_id,
        argMaxIf(credit_account_id, timestamp, code = ${C.session_platform_fee}) AS platform_account_id,
        argMinIf(user_data_32, timestamp, ${hold}) AS hold_ud32,
        argMaxIf(user_data_32, timestamp, code = ${C.session_platform_fee}) AS platform_fee_bps,
        argMaxIf(user_data_64, timestamp, code = ${C.session_author_share}) AS billed_duration_ms,
        argMaxIf(user_data_32, timestamp, code = ${C.session_author_share}) AS author_reason,
        argMinIf(id, timestamp, ${hold}) AS hold_transfer_id,
        argMinIf(timeout, timestamp, ${hold}) AS timeout_s,
        sumIf(toUInt256(amount), ${hold}) AS hold_micro,
        sumIf(toUInt256(amount), code = ${C.session_hold} AND phase = 'post') AS price_micro,
        maxIf(timestamp, code = ${C.session_hold} AND phase = 'post') AS posted_ns,
        maxIf(timestamp, code = ${C.session_hold} AND phase = 'void') AS voided_ns,
        maxIf(timestamp, code = ${C.session_hold} AND phase = 'expired') AS expired_ns,
        sumIf(toUInt256(amount), code = ${C.session_author_share}) AS author_micro,
        sumIf(toUInt256(amount), code = ${C.session_platform_fee}) AS platform_micro,
        sumIf(toUInt256(amount), code = ${C.session_overrun_debt}) AS debt_micro,
        sumIf(toUInt256(amount), code = ${C.usage_input_tokens}) AS usage_input_tokens,
        sumIf(toUInt256(amount), code = ${C.usage_output_tokens}) AS usage_output_tokens,
        sumIf(toUInt256(amount), code = ${C.usage_tool_calls}) AS usage_tool_calls,
        minIf(timestamp, ${hold}) AS opened_ns,
        maxIf(timestamp, code IN (${C.usage_input_tokens}, ${C.usage_output_tokens}, ${C.usage_tool_calls})) AS last_usage_ns,
        max(timestamp) AS last_ns
    FROM {{db}}.tagged_transfers FINAL
    WHERE tag_id IN (SELECT arrayJoin(${ids})) AND code IN (${[...SESSION_CODES].join(", ")})
    GROUP BY tag_id
) AS s`,
    database,
  );
}

/**
 * What the rail knows of a payout's transaction (ADR 0084), from the control plane: tx reference,
 * block (or slot), confirmations at finality, network fee in the rail's native unit.
 */
export interface SettlementRailFacts {
  payout_id: bigint;
  tx_ref: string;
  block_number: bigint;
  confirmations: number;
  network_fee_native: bigint;
}

/** A ClickHouse string literal (quotes and backslashes escaped). */
function chString(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/**
 * Recompute the `settlements` rows of these payout ids (payout = pending earnings -> rail
 * outbound), with the rail's facts where given (looked up by payout id; absent: '' and 0).
 */
export function recomputeSettlementsSql(database: string, payoutIds: Iterable<bigint>, facts: readonly SettlementRailFacts[] = []): string {
  const ids = u128Array(payoutIds);
  const pend = `code = ${C.payout} AND phase = 'pending'`;
  const fIds = u128Array(facts.map((f) => f.payout_id));
  const at = (values: string, fallback: string) => (facts.length === 0 ? fallback : `arrayElement(${values}, indexOf(${fIds}, p.tag_id))`);
  const fTx = at(`[${facts.map((f) => chString(f.tx_ref)).join(", ")}]`, "''");
  const fBlock = at(`CAST([${facts.map((f) => String(f.block_number)).join(", ")}] AS Array(UInt64))`, "toUInt64(0)");
  const fConf = at(`CAST([${facts.map((f) => String(f.confirmations)).join(", ")}] AS Array(UInt32))`, "toUInt32(0)");
  const fFee = at(`CAST([${facts.map((f) => `'${f.network_fee_native}'`).join(", ")}] AS Array(UInt128))`, "toUInt128(0)");
  return bindDatabase(
    `INSERT INTO {{db}}.settlements
    (payout_id, author_account_id, rail, rail_account_id, amount_micro, status, transfer_id, requested_ns, settled_ns, version,
     rail_tx, rail_block, rail_confirmations, network_fee_native)
SELECT
    p.tag_id,
    p.author_account_id,
    transform(p.rail, [1, 2, 3], ['base', 'solana', 'lightning'], concat('rail_', toString(p.rail))),
    p.rail_account_id,
    toUInt128(if(p.posted_ns > 0, p.posted_micro, p.held_micro)),
    multiIf(p.posted_ns > 0, 'paid', p.voided_ns > 0, 'failed', p.expired_ns > 0, 'expired', 'pending'),
    p.transfer_id,
    p.requested_ns,
    multiIf(p.posted_ns > 0, p.posted_ns, p.voided_ns > 0, p.voided_ns, p.expired_ns),
    greatest(p.last_ns, p.expired_ns),
    ${fTx},
    ${fBlock},
    ${fConf},
    ${fFee}
FROM
(
    SELECT
        tag_id,
        argMinIf(debit_account_id, timestamp, ${pend}) AS author_account_id,
        argMinIf(credit_account_id, timestamp, ${pend}) AS rail_account_id,
        argMinIf(user_data_32, timestamp, ${pend}) AS rail,
        argMinIf(id, timestamp, ${pend}) AS transfer_id,
        sumIf(toUInt256(amount), ${pend}) AS held_micro,
        sumIf(toUInt256(amount), code = ${C.payout} AND phase = 'post') AS posted_micro,
        maxIf(timestamp, code = ${C.payout} AND phase = 'post') AS posted_ns,
        maxIf(timestamp, code = ${C.payout} AND phase = 'void') AS voided_ns,
        maxIf(timestamp, code = ${C.payout} AND phase = 'expired') AS expired_ns,
        minIf(timestamp, ${pend}) AS requested_ns,
        max(timestamp) AS last_ns
    FROM {{db}}.tagged_transfers FINAL
    WHERE tag_id IN (SELECT arrayJoin(${ids})) AND code = ${C.payout}
    GROUP BY tag_id
    HAVING transfer_id != 0
) AS p`,
    database,
  );
}

/**
 * Holds still open whose deadline is in (deadline_min_ns, deadline_max_ns]: the ones the ledger
 * expired (when deadline_max_ns is a moment at which the whole ledger had been copied).
 */
export function expiredCandidatesSql(database: string, deadline_min_ns: bigint, deadline_max_ns: bigint): string {
  return bindDatabase(
    `SELECT id, debit_account_id, credit_account_id, user_data_128, ledger, code, timeout_s, deadline_ns
FROM {{db}}.holds FINAL
WHERE state = 'open' AND deadline_ns > ${deadline_min_ns > 0n ? deadline_min_ns.toString() : "0"}
  AND deadline_ns <= ${deadline_max_ns.toString()}
ORDER BY deadline_ns
LIMIT 8189`,
    database,
  );
}
