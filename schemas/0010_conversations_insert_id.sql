-- conversations.insert_id: as charges.insert_id (0009), for
-- conversations_hourly.
ALTER TABLE conversations ADD COLUMN insert_id UInt64
