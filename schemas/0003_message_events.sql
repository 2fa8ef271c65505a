-- message_events: the normalised message events (inbound messages, send
-- records, statuses) as the window stage consumed them, kept for audits and for
-- re-deriving conversations and charges without Kafka retention.
--
-- Engine: plain MergeTree: an append-only log.
-- PARTITION BY month of event_time: re-derivation and retention work per month.
-- ORDER BY (phone_number_id, customer_wa_id, event_time, message_id): the
-- billing rules run per key (business number, customer) in event-time order, so
-- a re-derivation reads the events of each key in the order it applies them.
-- The same prefix serves "what happened with this customer" audits.
CREATE TABLE message_events
(
    event_time           DateTime('UTC'),
    kind                 String,
    status               String,
    msg_kind             String,
    waba_id              String,
    phone_number_id      String,
    customer_wa_id       String,
    message_id           String,
    referral             UInt8,
    meta_conversation_id String,
    meta_category        String,
    meta_pricing_model   String,
    source               String,
    sink_partition       UInt32,
    sink_offset          UInt64,
    inserted_at          DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (phone_number_id, customer_wa_id, event_time, message_id)
