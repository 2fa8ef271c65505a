-- spend_hourly_mv: fed spend_hourly from every insert into charges until 0013
-- dropped it (a kill between the two inserts left the rollup short). A
-- materialized view runs on each inserted block, so it is correct exactly when
-- every charge is inserted once, which the sink guarantees. It does not see rows
-- inserted before it was created (no POPULATE: backfill by INSERT ... SELECT).
-- sum() of Decimal(18,6) is Decimal(38,6): cast back to the column type.
CREATE MATERIALIZED VIEW spend_hourly_mv TO spend_hourly
AS SELECT
    waba_id,
    portfolio_id,
    category,
    market,
    pricing_model,
    pricing_type,
    currency,
    toStartOfHour(charged_at) AS hour,
    count() AS units,
    CAST(sum(amount) AS Decimal(18, 6)) AS amount
FROM charges
GROUP BY waba_id, portfolio_id, category, market, pricing_model, pricing_type, currency, hour
