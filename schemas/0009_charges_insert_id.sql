-- charges.insert_id: the id of the sink INSERT that stored the row (random,
-- non-zero, one per insert of the Writer, kept across its retries). The sink
-- writes the rollup rows of that insert into spend_hourly under the same id
-- (the materialized view is dropped in 0014), and on partition assignment
-- looks for inserts of the partition whose rollup rows are missing (a
-- process, or ClickHouse, killed between the two inserts) and adds them.
-- 0 on rows stored before this column existed: their rollup came from the
-- view. Not in the sorting key: only recovery reads it, by a scan.
ALTER TABLE charges ADD COLUMN insert_id UInt64
