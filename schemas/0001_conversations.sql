-- conversations: one row per opened conversation (CBP categories, and free entry
-- point windows under both models), written by the sink (pkg/sink).
--
-- Engine: plain MergeTree. Rows are never updated. The sink makes every row land
-- once (deterministic conversation_id, skip by sink_partition/sink_offset and by
-- recent ids), so no collapsing or replacing engine is needed, and the rollup
-- the sink writes per insert (insert_id, 0010) sums each row exactly once.
-- PARTITION BY month of opened_at: billing is monthly (free tier, invoices), so a
-- month is the unit analysts scan, and the unit to drop or re-derive.
-- ORDER BY (waba_id, opened_at, conversation_id): analysts ask "what did this
-- account open over this period". The id last makes the order total.
-- sink_partition / sink_offset: where the row came from in the rows topic. The
-- sink reads them back on partition assignment to skip what is already stored
-- (a scan of these two columns: no index serves a filter on them).
CREATE TABLE conversations
(
    conversation_id      String,
    waba_id              String,
    portfolio_id         String,
    phone_number_id      String,
    customer_wa_id       String,
    market               String,
    category             String,
    pricing_model        String,
    rule_set             String,
    opened_at            DateTime('UTC'),
    expires_at           DateTime('UTC'),
    opening_message_id   String,
    meta_conversation_id String,
    sink_partition       UInt32,
    sink_offset          UInt64,
    inserted_at          DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(opened_at)
ORDER BY (waba_id, opened_at, conversation_id)
