// Package billing derives the conversations and charges Meta bills from one
// customer's message events (spec sections 2 to 5), and applies the
// per-account monthly counters (free tier, volume tiers) and rates.
//
// It is pure: no Kafka, no ClickHouse, no wall clock, no logger. Events in,
// rows out. Callers feed each key's events in event-time order (see Less).
package billing

// EventKind says what an Event is.
type EventKind uint8

const (
	// Inbound is a message from the customer to the business (webhook value.messages[]).
	Inbound EventKind = iota + 1
	// Send is the BSP's own send record of an outbound message (sends topic).
	Send
	// Status is a status of an outbound message (webhook value.statuses[]).
	Status
)

// StatusKind is the status of an outbound message.
type StatusKind uint8

const (
	StatusOther StatusKind = iota // deleted, warning, anything not below
	StatusSent
	StatusDelivered
	StatusRead
	StatusFailed
)

// MsgKind is what an outbound message is, for billing (spec 1.1).
type MsgKind uint8

const (
	KindUnknown MsgKind = iota // opens nothing, charged nothing; counted
	KindNonTemplate
	KindMarketing
	KindUtility
	KindAuthentication
	KindAuthenticationIntl // pricing.category authentication_international
	KindLegacy             // business_initiated / user_initiated: recorded, bills nothing
)

// Event is one canonical message event of a key (phone_number_id, customer
// wa_id). Ids are the numeric Meta ids; 0 means unknown (only WABA may be 0).
// Time is Unix seconds, UTC.
type Event struct {
	Kind          EventKind
	Status        StatusKind // Status events only
	MsgKind       MsgKind    // Send: from the template category; Status: from pricing.category
	Referral      bool       // Inbound only: carries a referral (free entry point candidate)
	Time          int64
	WABA          uint64
	PhoneNumberID uint64
	Customer      uint64 // customer wa_id, digits only
	MessageID     string

	// Meta's own view, kept for reconciliation (spec 7); Status events only.
	MetaConversationID string
	MetaCategory       string // pricing.category as sent, normalised to lower case with '_'
	MetaPricingModel   string // pricing.pricing_model: "CBP", "PMP", ...
}

// rank orders event kinds that share a timestamp: inbound before outbound,
// and for one outbound message its send record before its statuses.
func (e *Event) class() uint8 {
	if e.Kind == Inbound {
		return 0
	}
	return 1
}

func (e *Event) subRank() uint8 {
	if e.Kind == Send {
		return 0
	}
	return 1 + uint8(e.Status)
}

// Less is the order in which a key's events must be applied (spec 2): event
// time; ties inbound before outbound, then message id in byte order; for one
// message id the send record first, then statuses (sent, delivered, read,
// failed). Exact duplicates compare equal, and applying them twice is a no-op.
func Less(a, b *Event) bool {
	if a.Time != b.Time {
		return a.Time < b.Time
	}
	if ca, cb := a.class(), b.class(); ca != cb {
		return ca < cb
	}
	if a.MessageID != b.MessageID {
		return a.MessageID < b.MessageID
	}
	return a.subRank() < b.subRank()
}
