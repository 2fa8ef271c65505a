package webhook

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/wameter/wameter/pkg/billing"
)

// eventFormatV1 is the leading byte of the AppendEvent encoding:
//
//	format byte (1)
//	kind, status, msg kind, flags (bit 0: Referral): one byte each
//	Time: signed varint
//	WABA, PhoneNumberID, Customer: unsigned varints
//	lengths of MessageID, MetaConversationID, MetaCategory, MetaPricingModel: unsigned varints
//	the four strings' bytes, back to back
//
// The strings come last and together so that ReadEvent makes one string of
// them and slices it: one allocation per event.
const eventFormatV1 = 1

// ErrCorruptEvent is wrapped by every ReadEvent error.
var ErrCorruptEvent = errors.New("corrupt event encoding")

// AppendEvent appends the binary encoding of e to dst and returns the
// extended slice. Decode it with ReadEvent, which accepts only events with
// a Kind and in-range enums, as the decoders produce them.
func AppendEvent(dst []byte, e *billing.Event) []byte {
	var flags byte
	if e.Referral {
		flags |= 1
	}
	dst = append(dst, eventFormatV1, byte(e.Kind), byte(e.Status), byte(e.MsgKind), flags)
	dst = binary.AppendVarint(dst, e.Time)
	dst = binary.AppendUvarint(dst, e.WABA)
	dst = binary.AppendUvarint(dst, e.PhoneNumberID)
	dst = binary.AppendUvarint(dst, e.Customer)
	dst = binary.AppendUvarint(dst, uint64(len(e.MessageID)))
	dst = binary.AppendUvarint(dst, uint64(len(e.MetaConversationID)))
	dst = binary.AppendUvarint(dst, uint64(len(e.MetaCategory)))
	dst = binary.AppendUvarint(dst, uint64(len(e.MetaPricingModel)))
	dst = append(dst, e.MessageID...)
	dst = append(dst, e.MetaConversationID...)
	dst = append(dst, e.MetaCategory...)
	return append(dst, e.MetaPricingModel...)
}

// Encodable reports whether ReadEvent accepts e's AppendEvent encoding: e has
// a Kind and in-range enums, as the decoders produce events.
func Encodable(e *billing.Event) bool { return validEnums(e.Kind, e.Status, e.MsgKind) }

func validEnums(kind billing.EventKind, status billing.StatusKind, msgKind billing.MsgKind) bool {
	return kind >= billing.Inbound && kind <= billing.Status && status <= billing.StatusFailed && msgKind <= billing.KindLegacy
}

// ReadEvent decodes one AppendEvent encoding, the whole of b, into e. It
// rejects an unknown format byte, out-of-range enums, truncated input and
// trailing bytes with an error wrapping ErrCorruptEvent; e is then
// unspecified. The strings set on e do not refer to b.
func ReadEvent(b []byte, e *billing.Event) error { return readEvent(b, e, false) }

// ReadEventView is ReadEvent without the copy: the strings set on e refer
// to b's bytes, and are valid only as long as b is not written to (nor
// freed for reuse). It allocates nothing: for an event that is looked at,
// or copied elsewhere whole, and dropped.
func ReadEventView(b []byte, e *billing.Event) error { return readEvent(b, e, true) }

func readEvent(b []byte, e *billing.Event, view bool) error {
	if len(b) < 5 {
		return fmt.Errorf("read event: %w: %d bytes", ErrCorruptEvent, len(b))
	}
	if b[0] != eventFormatV1 {
		return fmt.Errorf("read event: %w: unknown format %d", ErrCorruptEvent, b[0])
	}
	kind, status, msgKind, flags := billing.EventKind(b[1]), billing.StatusKind(b[2]), billing.MsgKind(b[3]), b[4]
	if !validEnums(kind, status, msgKind) || flags > 1 {
		return fmt.Errorf("read event: %w: kind %d, status %d, msg kind %d, flags %#x out of range",
			ErrCorruptEvent, kind, status, msgKind, flags)
	}
	r := reader{b: b[5:]}
	*e = billing.Event{Kind: kind, Status: status, MsgKind: msgKind, Referral: flags&1 != 0}
	e.Time = r.varint()
	e.WABA = r.uvarint()
	e.PhoneNumberID = r.uvarint()
	e.Customer = r.uvarint()
	var lens [4]uint64
	var total uint64
	for i := range lens {
		lens[i] = r.uvarint()
		if lens[i] > uint64(len(b)) {
			return fmt.Errorf("read event: %w: string of %d bytes in %d", ErrCorruptEvent, lens[i], len(b))
		}
		total += lens[i] // each at most len(b): no overflow
	}
	if r.bad {
		return fmt.Errorf("read event: %w: truncated or overlong varint", ErrCorruptEvent)
	}
	if total != uint64(len(r.b)) {
		return fmt.Errorf("read event: %w: strings of %d bytes, %d left", ErrCorruptEvent, total, len(r.b))
	}
	var all string
	switch {
	case !view:
		all = string(r.b)
	case len(r.b) > 0:
		all = unsafe.String(&r.b[0], len(r.b))
	}
	var off uint64
	next := func(n uint64) string {
		v := all[off : off+n]
		off += n
		return v
	}
	e.MessageID = next(lens[0])
	e.MetaConversationID = next(lens[1])
	e.MetaCategory = next(lens[2])
	e.MetaPricingModel = next(lens[3])
	return nil
}

// reader reads varints, remembering the first failure.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}
