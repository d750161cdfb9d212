-- 003: sessions and usage, derived from the ledger alone (a session is reconstructable from its
-- deterministic transfers: user_data_128 = session id on the hold, its post/void, the split and
-- the usage meters).

-- Every transfer tagged with a business id in user_data_128 (session, payout, deposit), re-keyed
-- by that id (filled in-engine from `transfers`), so one session's or payout's transfers are read
-- without scanning the whole ledger. Session codes: 10 hold (pending / post / void), 11 author
-- share, 12 platform fee, 13 overrun debt, 20-22 usage; payouts: 30 (src/domain/codes.ts).
-- A hold the ledger expired also gets a row here (phase 'expired', id = the hold, timestamp = its
-- deadline, amount 0), written by the streamer: expiry is a ledger event without a transfer.
CREATE TABLE IF NOT EXISTS {{db}}.tagged_transfers
(
    tag_id            UInt128 COMMENT 'user_data_128: session / payout / deposit id',
    timestamp         UInt64,
    id                UInt128,
    debit_account_id  UInt128,
    credit_account_id UInt128,
    amount            UInt128,
    pending_id        UInt128,
    user_data_64      UInt64,
    user_data_32      UInt32,
    timeout           UInt32,
    ledger            UInt32,
    code              UInt16,
    phase             LowCardinality(String) COMMENT 'single | pending | post | void | expired'
)
ENGINE = ReplacingMergeTree
ORDER BY (tag_id, timestamp, id)
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.tagged_transfers_mv TO {{db}}.tagged_transfers AS
SELECT user_data_128 AS tag_id, timestamp, id, debit_account_id, credit_account_id, amount,
       pending_id, user_data_64, user_data_32, timeout, ledger, code, phase
FROM {{db}}.transfers
WHERE user_data_128 != 0;

-- One logical row per session. The streamer recomputes a session's full state from
-- tagged_transfers whenever one of its transfers arrives; the newest version replaces the rest.
CREATE TABLE IF NOT EXISTS {{db}}.sessions
(
    session_id          UInt128,
    status              Enum8('open' = 1, 'closed' = 2, 'cancelled' = 3, 'expired' = 4),
    agent_account_id    UInt128,
    escrow_account_id   UInt128,
    masque_index        UInt64,
    author_account_id   UInt128,
    platform_account_id UInt128,
    price_book_version  UInt32 COMMENT 'hold user_data_32 >> 2',
    billing_mode        Enum8('unknown' = 0, 'shadow' = 1, 'soft' = 2, 'live' = 3) COMMENT 'hold user_data_32 & 3',
    hold_transfer_id    UInt128,
    hold_micro          UInt128 COMMENT 'reserved on Don (pending amount)',
    price_micro         UInt128 COMMENT 'posted on Doff',
    author_micro        UInt128,
    platform_micro      UInt128,
    refund_micro        UInt128 COMMENT 'returned to the agent: hold - price, or all of it',
    debt_micro          UInt128 COMMENT 'soft-mode overrun recorded as debt',
    usage_input_tokens  UInt64,
    usage_output_tokens UInt64,
    usage_tool_calls    UInt64,
    platform_fee_bps    UInt32 COMMENT 'platform fee user_data_32',
    billed_duration_ms  UInt64 COMMENT 'author share user_data_64',
    close_reason        Enum8('none' = 0, 'doff' = 1, 'reaped_idle' = 2, 'reaped_max_length' = 3, 'cancel' = 4, 'expired' = 5),
    timeout_s           UInt32,
    opened_ns           UInt64,
    closed_ns           UInt64 COMMENT 'post/void timestamp or expiry deadline; 0 while open',
    last_activity_ns    UInt64 COMMENT 'latest Don, usage or heartbeat timestamp',
    version             UInt64 COMMENT 'latest ledger timestamp folded into this row'
)
ENGINE = ReplacingMergeTree(version)
ORDER BY session_id
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1;

-- Usage meters (ledgers 2-4): one row per usage transfer (and heartbeats: zero tool calls, seq 0).
-- A view over tagged_transfers (ordered by session), so it costs nothing to keep in step.
CREATE VIEW IF NOT EXISTS {{db}}.usage AS
SELECT tag_id AS session_id, timestamp, id, debit_account_id AS meter_account_id,
       multiIf(ledger = 2, 'input_tokens', ledger = 3, 'output_tokens',
               user_data_64 = 0, 'heartbeat', 'tool_calls') AS kind,
       amount AS quantity, user_data_64 AS sequence
FROM {{db}}.tagged_transfers FINAL
WHERE ledger IN (2, 3, 4);

-- Masques are identities too: the ones sessions used (identity = masque index, account = the
-- author's earnings account). v_identities is every identity: accounts' owners and masques.
CREATE VIEW IF NOT EXISTS {{db}}.v_identities AS
SELECT kind, identity_id, account_id, account_code, ledger, name, first_seen_ns
FROM {{db}}.identities FINAL
UNION ALL
SELECT 'masque' AS kind, toUInt128(masque_index) AS identity_id, author_account_id AS account_id,
       toUInt16(200) AS account_code, toUInt32(1) AS ledger, '' AS name, min(opened_ns) AS first_seen_ns
FROM {{db}}.sessions FINAL
WHERE author_account_id != 0
GROUP BY masque_index, author_account_id;
