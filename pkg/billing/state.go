package billing

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// cbpCats are the categories a CBP conversation can have (spec 4): the index
// into State.open.
var cbpCats = [...]Category{CatMarketing, CatUtility, CatAuthentication, CatAuthenticationIntl, CatService}

func cbpSlot(c Category) int {
	switch c {
	case CatMarketing:
		return 0
	case CatUtility:
		return 1
	case CatAuthentication:
		return 2
	case CatAuthenticationIntl:
		return 3
	case CatService:
		return 4
	}
	return -1
}

// msgRec is what a key remembers of one outbound message: its kind from the
// send record and from Meta's pricing object, and when it was delivered, so
// that a later read (or a repeated delivered) bills nothing.
type msgRec struct {
	hash        uint64
	seenAt      int64 // event time it was first seen
	deliveredAt int64 // 0: not delivered yet
	sendKind    MsgKind
	pricingKind MsgKind
}

// State is the per-key state (business phone_number_id, customer wa_id) of
// the engine: a fixed part of 10 words plus the recent outbound messages.
// The zero value is a fresh key. It is not safe for concurrent use.
type State struct {
	WABA             uint64
	csWindowEnd      int64 // customer service window: [last inbound, csWindowEnd)
	fepEligibleUntil int64 // a referral arrived: an outbound message before this opens a free entry point
	fepUntil         int64 // open free entry point window end (opened at fepUntil-72h)
	open             [len(cbpCats)]int64
	msgs             []msgRec
}

// Idle reports whether nothing of the key can matter any more at event time
// now: every window has ended and every remembered message is older than
// memory seconds. An idle key can be evicted (its state dropped).
func (s *State) Idle(now, memory int64) bool {
	if s.csWindowEnd > now || s.fepEligibleUntil > now || s.fepUntil > now {
		return false
	}
	for _, end := range s.open {
		if end > now {
			return false
		}
	}
	for i := range s.msgs {
		if s.msgs[i].lastAt() > now-memory {
			return false
		}
	}
	return true
}

func (m *msgRec) lastAt() int64 {
	if m.deliveredAt > m.seenAt {
		return m.deliveredAt
	}
	return m.seenAt
}

// Messages returns how many outbound messages the key remembers.
func (s *State) Messages() int { return len(s.msgs) }

const stateVersion = 1

// MarshalBinary appends nothing but the state: a version byte, varints.
func (s *State) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// AppendBinary appends the state's binary form to dst.
func (s *State) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, stateVersion)
	dst = binary.AppendUvarint(dst, s.WABA)
	dst = binary.AppendVarint(dst, s.csWindowEnd)
	dst = binary.AppendVarint(dst, s.fepEligibleUntil)
	dst = binary.AppendVarint(dst, s.fepUntil)
	for _, end := range s.open {
		dst = binary.AppendVarint(dst, end)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.msgs)))
	for i := range s.msgs {
		m := &s.msgs[i]
		dst = binary.LittleEndian.AppendUint64(dst, m.hash)
		dst = binary.AppendVarint(dst, m.seenAt)
		dst = binary.AppendVarint(dst, m.deliveredAt)
		dst = append(dst, byte(m.sendKind), byte(m.pricingKind))
	}
	return dst, nil
}

var errStateTruncated = errors.New("state truncated")

// UnmarshalBinary restores a state written by MarshalBinary.
func (s *State) UnmarshalBinary(b []byte) error {
	if len(b) == 0 {
		return errStateTruncated
	}
	if b[0] != stateVersion {
		return fmt.Errorf("state version %d: unsupported", b[0])
	}
	r := reader{b: b[1:]}
	*s = State{}
	s.WABA = r.uvarint()
	s.csWindowEnd = r.varint()
	s.fepEligibleUntil = r.varint()
	s.fepUntil = r.varint()
	for i := range s.open {
		s.open[i] = r.varint()
	}
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/12) {
		return fmt.Errorf("state claims %d messages in %d bytes", n, len(r.b))
	}
	if n > 0 {
		s.msgs = make([]msgRec, n)
	}
	for i := range s.msgs {
		m := &s.msgs[i]
		m.hash = r.u64()
		m.seenAt = r.varint()
		m.deliveredAt = r.varint()
		m.sendKind = MsgKind(r.byte())
		m.pricingKind = MsgKind(r.byte())
	}
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("state has %d trailing bytes", len(r.b))
	}
	return nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errStateTruncated
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errStateTruncated
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) u64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = errStateTruncated
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = errStateTruncated
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}
