package billing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
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

// Reset makes s a fresh key's state (the zero value) but keeps the capacity
// of its message memory, so that a recycled State does not allocate.
func (s *State) Reset() { *s = State{msgs: s.msgs[:0]} }

// HeapBytes returns about how many bytes s holds in memory: the fixed part
// and its message memory's capacity.
func (s *State) HeapBytes() int {
	return int(unsafe.Sizeof(*s)) + cap(s.msgs)*int(unsafe.Sizeof(msgRec{}))
}

// stateVersion is the binary form AppendBinary writes. UnmarshalBinary
// also reads version 1, which changelogs written before version 2 hold.
const stateVersion = 2

// Version 2 stores times as deltas: the first non-zero window end in full,
// the other window ends against it, each message's first sight against the
// previous message's (or the first window end), and its delivery against
// its first sight. A typical key (one open conversation, a few remembered
// messages) takes about 55 bytes, against about 85 in version 1:
//
//	version=2 uvarint(WABA) mask:byte [varint(first) varint(end-first)...]
//	uvarint(n) n × (hash:8 flags:byte varint(seenAt-prev) [varint(deliveredAt-seenAt)])
//
// Bit i of mask is set when time field i (csWindowEnd, fepEligibleUntil,
// fepUntil, open[0..4]) is non-zero. flags holds sendKind in bits 0-2,
// pricingKind in bits 3-5, and bit 6 when the message was delivered; bit 7
// means the kinds did not fit and follow as two raw bytes. Deltas wrap, so
// any int64 survives the round trip.
const (
	flagDelivered = 1 << 6
	flagWideKinds = 1 << 7
	// minMsgBytes is the smallest encoded message (hash, flags, a one-byte delta).
	minMsgBytes = 10
)

// MarshalBinary returns the state's binary form.
func (s *State) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// AppendBinary appends the state's binary form (version 2) to dst.
func (s *State) AppendBinary(dst []byte) ([]byte, error) {
	dst = append(dst, stateVersion)
	dst = binary.AppendUvarint(dst, s.WABA)
	times := s.times()
	var mask byte
	for i, t := range times {
		if t != 0 {
			mask |= 1 << i
		}
	}
	dst = append(dst, mask)
	var first int64
	seen := false
	for _, t := range times {
		if t == 0 {
			continue
		}
		if !seen {
			first, seen = t, true
			dst = binary.AppendVarint(dst, t)
			continue
		}
		dst = binary.AppendVarint(dst, t-first)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.msgs)))
	prev := first
	for i := range s.msgs {
		m := &s.msgs[i]
		dst = binary.LittleEndian.AppendUint64(dst, m.hash)
		var flags byte
		if m.sendKind < 8 && m.pricingKind < 8 {
			flags = byte(m.sendKind) | byte(m.pricingKind)<<3
		} else {
			flags = flagWideKinds
		}
		if m.deliveredAt != 0 {
			flags |= flagDelivered
		}
		dst = append(dst, flags)
		if flags&flagWideKinds != 0 {
			dst = append(dst, byte(m.sendKind), byte(m.pricingKind))
		}
		dst = binary.AppendVarint(dst, m.seenAt-prev)
		prev = m.seenAt
		if m.deliveredAt != 0 {
			dst = binary.AppendVarint(dst, m.deliveredAt-m.seenAt)
		}
	}
	return dst, nil
}

// numTimes is how many time fields State has besides its messages.
const numTimes = 3 + len(cbpCats)

// times returns the state's time fields in their binary order.
func (s *State) times() [numTimes]int64 {
	return [numTimes]int64{s.csWindowEnd, s.fepEligibleUntil, s.fepUntil,
		s.open[0], s.open[1], s.open[2], s.open[3], s.open[4]}
}

func (s *State) setTimes(t *[numTimes]int64) {
	s.csWindowEnd, s.fepEligibleUntil, s.fepUntil = t[0], t[1], t[2]
	copy(s.open[:], t[3:])
}

var errStateTruncated = errors.New("state truncated")

// UnmarshalBinary replaces s with a state written by AppendBinary (either
// version). It reuses the capacity of s's message memory, so decoding into
// the same State again and again does not allocate.
func (s *State) UnmarshalBinary(b []byte) error {
	if len(b) == 0 {
		return errStateTruncated
	}
	msgs := s.msgs[:0]
	*s = State{}
	var err error
	switch b[0] {
	case 1:
		err = s.unmarshalV1(b[1:], msgs)
	case 2:
		err = s.unmarshalV2(b[1:], msgs)
	default:
		return fmt.Errorf("state version %d: unsupported", b[0])
	}
	if err != nil {
		*s = State{msgs: msgs[:0]}
	}
	return err
}

// growMsgs returns msgs with length n, reusing its capacity when it can.
func growMsgs(msgs []msgRec, n int) []msgRec {
	if n == 0 {
		return msgs[:0]
	}
	if cap(msgs) < n {
		return make([]msgRec, n)
	}
	msgs = msgs[:n]
	clear(msgs)
	return msgs
}

func (s *State) unmarshalV1(b []byte, msgs []msgRec) error {
	r := reader{b: b}
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
	s.msgs = growMsgs(msgs, int(n))
	for i := range s.msgs {
		m := &s.msgs[i]
		m.hash = r.u64()
		m.seenAt = r.varint()
		m.deliveredAt = r.varint()
		m.sendKind = MsgKind(r.byte())
		m.pricingKind = MsgKind(r.byte())
	}
	return r.finish()
}

func (s *State) unmarshalV2(b []byte, msgs []msgRec) error {
	r := reader{b: b}
	s.WABA = r.uvarint()
	mask := r.byte()
	var times [numTimes]int64
	var first int64
	seen := false
	for i := range times {
		if mask&(1<<i) == 0 {
			continue
		}
		if !seen {
			first, seen = r.varint(), true
			times[i] = first
			continue
		}
		times[i] = first + r.varint()
	}
	if r.err == nil && seen && first == 0 {
		return errors.New("state marks a zero time as set")
	}
	s.setTimes(&times)
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/minMsgBytes) {
		return fmt.Errorf("state claims %d messages in %d bytes", n, len(r.b))
	}
	s.msgs = growMsgs(msgs, int(n))
	prev := first
	for i := range s.msgs {
		m := &s.msgs[i]
		m.hash = r.u64()
		flags := r.byte()
		if flags&flagWideKinds != 0 {
			m.sendKind = MsgKind(r.byte())
			m.pricingKind = MsgKind(r.byte())
		} else {
			m.sendKind = MsgKind(flags & 7)
			m.pricingKind = MsgKind(flags >> 3 & 7)
		}
		m.seenAt = prev + r.varint()
		prev = m.seenAt
		if flags&flagDelivered != 0 {
			m.deliveredAt = m.seenAt + r.varint()
		}
	}
	return r.finish()
}

func (r *reader) finish() error {
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
