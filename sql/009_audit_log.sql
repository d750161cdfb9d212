-- 009: the governance audit log (issue 16, ADR 0101), copied from the control-plane database by
-- the streamer (src/streamer/audit.ts). The control plane is its record (hash-chained, anchored in
-- the ledger); this is an analytics copy, idempotent under re-insertion (ReplacingMergeTree keyed
-- by the chain position): read it with FINAL.
CREATE TABLE IF NOT EXISTS {{db}}.audit_log
(
    seq         UInt64 COMMENT 'position in the chain, from 1',
    time_ns     UInt64 COMMENT 'daemon clock, ns since the epoch',
    time        DateTime64(9, 'UTC') ALIAS fromUnixTimestamp64Nano(toInt64(time_ns)),
    actor_kind  LowCardinality(String),
    actor_id    String COMMENT 'token sub, or masques-ledger for the daemon itself',
    action      LowCardinality(String) COMMENT 'e.g. revenue_rule.approve, account.manual_deposit',
    subject     String,
    rule_id     String COMMENT 'empty when the entry is not about a revenue rule',
    request_id  String,
    reason      String,
    before_json String,
    after_json  String,
    emergency   Bool,
    prev_hash   String,
    hash        String
)
ENGINE = ReplacingMergeTree
ORDER BY seq
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1;
