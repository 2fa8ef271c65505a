package webhook

import (
	"errors"
	"strconv"
	"sync"

	"github.com/wameter/wameter/pkg/billing"
)

// Decoder decodes webhook bodies and send records into billing.Events,
// reusing its scratch buffers from one call to the next. The zero value is
// ready to use. A Decoder is not safe for concurrent use: give each goroutine
// its own (the package-level functions take one from a pool).
type Decoder struct {
	s scanner

	// The strings of one call's events are gathered in arena and made into
	// one string at the end, so a payload costs one allocation for all its
	// message and conversation ids, however many statuses it holds.
	arena []byte
	refs  []strRef

	catBuf   []byte
	phoneBuf []byte

	// Where the reader is, for error paths only: indexes are -1 outside.
	entry, change, item int
	inValue             bool // inside changes[change].value
	section             string
}

type strField uint8

const (
	fieldMessageID strField = iota
	fieldConversationID
	fieldCategory
	fieldPricingModel
)

// strRef says that dst[event].<field> is arena[off:end].
type strRef struct {
	event    int
	field    strField
	off, end int
}

var decoders = sync.Pool{New: func() any { return new(Decoder) }}

// DecodeWebhook is Decoder.DecodeWebhook with a pooled Decoder; safe for
// concurrent use.
func DecodeWebhook(body []byte, hdr Headers, dst []billing.Event) ([]billing.Event, error) {
	d := decoders.Get().(*Decoder)
	dst, err := d.DecodeWebhook(body, hdr, dst)
	decoders.Put(d)
	return dst, err
}

// DecodeSend is Decoder.DecodeSend with a pooled Decoder; safe for
// concurrent use.
func DecodeSend(body []byte, dst []billing.Event) ([]billing.Event, error) {
	d := decoders.Get().(*Decoder)
	dst, err := d.DecodeSend(body, dst)
	decoders.Put(d)
	return dst, err
}

func (d *Decoder) reset(body []byte) {
	d.s.reset(body)
	d.arena = d.arena[:0]
	d.refs = d.refs[:0]
	d.entry, d.change, d.item = -1, -1, -1
	d.inValue, d.section = false, ""
}

// finish turns a decode result into what the caller gets: on success the
// arena strings are set on their events; on failure dst is cut back to its
// length on entry and the error is the first syntax error if the body is not
// valid JSON at all, so that invalid_json never hides behind another reason.
func (d *Decoder) finish(body []byte, dst []billing.Event, n0 int, err error) ([]billing.Event, error) {
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Reason != ReasonInvalidJSON {
			if verr := valid(body); verr != nil {
				err = verr
			}
		}
		// Drop references into body held by the scratch buffers' users.
		d.s.buf = nil
		return dst[:n0], err
	}
	d.s.buf = nil
	if len(d.refs) == 0 {
		return dst, nil
	}
	all := string(d.arena)
	for _, r := range d.refs {
		v := all[r.off:r.end]
		e := &dst[r.event]
		switch r.field {
		case fieldMessageID:
			e.MessageID = v
		case fieldConversationID:
			e.MetaConversationID = v
		case fieldCategory:
			e.MetaCategory = v
		case fieldPricingModel:
			e.MetaPricingModel = v
		}
	}
	return dst, nil
}

// stash records that event's field is v, set when the call succeeds.
func (d *Decoder) stash(event int, field strField, v []byte) {
	off := len(d.arena)
	d.arena = append(d.arena, v...)
	d.refs = append(d.refs, strRef{event: event, field: field, off: off, end: len(d.arena)})
}

// path says where the reader is, e.g. "entry[0].changes[1].value.statuses[3]".
// Built only for errors.
func (d *Decoder) path() string {
	var b []byte
	if d.entry >= 0 {
		b = append(b, "entry["...)
		b = strconv.AppendInt(b, int64(d.entry), 10)
		b = append(b, ']')
		if d.change >= 0 {
			b = append(b, ".changes["...)
			b = strconv.AppendInt(b, int64(d.change), 10)
			b = append(b, ']')
			if d.inValue {
				b = append(b, ".value"...)
			}
		}
	}
	if d.section != "" {
		if len(b) > 0 {
			b = append(b, '.')
		}
		b = append(b, d.section...)
		if d.item >= 0 {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(d.item), 10)
			b = append(b, ']')
		}
	}
	return string(b)
}

