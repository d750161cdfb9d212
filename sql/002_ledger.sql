-- 002: the ledger mirror. TigerBeetle is the ledger of record; these tables are copies that the
-- streamer fills in ledger timestamp order. Every table is idempotent under re-insertion
-- (ReplacingMergeTree keyed by ledger id / timestamp): read them with FINAL (or the v_* views).
-- Ids are UInt128 and amounts exact UInt128; sum amounts as UInt256 (sum(UInt128) wraps).

-- Every transfer with all its fields, plus its decoded kind (src/domain/codes.ts) and phase.
CREATE TABLE IF NOT EXISTS {{db}}.transfers
(
    id                UInt128,
    debit_account_id  UInt128,
    credit_account_id UInt128,
    amount            UInt128,
    pending_id        UInt128,
    user_data_128     UInt128,
    user_data_64      UInt64,
    user_data_32      UInt32,
    timeout           UInt32 COMMENT 'seconds (pending transfers only)',
    ledger            UInt32,
    code              UInt16,
    flags             UInt16,
    timestamp         UInt64 COMMENT 'ledger timestamp, ns since the epoch, unique and increasing',
    kind              LowCardinality(String) COMMENT 'TransferCode name, or code_<n> if unknown',
    phase             LowCardinality(String) COMMENT 'single | pending | post | void',
    time              DateTime64(9, 'UTC') ALIAS fromUnixTimestamp64Nano(toInt64(timestamp)),
    is_linked         Bool ALIAS bitTest(flags, 0),
    is_balancing      Bool ALIAS bitTest(flags, 4) OR bitTest(flags, 5),
    is_closing        Bool ALIAS bitTest(flags, 6) OR bitTest(flags, 7),
    is_imported       Bool ALIAS bitTest(flags, 8)
)
ENGINE = ReplacingMergeTree
ORDER BY (timestamp, id)
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1;

-- Accounts, current mirror: the latest balance snapshot of every account wins (version snapshot_ns).
CREATE TABLE IF NOT EXISTS {{db}}.accounts
(
    id              UInt128,
    debits_pending  UInt128,
    debits_posted   UInt128,
    credits_pending UInt128,
    credits_posted  UInt128,
    user_data_128   UInt128,
    user_data_64    UInt64,
    user_data_32    UInt32,
    reserved        UInt32,
    ledger          UInt32,
    code            UInt16,
    flags           UInt16,
    timestamp       UInt64 COMMENT 'ledger timestamp of the account creation',
    kind            LowCardinality(String) COMMENT 'AccountCode name, or code_<n> if unknown',
    snapshot_ns     UInt64 COMMENT 'when the balances were read from the ledger (streamer clock, ns)',
    as_of_ts        UInt64 COMMENT 'ledger timestamp the streamer had copied up to when it read them'
)
ENGINE = ReplacingMergeTree(snapshot_ns)
ORDER BY id
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1;

-- Balance snapshots over time: one row per account each time the streamer saw it move (filled
-- in-engine from every `accounts` snapshot). The balances include at least every transfer up to
-- as_of_ts.
CREATE TABLE IF NOT EXISTS {{db}}.account_balances
(
    account_id      UInt128,
    as_of_ts        UInt64,
    snapshot_ns     UInt64,
    debits_pending  UInt128,
    debits_posted   UInt128,
    credits_pending UInt128,
    credits_posted  UInt128,
    ledger          UInt32,
    code            UInt16
)
ENGINE = ReplacingMergeTree(snapshot_ns)
ORDER BY (account_id, as_of_ts)
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.account_balances_mv TO {{db}}.account_balances AS
SELECT id AS account_id, as_of_ts, snapshot_ns, debits_pending, debits_posted, credits_pending,
       credits_posted, ledger, code
FROM {{db}}.accounts;

-- Two-phase holds (pending transfers) and how each ended: one logical row per hold, the newest
-- event wins (open -> posted | voided | expired). Filled in-engine from `transfers`; the streamer
-- adds `expired` rows when a hold's deadline passed with no post/void (the ledger voided it
-- silently). Read with FINAL.
CREATE TABLE IF NOT EXISTS {{db}}.holds
(
    id                UInt128 COMMENT 'the pending transfer id',
    state             Enum8('open' = 1, 'posted' = 2, 'voided' = 3, 'expired' = 4),
    debit_account_id  UInt128,
    credit_account_id UInt128,
    amount            UInt128 COMMENT 'held (open), posted (posted), 0 (voided, expired)',
    user_data_128     UInt128,
    ledger            UInt32,
    code              UInt16,
    timeout_s         UInt32,
    deadline_ns       UInt64 COMMENT 'hold timestamp + timeout; 0 without timeout (and on post/void rows)',
    resolved_by       UInt128 COMMENT 'the post/void transfer id (0 while open and for expiry)',
    event_ts          UInt64 COMMENT 'ledger timestamp of the event (the deadline for expiry): the version'
)
ENGINE = ReplacingMergeTree(event_ts)
ORDER BY id
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.holds_mv TO {{db}}.holds AS
SELECT if(phase = 'pending', id, pending_id) AS id,
       multiIf(phase = 'pending', 'open', phase = 'post', 'posted', 'voided') AS state,
       debit_account_id, credit_account_id,
       if(phase = 'void', toUInt128(0), amount) AS amount,
       user_data_128, ledger, code,
       timeout AS timeout_s,
       if(phase = 'pending' AND timeout > 0, timestamp + toUInt64(timeout) * 1000000000, toUInt64(0)) AS deadline_ns,
       if(phase = 'pending', toUInt128(0), id) AS resolved_by,
       timestamp AS event_ts
FROM {{db}}.transfers
WHERE phase IN ('pending', 'post', 'void');

-- Streamer cursors (one row per stream: 'transfers', 'accounts'), written AFTER the data they
-- cover. The version is the cursor itself, so a stale write can never move a cursor back.
CREATE TABLE IF NOT EXISTS {{db}}.stream_cursor
(
    stream        LowCardinality(String),
    cursor_ts     UInt64 COMMENT 'last ledger timestamp fully written (data + derived tables)',
    events_total  UInt64 COMMENT 'events this streamer instance wrote (informational)',
    updated_ns    UInt64
)
ENGINE = ReplacingMergeTree(cursor_ts)
ORDER BY stream
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1;
