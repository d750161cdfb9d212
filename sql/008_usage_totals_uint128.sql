-- 008: usage totals as wide as the ledger's meters (issue 11). A session's usage is the sum of
-- its usage transfers, each a u128 in the ledger, and its meter account's totals are u128: the
-- UInt64 columns of 003 silently wrapped past 2^64. MODIFY COLUMN to the same type is a no-op,
-- so a half-applied run is simply re-run. Reputation sums are taken in UInt256 (sum(UInt128) wraps).
ALTER TABLE {{db}}.sessions MODIFY COLUMN usage_input_tokens UInt128;
ALTER TABLE {{db}}.sessions MODIFY COLUMN usage_output_tokens UInt128;
ALTER TABLE {{db}}.sessions MODIFY COLUMN usage_tool_calls UInt128;

CREATE OR REPLACE VIEW {{db}}.reputation_masques AS
SELECT
    masque_index,
    any(author_account_id)                              AS author_account_id,
    count()                                             AS sessions,
    countIf(status = 'closed')                          AS completed,
    countIf(status = 'cancelled')                       AS cancelled,
    countIf(status = 'expired')                         AS expired,
    countIf(status = 'open')                            AS open,
    uniqExact(agent_account_id)                         AS distinct_agents,
    sum(toUInt256(price_micro))                         AS revenue_micro,
    sum(toUInt256(author_micro))                        AS author_earnings_micro,
    if(countIf(status != 'open') = 0, 0,
       countIf(status = 'closed') / countIf(status != 'open')) AS completion_rate,
    sum(toUInt256(usage_input_tokens))                  AS input_tokens,
    sum(toUInt256(usage_output_tokens))                 AS output_tokens,
    sum(toUInt256(usage_tool_calls))                    AS tool_calls,
    max(opened_ns)                                      AS last_used_ns
FROM {{db}}.sessions FINAL
GROUP BY masque_index;
