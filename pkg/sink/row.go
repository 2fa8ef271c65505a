// Package sink writes the pipeline's output rows (conversations and charges)
// into ClickHouse, each row exactly once.
//
// Rows travel on the internal rows topic in a compact binary form
// (AppendConversationRow, AppendChargeRow, DecodeRow), in the partition of
// the row's deterministic id (Row.Key), so that a row re-emitted upstream
// lands in the same partition as its first copy; many rows may share a
// record (packed, see Writer.AddRecord). A Writer batches decoded rows into one
// INSERT per table per Flush and skips what ClickHouse already holds: every
// row stores the rows-topic partition and offset it came from, and on
// partition assignment the Writer reads back the highest stored offset and
// the ids of a recent horizon (see Writer).
package sink

import (
	"encoding/hex"
	"time"

	"github.com/wameter/wameter/pkg/billing"
)

// Table names the ClickHouse table a row goes to. Its value is also the row
// type byte of the rows-topic encoding.
type Table uint8

const (
	TableConversations Table = 1
	TableCharges       Table = 2
)

// tables lists the tables a Writer fills, in insert order.
var tables = [...]Table{TableConversations, TableCharges}

// String returns the table's name in ClickHouse.
func (t Table) String() string {
	switch t {
	case TableConversations:
		return "conversations"
	case TableCharges:
		return "charges"
	}
	return "invalid"
}

// MarshalText makes a Table print by name, also as a JSON map key.
func (t Table) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Row is one decoded row of the rows topic: a conversation or a charge, as
// selected by Table. Its fields map one to one onto the table's columns, less
// sink_partition and sink_offset (given to Writer.Add) and inserted_at.
type Row struct {
	Table        Table
	Conversation ConversationRow // when Table is TableConversations
	Charge       ChargeRow       // when Table is TableCharges
}

// ID returns the row's id column: 32 lower-case hex digits.
func (r *Row) ID() string {
	if r.Table == TableConversations {
		return r.Conversation.ConversationID
	}
	return r.Charge.ChargeID
}

// Key returns the row's id as its 16 raw bytes (nil if the id is not 32 hex
// digits). Producers put a row in the rows partition of that key (as its
// record's key, or packing it with the rows bound for that partition),
// which is billing.ID's bytes (id[:] of Conversation.ID or Unit.ID), so that
// every copy of a row meets in one partition and so in one Writer.
func (r *Row) Key() []byte {
	id, ok := parseID(r.ID())
	if !ok {
		return nil
	}
	return id[:]
}

// ConversationRow is one row of the conversations table.
type ConversationRow struct {
	ConversationID     string // 32 hex digits, billing.Conversation.ID
	WABAID             string // decimal Meta id; "" when unknown
	PortfolioID        string // decimal; "" when unknown
	PhoneNumberID      string
	CustomerWaID       string
	Market             string
	Category           string
	PricingModel       string
	RuleSet            string
	OpenedAt           time.Time // UTC, whole seconds
	ExpiresAt          time.Time
	OpeningMessageID   string
	MetaConversationID string
}

// ChargeRow is one row of the charges table.
type ChargeRow struct {
	ChargeID       string // 32 hex digits, billing.Unit.ID
	WABAID         string
	PortfolioID    string
	PhoneNumberID  string
	CustomerWaID   string
	Market         string
	Category       string
	PricingModel   string
	PricingType    string
	BillingUnit    string
	ConversationID string // 32 hex digits, or "" when the unit belongs to none
	MessageID      string
	ChargedAt      time.Time
	Currency       string
	// AmountMicro is the amount in millionths of Currency: the Decimal(18,6)
	// column's unscaled value.
	AmountMicro        int64
	RateCard           string
	Tier               uint16
	RuleSet            string
	MetaConversationID string
	MetaCategory       string
	MetaPricingModel   string
}

// parseID decodes a 32-hex-digit id without allocating.
func parseID(s string) (billing.ID, bool) {
	var id billing.ID
	if len(s) != 2*len(id) {
		return id, false
	}
	for i := range id {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return id, false
		}
		id[i] = hi<<4 | lo
	}
	return id, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// hexID is billing.ID.String without the intermediate slice.
func hexID(id *billing.ID) string {
	var buf [32]byte
	hex.Encode(buf[:], id[:])
	return string(buf[:])
}
