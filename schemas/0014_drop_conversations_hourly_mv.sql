-- Drops conversations_hourly_mv (0007), for the reason of 0013: the sink
-- writes conversations_hourly. conversations_hourly keeps the view's rows.
DROP TABLE IF EXISTS conversations_hourly_mv
