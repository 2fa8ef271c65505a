-- conversations_hourly_mv (dropped by 0014): fed conversations_hourly from every insert into
-- conversations (each row once, as the sink guarantees). No POPULATE: backfill
-- with INSERT ... SELECT.
CREATE MATERIALIZED VIEW conversations_hourly_mv TO conversations_hourly
AS SELECT
    waba_id,
    category,
    market,
    pricing_model,
    toStartOfHour(opened_at) AS hour,
    count() AS conversations
FROM conversations
GROUP BY waba_id, category, market, pricing_model, hour
