-- 001: who is who. One row per (kind, identity, account): agents and authors come from the
-- accounts the ledger holds (their owner id is the account's user_data_128), masques from the
-- sessions that used them (identity = masque index, account = the author's earnings account).
-- `name` is free for the daemon to fill from its own registry; the ledger carries no names.
CREATE TABLE IF NOT EXISTS {{db}}.identities
(
    kind          LowCardinality(String) COMMENT 'agent | author | masque | platform | rail | meter | other',
    identity_id   UInt128 COMMENT 'owner id (account user_data_128); masque index for masques',
    account_id    UInt128 COMMENT 'ledger account of this identity (author earnings for masques)',
    account_code  UInt16,
    ledger        UInt32,
    name          String DEFAULT '',
    first_seen_ns UInt64 COMMENT 'ledger timestamp (ns) of the account or first session'
)
ENGINE = ReplacingMergeTree
ORDER BY (kind, identity_id, account_id)
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1;
