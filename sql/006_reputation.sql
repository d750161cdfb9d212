-- 006: reputation per masque and per author, and deduplicated read views. Views, so they are
-- always current with the sessions table (no second copy to keep in step).
CREATE VIEW IF NOT EXISTS {{db}}.v_transfers AS SELECT * FROM {{db}}.transfers FINAL;
CREATE VIEW IF NOT EXISTS {{db}}.v_accounts AS SELECT * FROM {{db}}.accounts FINAL;
CREATE VIEW IF NOT EXISTS {{db}}.v_sessions AS SELECT * FROM {{db}}.sessions FINAL;

CREATE VIEW IF NOT EXISTS {{db}}.reputation_masques AS
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
    sum(usage_input_tokens)                             AS input_tokens,
    sum(usage_output_tokens)                            AS output_tokens,
    sum(usage_tool_calls)                               AS tool_calls,
    max(opened_ns)                                      AS last_used_ns
FROM {{db}}.sessions FINAL
GROUP BY masque_index;

CREATE VIEW IF NOT EXISTS {{db}}.reputation_authors AS
SELECT
    author_account_id,
    uniqExact(masque_index)                             AS masques,
    count()                                             AS sessions,
    countIf(status = 'closed')                          AS completed,
    countIf(status IN ('cancelled', 'expired'))         AS abandoned,
    uniqExact(agent_account_id)                         AS distinct_agents,
    sum(toUInt256(author_micro))                        AS earnings_micro,
    if(countIf(status != 'open') = 0, 0,
       countIf(status = 'closed') / countIf(status != 'open')) AS completion_rate,
    max(closed_ns)                                      AS last_paid_ns
FROM {{db}}.sessions FINAL
WHERE author_account_id != 0
GROUP BY author_account_id;
