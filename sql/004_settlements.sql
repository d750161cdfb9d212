-- 004: settlements (author payouts over a rail). Created now, filled when payouts land: a payout
-- is a pending transfer earnings -> rail outbound (code 30, user_data_128 = payout id,
-- user_data_32 = rail), posted on rail confirmation or voided on failure.
CREATE TABLE IF NOT EXISTS {{db}}.settlements
(
    payout_id          UInt128,
    author_account_id  UInt128,
    rail               LowCardinality(String) COMMENT 'base | solana | lightning',
    rail_account_id    UInt128,
    amount_micro       UInt128,
    status             Enum8('pending' = 1, 'paid' = 2, 'failed' = 3, 'expired' = 4),
    transfer_id        UInt128 COMMENT 'the pending payout transfer',
    requested_ns       UInt64,
    settled_ns         UInt64,
    rail_tx            String DEFAULT '' COMMENT 'rail transaction reference, when known',
    version            UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY payout_id
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1;
