// Package wire is the format of the internal units topic between the window
// and the account stages: billing units, each stamped with the window
// partition that emitted it and its sequence number there, and watermark
// control records.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/wameter/wameter/pkg/billing"
)

const version = 1

const (
	kindUnit      = 'U'
	kindWatermark = 'W'
)

// Idle is the watermark of a window partition that has nothing buffered and
// has been quiet for the idle flush interval: the account stage does not
// wait for it.
const Idle = math.MaxInt64

// Record is one decoded record of the units topic.
type Record struct {
	// Source is the window partition that wrote it.
	Source int32
	// IsWatermark: the record is a control record; Watermark is set.
	IsWatermark bool
	Watermark   int64
	// Seq numbers the units of one source, strictly increasing and the
	// same when a source replays after a restart.
	Seq  uint64
	Unit billing.Unit
}

// AppendUnit appends a unit record.
func AppendUnit(dst []byte, src int32, seq uint64, u *billing.Unit) []byte {
	dst = append(dst, version, kindUnit)
	dst = binary.AppendUvarint(dst, uint64(src))
	dst = binary.AppendUvarint(dst, seq)
	dst = binary.AppendUvarint(dst, u.WABA)
	dst = binary.AppendUvarint(dst, u.PhoneNumberID)
	dst = binary.AppendUvarint(dst, u.Customer)
	dst = appendString(dst, u.Market)
	dst = append(dst, byte(u.Category), byte(u.Model), byte(u.RuleSet), byte(u.PricingType), byte(u.BillingUnit), byte(u.ConversationCategory))
	dst = binary.AppendVarint(dst, u.ChargedAt)
	dst = binary.AppendVarint(dst, u.ConversationOpenedAt)
	dst = appendString(dst, u.MessageID)
	dst = appendString(dst, u.MetaConversationID)
	dst = appendString(dst, u.MetaCategory)
	dst = appendString(dst, u.MetaPricingModel)
	return dst
}

// AppendWatermark appends a control record: source has released every
// event up to and including watermark (or is Idle).
func AppendWatermark(dst []byte, src int32, watermark int64) []byte {
	dst = append(dst, version, kindWatermark)
	dst = binary.AppendUvarint(dst, uint64(src))
	return binary.AppendVarint(dst, watermark)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

var errTruncated = errors.New("units record truncated")

// Read decodes one record into r. It never panics on garbage.
func Read(b []byte, r *Record) error {
	if len(b) < 2 {
		return errTruncated
	}
	if b[0] != version {
		return fmt.Errorf("units record version %d: unsupported", b[0])
	}
	kind := b[1]
	d := decoder{b: b[2:]}
	*r = Record{}
	src := d.uvarint()
	if src > math.MaxInt32 {
		return fmt.Errorf("units record source %d out of range", src)
	}
	r.Source = int32(src)
	switch kind {
	case kindWatermark:
		r.IsWatermark = true
		r.Watermark = d.varint()
	case kindUnit:
		r.Seq = d.uvarint()
		u := &r.Unit
		u.WABA = d.uvarint()
		u.PhoneNumberID = d.uvarint()
		u.Customer = d.uvarint()
		u.Market = d.str()
		u.Category = billing.Category(d.byte())
		u.Model = billing.Model(d.byte())
		u.RuleSet = billing.RuleSet(d.byte())
		u.PricingType = billing.PricingType(d.byte())
		u.BillingUnit = billing.BillingUnit(d.byte())
		u.ConversationCategory = billing.Category(d.byte())
		u.ChargedAt = d.varint()
		u.ConversationOpenedAt = d.varint()
		u.MessageID = d.str()
		u.MetaConversationID = d.str()
		u.MetaCategory = d.str()
		u.MetaPricingModel = d.str()
	default:
		return fmt.Errorf("units record kind %q: unknown", kind)
	}
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("units record has %d trailing bytes", len(d.b))
	}
	return nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = errTruncated
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errTruncated
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
