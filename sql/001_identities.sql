-- 001: who is who. One row per (kind, identity, account) for the owners of the ledger's accounts
-- (agents, authors, platform, rails; owner id = the account's user_data_128, or the account id).
-- Masques come from the sessions that used them: see v_identities (003).
-- `name` is free for the daemon to fill from its own registry; the ledger carries no names.
CREATE TABLE IF NOT EXISTS {{db}}.identities
(
    kind          LowCardinality(String) COMMENT 'agent | author | platform | rail | other',
    identity_id   UInt128 COMMENT 'owner id: account user_data_128, or the account id when 0',
    account_id    UInt128 COMMENT 'ledger account of this identity',
    account_code  UInt16,
    ledger        UInt32,
    name          String DEFAULT '',
    first_seen_ns UInt64 COMMENT 'ledger timestamp (ns) of the account creation'
)
ENGINE = ReplacingMergeTree
ORDER BY (kind, identity_id, account_id)
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1;
