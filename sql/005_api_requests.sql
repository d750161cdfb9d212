-- 005: API request metering from OTEL (metrics/logs today; spans later). One row per request,
-- deduplicated by (day, request_id) because OTEL exporters deliver at least once.
CREATE TABLE IF NOT EXISTS {{db}}.api_requests
(
    timestamp             DateTime64(9, 'UTC'),
    request_id            String,
    session_id            UInt128 DEFAULT 0 COMMENT 'masque session, when the request ran under one',
    agent_id              String DEFAULT '',
    masque                String DEFAULT '',
    service_name          LowCardinality(String) DEFAULT '',
    model                 LowCardinality(String) DEFAULT '',
    operation             LowCardinality(String) DEFAULT '' COMMENT 'api_request | tool_call | ...',
    status_code           UInt16 DEFAULT 0,
    duration_ms           Float64 DEFAULT 0,
    input_tokens          UInt64 DEFAULT 0,
    output_tokens         UInt64 DEFAULT 0,
    cache_read_tokens     UInt64 DEFAULT 0,
    cache_creation_tokens UInt64 DEFAULT 0,
    cost_micro            UInt64 DEFAULT 0 COMMENT 'cost reported by the client, micro-USD',
    trace_id              String DEFAULT '',
    span_id               String DEFAULT '',
    attributes            Map(LowCardinality(String), String)
)
ENGINE = ReplacingMergeTree
ORDER BY (toDate(timestamp), request_id);
