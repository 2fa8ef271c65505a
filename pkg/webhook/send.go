package webhook

import (
	"github.com/wameter/wameter/pkg/billing"
)

// DecodeSend appends to dst the Send event of one send record (spec 1.1):
//
//	{"message_id": "wamid...", "waba_id": "1029...", "phone_number_id": "1065...",
//	 "to": "+1 650-555-1234", "timestamp": "1750030073", "type": "template",
//	 "template": {"name": "order_update", "language": "en_US", "category": "UTILITY"}}
//
// MsgKind comes from template.category (case-insensitive MARKETING, UTILITY,
// AUTHENTICATION, AUTHENTICATION_INTERNATIONAL) when type is template, and is
// KindNonTemplate for any other type. waba_id is optional; message_id,
// phone_number_id, to, timestamp and type are required. On error it returns
// dst unchanged and an *Error.
func (d *Decoder) DecodeSend(body []byte, dst []billing.Event) ([]billing.Event, error) {
	n0 := len(dst)
	d.reset(body)
	out, err := d.send(dst)
	if err == nil {
		err = d.s.end()
	}
	return d.finish(body, out, n0, err)
}

func (d *Decoder) send(dst []billing.Event) ([]billing.Event, error) {
	s := &d.s
	if s.peek() != '{' {
		if err := s.skipValue(); err != nil {
			return dst, err
		}
		return dst, d.fail(ReasonInvalidField, "send record is not a JSON object")
	}
	if err := s.enter(); err != nil {
		return dst, err
	}
	e := billing.Event{Kind: billing.Send}
	index := len(dst)
	var hasID, hasPhone, hasTo, hasTime, hasType, isTemplate bool
	var hasTemplate, hasCategory bool
	first := true
	for {
		key, ok, err := s.nextKey(&first)
		if err != nil {
			return dst, err
		}
		if !ok {
			break
		}
		var v []byte
		switch string(key) {
		case "message_id":
			if v, hasID, err = d.readString("message_id"); hasID {
				hasID = len(v) > 0
				d.stash(index, fieldMessageID, v)
			}
		case "waba_id":
			e.WABA, _, err = d.readID("waba_id", false)
		case "phone_number_id":
			e.PhoneNumberID, hasPhone, err = d.readID("phone_number_id", true)
		case "to":
			e.Customer, hasTo, err = d.readPhone("to")
		case "timestamp":
			e.Time, hasTime, err = d.readTime("timestamp")
		case "type":
			if v, hasType, err = d.readString("type"); hasType {
				hasType = len(v) > 0
				isTemplate = asciiEqualFold(v, "template")
			}
		case "template":
			hasTemplate, hasCategory, err = d.template(&e)
		default:
			err = s.skipValue()
		}
		if err != nil {
			return dst, err
		}
	}
	switch {
	case !hasID:
		return dst, d.fail(ReasonMissingField, "missing message_id")
	case !hasPhone:
		return dst, d.fail(ReasonMissingPhoneNumberID, "missing phone_number_id")
	case !hasTo:
		return dst, d.fail(ReasonMissingField, "missing to")
	case !hasTime:
		return dst, d.fail(ReasonMissingTimestamp, "missing timestamp")
	case !hasType:
		return dst, d.fail(ReasonMissingField, "missing type")
	case !isTemplate:
		e.MsgKind = billing.KindNonTemplate
	case !hasTemplate:
		return dst, d.fail(ReasonMissingField, "type template without template")
	case !hasCategory:
		return dst, d.fail(ReasonMissingField, "missing template.category")
	case e.MsgKind == billing.KindUnknown:
		return dst, d.fail(ReasonUnknownCategory, "template.category "+quote(d.catBuf)+" is not a template category")
	}
	return append(dst, e), nil
}

// template reads the template object, setting e.MsgKind from its category
// (KindUnknown for an unknown one; d.catBuf keeps it for the error).
func (d *Decoder) template(e *billing.Event) (present, hasCategory bool, err error) {
	s := &d.s
	if present, err = d.openObject("template"); !present || err != nil {
		return present, false, err
	}
	first := true
	for {
		key, ok, err := s.nextKey(&first)
		if err != nil || !ok {
			return true, hasCategory, err
		}
		if string(key) == "category" {
			var v []byte
			if v, hasCategory, err = d.readString("template.category"); hasCategory {
				hasCategory = len(v) > 0
				d.catBuf = normalizeCategory(d.catBuf, v)
				e.MsgKind, _ = templateCategory(d.catBuf)
			}
		} else {
			err = s.skipValue()
		}
		if err != nil {
			return true, hasCategory, err
		}
	}
}

// readPhone reads a customer phone number as a BSP writes it: a string of
// digits with any '+', spaces, dashes and parentheses, or a number.
func (d *Decoder) readPhone(name string) (id uint64, present bool, err error) {
	s := &d.s
	if s.peek() != '"' {
		return d.readID(name, true)
	}
	v, err := s.stringValue()
	if err != nil {
		return 0, false, err
	}
	digits, ok := appendPhoneDigits(d.phoneBuf[:0], v)
	d.phoneBuf = digits
	if ok {
		id, ok = parseID(digits)
	}
	if !ok || id == 0 {
		return 0, false, d.fail(ReasonInvalidID, name+" "+quote(v)+" is not a phone number")
	}
	return id, true, nil
}

// asciiEqualFold reports whether b equals the lower-case ASCII word,
// ignoring ASCII case.
func asciiEqualFold(b []byte, word string) bool {
	if len(b) != len(word) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != word[i] {
			return false
		}
	}
	return true
}
