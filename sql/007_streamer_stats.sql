-- 007: the streamer's own health, as a metric: one row per stats window (every ~10 s while events
-- flow) and one 'total' row per run (written at a graceful stop). Lag = time from the ledger
-- timestamp of an event to its commit in ClickHouse. Observations, not ledger data: not
-- deduplicated, kept 90 days.
CREATE TABLE IF NOT EXISTS {{db}}.streamer_stats
(
    time          DateTime64(3, 'UTC'),
    scope         LowCardinality(String) COMMENT 'window | total',
    window_s      Float64,
    events        UInt64,
    events_per_s  UInt64,
    lag_p50_ms    UInt32,
    lag_p99_ms    UInt32,
    lag_max_ms    UInt32,
    cursor_ts     UInt64,
    head_ts       UInt64,
    events_behind UInt32
)
ENGINE = MergeTree
ORDER BY time
TTL toDateTime(time) + INTERVAL 90 DAY;
