-- spend_alerts: every transition of a spend alert (spend spike or budget) that
-- `wameter alert` notified: one 'firing' row when the condition became true
-- and one 'resolved' row, with the same alert_id, when it cleared. The alert
-- service reads it back at start to recover the alerts still open (a firing
-- row without a resolved row of the same alert_id), so a restart does not
-- notify them again.
--
-- Engine: plain MergeTree: an append-only log, a few rows per alert; rows are
-- never updated (the state of an alert is its last row).
-- PARTITION BY month of at: as the other tables; old alerts are dropped or
-- audited by month.
-- ORDER BY (waba_id, at, alert_id): "what alerted for this account over this
-- period" is the question; recovery scans the whole (small) table.
-- value / baseline / threshold are Decimal(18,6) in the account currency,
-- like charges.amount. rule is 'spike', 'budget_daily' or 'budget_monthly';
-- category is '' for an alert on the account's total.
CREATE TABLE spend_alerts
(
    alert_id     String,
    rule         String,
    waba_id      String,
    category     String,
    state        String,
    value        Decimal(18, 6),
    baseline     Decimal(18, 6),
    threshold    Decimal(18, 6),
    currency     String,
    window_start DateTime('UTC'),
    at           DateTime('UTC'),
    message      String,
    inserted_at  DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(at)
ORDER BY (waba_id, at, alert_id)