func (d *Decoder) fail(reason Reason, msg string) error {
	return &Error{Reason: reason, Path: d.path(), Msg: msg}
}

// quote quotes a field value for an error message, cut short so that a
// dead-letter header stays small.
func quote(v []byte) string {
	const max = 40
	if len(v) > max {
		return strconv.Quote(string(v[:max])) + "..."
	}
	return strconv.Quote(string(v))
}

// readID reads a numeric id given as a string or a number. present is false
// for null. With nonzero, "0" is rejected too (only a WABA may be unknown).
func (d *Decoder) readID(name string, nonzero bool) (id uint64, present bool, err error) {
	s := &d.s
	var v []byte
	switch c := s.peek(); {
	case c == '"':
		v, err = s.stringValue()
	case c == '-' || isDigit(c):
		v, err = s.readNumber()
	case c == 'n':
		return 0, false, s.literal("null")
	default:
		if err := s.skipValue(); err != nil {
			return 0, false, err
		}
		return 0, false, d.fail(ReasonInvalidID, name+" is not a string")
	}
	if err != nil {
		return 0, false, err
	}
	id, ok := parseID(v)
	if !ok || nonzero && id == 0 {
		return 0, false, d.fail(ReasonInvalidID, name+" "+quote(v)+" is not a numeric id")
	}
	return id, true, nil
}

// readTime reads Unix seconds given as a string or a number. present is
// false for null.
func (d *Decoder) readTime(name string) (t int64, present bool, err error) {
	s := &d.s
	var v []byte
	switch c := s.peek(); {
	case c == '"':
		v, err = s.stringValue()
	case c == '-' || isDigit(c):
		v, err = s.readNumber()
	case c == 'n':
		return 0, false, s.literal("null")
	default:
		if err := s.skipValue(); err != nil {
			return 0, false, err
		}
		return 0, false, d.fail(ReasonInvalidTimestamp, name+" is neither a string nor a number")
	}
	if err != nil {
		return 0, false, err
	}
	t, ok := parseSeconds(v)
	if !ok {
		return 0, false, d.fail(ReasonInvalidTimestamp, name+" "+quote(v)+" is not Unix seconds between 1970 and 2100")
	}
	return t, true, nil
}

// readString reads a string value, valid until the next read. present is
// false for null.
func (d *Decoder) readString(name string) (v []byte, present bool, err error) {
	s := &d.s
	switch s.peek() {
	case '"':
		v, err = s.stringValue()
		return v, err == nil, err
	case 'n':
		return nil, false, s.literal("null")
	}
	if err := s.skipValue(); err != nil {
		return nil, false, err
	}
	return nil, false, d.fail(ReasonInvalidField, name+" is not a string")
}

// skipObject skips an object value. present is false for null.
func (d *Decoder) skipObject(name string) (present bool, err error) {
	s := &d.s
	switch s.peek() {
	case '{':
		return true, s.skipValue()
	case 'n':
		return false, s.literal("null")
	}
	if err := s.skipValue(); err != nil {
		return false, err
	}
	return false, d.fail(ReasonInvalidField, name+" is not an object")
}

// openObject consumes the '{' of an object value. present is false for null.
func (d *Decoder) openObject(name string) (present bool, err error) {
	return d.open(name, '{', " is not an object")
}

// openArray consumes the '[' of an array value. present is false for null.
func (d *Decoder) openArray(name string) (present bool, err error) {
	return d.open(name, '[', " is not an array")
}

func (d *Decoder) open(name string, want byte, notWhat string) (bool, error) {
	s := &d.s
	switch s.peek() {
	case want:
		return true, s.enter()
	case 'n':
		return false, s.literal("null")
	}
	if err := s.skipValue(); err != nil {
		return false, err
	}
	return false, d.fail(ReasonInvalidField, name+notWhat)
}
