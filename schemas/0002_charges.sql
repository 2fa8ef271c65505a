-- charges: one row per billing unit (a CBP conversation or a PMP delivered
-- message), free ones included with amount 0 (spec 6), written by the sink.
--
-- Engine: plain MergeTree, for the same reason as conversations: the sink makes
-- each row land once by construction (deterministic charge_id, skip by
-- sink_partition/sink_offset and recent ids). 18.16 has no insert dedup.
-- PARTITION BY month of charged_at: free tier and volume tiers reset monthly and
-- invoices are monthly, so queries and re-derivations are per month.
-- ORDER BY (waba_id, charged_at, charge_id): spend per account over a period is
-- the main question. The id last makes the order total.
-- amount is Decimal(18,6): money in millionths, never a float.
-- meta_*: the view of Meta from the webhooks, for reconciliation (spec 7).
CREATE TABLE charges
(
    charge_id            String,
    waba_id              String,
    portfolio_id         String,
    phone_number_id      String,
    customer_wa_id       String,
    market               String,
    category             String,
    pricing_model        String,
    pricing_type         String,
    billing_unit         String,
    conversation_id      String,
    message_id           String,
    charged_at           DateTime('UTC'),
    currency             String,
    amount               Decimal(18, 6),
    rate_card            String,
    tier                 UInt16,
    rule_set             String,
    meta_conversation_id String,
    meta_category        String,
    meta_pricing_model   String,
    sink_partition       UInt32,
    sink_offset          UInt64,
    inserted_at          DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(charged_at)
ORDER BY (waba_id, charged_at, charge_id)
