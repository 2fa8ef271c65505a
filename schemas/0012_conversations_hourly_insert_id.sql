-- conversations_hourly.insert_id: as spend_hourly.insert_id (0011), for the
-- conversations inserts.
ALTER TABLE conversations_hourly
    ADD COLUMN insert_id UInt64,
    MODIFY ORDER BY (waba_id, hour, category, market, pricing_model, insert_id)
