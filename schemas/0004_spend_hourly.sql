-- spend_hourly: units and amount per account, category, market, pricing model,
-- pricing type and currency per hour, for dashboards and spend alerts. Filled
-- by spend_hourly_mv from inserts into charges until 0013 dropped it; since
-- then by the sink, per charges insert (insert_id, 0011).
--
-- Engine: SummingMergeTree((units, amount)): rows with the same ORDER BY key are
-- summed when parts merge, which happens eventually and maybe never completely.
-- READERS MUST AGGREGATE: SELECT ..., sum(units), sum(amount) ... GROUP BY ...
-- Never read units/amount of a single row as the total. sum(amount) is
-- Decimal(38,6): cast it if a Decimal(18,6) is needed.
-- PARTITION BY month of hour: as charges. ORDER BY starts with waba_id, hour
-- for per-account time ranges. The other key columns are the dimensions the
-- rows are summed within.
CREATE TABLE spend_hourly
(
    waba_id       String,
    portfolio_id  String,
    category      String,
    market        String,
    pricing_model String,
    pricing_type  String,
    currency      String,
    hour          DateTime('UTC'),
    units         UInt64,
    amount        Decimal(18, 6)
)
ENGINE = SummingMergeTree((units, amount))
PARTITION BY toYYYYMM(hour)
ORDER BY (waba_id, hour, portfolio_id, category, market, pricing_model, pricing_type, currency)
