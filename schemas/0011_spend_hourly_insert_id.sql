-- spend_hourly.insert_id: the charges insert (charges.insert_id) whose rows
-- a spend_hourly row sums; 0 for the rows the materialized view wrote.
--
-- It ends the sorting key so that rows of different inserts are never
-- summed together by merges: the sink tells whether an insert's rollup rows
-- are stored by looking for its id, which must survive merges. Rows of one
-- insert and key still sum, and so do all the view's rows (id 0). The cost:
-- up to one row per insert and key instead of one per key. Readers aggregate
-- anyway (sum() ... GROUP BY), so their results do not change.
--
-- ADD COLUMN and MODIFY ORDER BY in one ALTER is the only way to extend a
-- sorting key, on 18.16 as on current releases: metadata only, no rewrite.
-- The primary key (the index) stays (waba_id, hour, ...).
ALTER TABLE spend_hourly
    ADD COLUMN insert_id UInt64,
    MODIFY ORDER BY (waba_id, hour, portfolio_id, category, market, pricing_model, pricing_type, currency, insert_id)
