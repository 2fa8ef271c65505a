package billing

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// ID is a deterministic 128-bit identifier derived from a row's natural key:
// re-processing the same events yields the same ids, so duplicates can be
// recognised anywhere downstream.
type ID [16]byte

// String returns the id as 32 lower-case hex digits (as stored in ClickHouse).
func (id ID) String() string { return hex.EncodeToString(id[:]) }

func naturalID(parts ...[]byte) ID {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0x1f}) // unit separator: no part can forge another's boundary
	}
	var sum [sha256.Size]byte
	var id ID
	copy(id[:], h.Sum(sum[:0]))
	return id
}

func u64(v uint64) []byte { return strconv.AppendUint(nil, v, 10) }
func i64(v int64) []byte  { return strconv.AppendInt(nil, v, 10) }

// ConversationKeyID is the id of the conversation of key (phoneNumberID,
// customer) with category cat opened at openedAt (Unix seconds).
func ConversationKeyID(phoneNumberID, customer uint64, cat Category, openedAt int64) ID {
	return naturalID([]byte("conversation"), u64(phoneNumberID), u64(customer),
		[]byte(cat.String()), i64(openedAt))
}

// ID returns the conversation's deterministic id.
func (c *Conversation) ID() ID {
	return ConversationKeyID(c.PhoneNumberID, c.Customer, c.Category, c.OpenedAt)
}

// ConversationID returns the id of the conversation the unit belongs to, and
// false when it belongs to none.
func (u *Unit) ConversationID() (ID, bool) {
	if u.ConversationOpenedAt == 0 {
		return ID{}, false
	}
	return ConversationKeyID(u.PhoneNumberID, u.Customer, u.ConversationCategory, u.ConversationOpenedAt), true
}

// ID returns the charge's deterministic id: a CBP charge is its
// conversation's, a per-message charge its message's (one charge per message
// id and business number, whatever statuses repeat).
func (u *Unit) ID() ID {
	if u.BillingUnit == UnitConversation {
		conv, _ := u.ConversationID()
		return naturalID([]byte("charge"), []byte("conversation"), conv[:])
	}
	return naturalID([]byte("charge"), []byte("message"), u64(u.PhoneNumberID), []byte(u.MessageID))
}
