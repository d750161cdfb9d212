-- 011: deposits as the rail saw them (issue 13, ADR 0084): one row per canonical chain event
-- (deposit_id = the credit transfer's id, hex), copied by the streamer from the control plane
-- whenever the deposit changes (confirming -> credited | held | reorged, released). The ledger's
-- side of a credited deposit is the `transfers` row with code deposit and the same id.
CREATE TABLE IF NOT EXISTS {{db}}.rail_deposits
(
    deposit_id       String COMMENT 'hex, = the credit transfer id',
    rail             LowCardinality(String) COMMENT 'base | solana | lightning',
    chain_id         String COMMENT 'CAIP-2',
    tx_ref           String COMMENT 'tx hash / signature / payment hash',
    event_index      UInt32 COMMENT 'log index / instruction index',
    from_address     String,
    agent_id         String DEFAULT '' COMMENT 'empty while held for an admin',
    amount_micro     UInt128,
    block_number     UInt64 COMMENT 'block or slot including tx_ref',
    block_hash       String,
    confirmations    UInt32,
    finality_depth   UInt32,
    state            LowCardinality(String) COMMENT 'confirming | credited | held | reorged',
    create_time_ns   UInt64,
    update_time_ns   UInt64
)
ENGINE = ReplacingMergeTree(update_time_ns)
ORDER BY deposit_id
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1;
