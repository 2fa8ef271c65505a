// Package traffic generates realistic WhatsApp Business Platform traffic:
// what Meta posts to a BSP's webhook and what the BSP's own send path
// records, for a few accounts over a day or more, as a stream of Kafka-like
// records in arrival order. It is deterministic: the same Config (seed
// included) gives the same bytes.
//
// # What is generated
//
// Conversations start at random (Poisson, with a daily rhythm in each
// customer's time zone) and follow short scripts by kind (see Mix): a
// marketing template that sometimes gets a reply and a chat; utility
// updates; one-time codes, sometimes resent; customer-initiated service
// chats with buttons and a utility template inside the window; customers
// arriving from a Click-to-WhatsApp ad (referral), offered a marketing
// template a day later. Each outbound message yields a send record (topic
// "sends", spec 1.1) and Cloud API status webhooks (topic "webhooks"):
// sent, then delivered a few seconds later (or hours later for a phone
// that is off; sometimes skipped, the read standing for it), read minutes
// or hours later, or failed. Inbound messages are text, button and
// interactive replies with their context, images, reactions, and text with
// a referral object.
//
// Statuses carry the pricing and conversation objects Meta sends for their
// era: conversation-based pricing before 2025-07-01 (conversation id,
// origin, expiration on sent; pricing_model CBP, category of the
// conversation, billable), per-message pricing after (pricing_model PMP,
// type regular / free_customer_service / free_entry_point, a conversation
// object only inside a free entry point window), and the legacy categories
// business_initiated / user_initiated before 2023-06-01. The generator
// keeps a simple model of Meta's conversations per customer for this; it is
// Meta's view for reconciliation, not the billing rules (pkg/billing).
//
// Disorder is that of real arrivals: webhook latency varies (a delivered
// status can arrive before its sent), Meta retries ~1% of payloads later
// (RetryRate), statuses of one business number are sometimes batched into
// one payload (BatchRate), a few send records arrive after their statuses
// (LateSendRate). Records are emitted in arrival order (At).
//
// # Scale
//
// Generate streams: it holds a small record per in-flight status (those
// not yet arrived, such as reads hours later) and 64 bytes of conversation
// state per customer, and it renders each record into a buffer it reuses.
package traffic

import (
	"math"
	"time"
)

// Topics of the records.
const (
	TopicWebhooks = "webhooks"
	TopicSends    = "sends"
)

// Record is one record as the ingest would produce it to Kafka.
//
// Key, Value and Headers belong to the generator: they are valid until the
// callback returns and must not be modified (copy what you keep). Headers is
// nil except for On-Premises webhooks, which carry phone_number_id and
// waba_id.
type Record struct {
	Topic   string // TopicWebhooks or TopicSends
	Key     []byte // the customer wa_id (of the payload's first item)
	Value   []byte // the webhook POST body or the send record, JSON
	Headers map[string]string
	At      int64 // arrival time, Unix milliseconds; non-decreasing along the stream
	// Malformed marks the records injected by Config.Malformed: the
	// decoder rejects them, and their Value may not be JSON at all. Every
	// other Value is valid JSON on one line.
	Malformed bool
}

// Generate generates the traffic cfg describes and calls emit with each
// record in arrival order. It stops at the first error emit returns, and
// returns it. The callback must not retain the record's slices.
func Generate(cfg Config, emit func(Record) error) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	g := newGenerator(&cfg, emit)
	return g.run()
}

// Rule-set boundaries of Meta's pricing (UTC), for the pricing objects of
// the statuses.
var (
	cbpStart     = time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC).Unix()
	serviceFree  = time.Date(2024, 11, 1, 0, 0, 0, 0, time.UTC).Unix()
	pmpStart     = time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC).Unix()
	never        = int64(math.MaxInt64)
	msPerDay     = float64(24 * time.Hour / time.Millisecond)
	conversation = int64(24 * 3600)     // CBP conversation and customer service window, seconds
	freeEntry    = int64(3 * 24 * 3600) // free entry point window, seconds
)
