-- Drops spend_hourly_mv (0005): the sink now writes spend_hourly itself,
-- right after each charges insert and under the same insert_id, and repairs
-- a rollup insert that a crash cut off. A view cannot be repaired: on 18.16
-- an INSERT writes the table's part, then the view's, with nothing atomic
-- between them. spend_hourly keeps the rows the view wrote.
-- IF EXISTS: re-running it after a crash before it was recorded is harmless.
DROP TABLE IF EXISTS spend_hourly_mv
