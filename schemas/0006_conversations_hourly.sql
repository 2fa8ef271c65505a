-- conversations_hourly: conversations opened per account, category, market and
-- pricing model per hour, for dashboards and alerting. Filled by
-- conversations_hourly_mv until 0014 dropped it; since then by the sink, per
-- conversations insert (insert_id, 0012).
--
-- Engine: SummingMergeTree((conversations)): rows with the same key are summed
-- when parts merge, eventually. READERS MUST AGGREGATE:
-- SELECT ..., sum(conversations) ... GROUP BY ...
-- PARTITION BY month of hour, ORDER BY (waba_id, hour, ...): as spend_hourly.
CREATE TABLE conversations_hourly
(
    waba_id       String,
    category      String,
    market        String,
    pricing_model String,
    hour          DateTime('UTC'),
    conversations UInt64
)
ENGINE = SummingMergeTree((conversations))
PARTITION BY toYYYYMM(hour)
ORDER BY (waba_id, hour, category, market, pricing_model)
