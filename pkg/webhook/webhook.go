package webhook

import (
	"errors"

	"github.com/wameter/wameter/pkg/billing"
)

// Headers are the Kafka record headers of a webhook record. They key
// On-Premises payloads, which carry no phone_number_id or WABA of their own;
// Cloud API payloads ignore them.
type Headers struct {
	PhoneNumberID string // header phone_number_id
	WABA          string // header waba_id, optional
}

// DecodeWebhook appends to dst one Event per inbound message and one per
// status of one webhook POST body, and returns the extended slice. On error
// it returns dst cut back to its length on entry and an *Error: the whole
// payload is rejected (see the package comment). The events' strings are
// freshly allocated and do not refer to body.
func (d *Decoder) DecodeWebhook(body []byte, hdr Headers, dst []billing.Event) ([]billing.Event, error) {
	n0 := len(dst)
	d.reset(body)
	out, err := d.webhook(hdr, dst)
	if err == nil {
		err = d.s.end()
	}
	return d.finish(body, out, n0, err)
}

func (d *Decoder) webhook(hdr Headers, dst []billing.Event) ([]billing.Event, error) {
	s := &d.s
	if s.peek() != '{' {
		if err := s.skipValue(); err != nil {
			return dst, err
		}
		return dst, d.fail(ReasonInvalidField, "top level is not a JSON object")
	}
	if err := s.enter(); err != nil {
		return dst, err
	}
	var envelope, onPrem bool
	ids := onPremIDs{hdr: hdr}
	first := true
	for {
		key, ok, err := s.nextKey(&first)
		if err != nil || !ok {
			if err == nil && envelope && onPrem {
				err = d.fail(ReasonInvalidField, "both an entry envelope and top-level On-Premises messages or statuses")
			}
			if err == nil && !envelope && !onPrem {
				err = d.fail(ReasonNotWhatsApp, "neither object/entry nor messages/statuses: not a WhatsApp webhook")
			}
			return dst, err
		}
		switch string(key) {
		case "object":
			v, present, err := d.readString("object")
			if err != nil {
				return dst, err
			}
			if present {
				envelope = true
				if string(v) != "whatsapp_business_account" {
					return dst, d.fail(ReasonNotWhatsApp, "object is "+quote(v)+", not whatsapp_business_account")
				}
			}
		case "entry":
			envelope = true
			dst, err = d.entries(dst)
		case "messages", "statuses":
			onPrem = true
			dst, err = d.onPremItems(string(key), &ids, dst)
		case "contacts", "errors":
			onPrem = true
			err = s.skipValue()
		default:
			err = s.skipValue()
		}
		if err != nil {
			return dst, err
		}
	}
}

func (d *Decoder) entries(dst []billing.Event) ([]billing.Event, error) {
	s := &d.s
	if present, err := d.openArray("entry"); !present || err != nil {
		return dst, err
	}
	first := true
	for i := 0; ; i++ {
		ok, err := s.nextElem(&first)
		if err != nil || !ok {
			d.entry = -1
			return dst, err
		}
		d.entry = i
		if dst, err = d.entryObject(dst); err != nil {
			return dst, err
		}
	}
}

// entryObject reads one entry[]. Its id (the WABA) may follow its changes,
// so it is set on the entry's events once the entry is read.
func (d *Decoder) entryObject(dst []billing.Event) ([]billing.Event, error) {
	s := &d.s
	if present, err := d.openObject("entry"); !present || err != nil {
		return dst, err
	}
	start := len(dst)
	var waba uint64
	first := true
	for {
		key, ok, err := s.nextKey(&first)
		if err != nil {
			return dst, err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "id":
			waba, _, err = d.readID("id (WABA)", false)
		case "changes":
			dst, err = d.changes(dst)
		default:
			err = s.skipValue()
		}
		if err != nil {
			return dst, err
		}
	}
	for i := start; i < len(dst); i++ {
		dst[i].WABA = waba
	}
	return dst, nil
}

func (d *Decoder) changes(dst []billing.Event) ([]billing.Event, error) {
	s := &d.s
	if present, err := d.openArray("changes"); !present || err != nil {
		return dst, err
	}
	first := true
	for i := 0; ; i++ {
		ok, err := s.nextElem(&first)
		if err != nil || !ok {
			d.change = -1
			return dst, err
		}
		d.change = i
		if dst, err = d.changeObject(dst); err != nil {
			return dst, err
		}
	}
}

// changeObject reads one changes[]. Meta writes "field" after "value", so a
// value is decoded before it is known whether it is a messages change at
// all; its events are dropped, and an error found in it is forgiven, if the
// field turns out to be another one (account_update, ...). A missing field
// counts as messages.
func (d *Decoder) changeObject(dst []billing.Event) ([]billing.Event, error) {
	s := &d.s
	if present, err := d.openObject("change"); !present || err != nil {
		return dst, err
	}
	start, refStart := len(dst), len(d.refs)
	fieldKnown, isMessages := false, true
	var pending error // an error in the value, held until field is known
	first := true
	for {
		key, ok, err := s.nextKey(&first)
		if err != nil {
			return dst, err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "field":
			var v []byte
			var present bool
			if v, present, err = d.readString("field"); present {
				fieldKnown, isMessages = true, string(v) == "messages"
			}
		case "value":
			if fieldKnown && !isMessages {
				err = s.skipValue()
				break
			}
			valueStart, depth := s.pos, s.depth
			d.inValue = true
			dst, err = d.value(dst)
			d.inValue = false
			if err != nil && !fieldKnown && !isSyntax(err) {
				pending = err
				dst, d.refs = dst[:start], d.refs[:refStart]
				s.pos, s.depth = valueStart, depth
				err = s.skipValue()
			}
			d.section, d.item = "", -1
		default:
			err = s.skipValue()
		}
		if err != nil {
			return dst, err
		}
	}
	if !isMessages {
		d.refs = d.refs[:refStart]
		return dst[:start], nil
	}
	return dst, pending
}

func isSyntax(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Reason == ReasonInvalidJSON
}

// value reads a change's value. Its metadata may follow its messages and
// statuses, so the phone_number_id is set on its events at the end.
func (d *Decoder) value(dst []billing.Event) ([]billing.Event, error) {
	s := &d.s
	if present, err := d.openObject("value"); !present || err != nil {
		return dst, err
	}
	start := len(dst)
	var phoneID uint64
	first := true
	for {
		key, ok, err := s.nextKey(&first)
		if err != nil {
			return dst, err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "messaging_product":
			var v []byte
			var present bool
			if v, present, err = d.readString("messaging_product"); present && string(v) != "whatsapp" {
				err = d.fail(ReasonNotWhatsApp, "messaging_product is "+quote(v)+", not whatsapp")
			}
		case "metadata":
			d.section = "metadata"
			phoneID, err = d.metadata()
			d.section = ""
		case "messages":
			d.section = "messages"
			dst, err = d.items(dst, false, nil)
			d.section = ""
		case "statuses":
			d.section = "statuses"
			dst, err = d.items(dst, true, nil)
			d.section = ""
		default:
			err = s.skipValue()
		}
		if err != nil {
			return dst, err
		}
	}
	if len(dst) > start && phoneID == 0 {
		return dst, d.fail(ReasonMissingPhoneNumberID, "messages or statuses without metadata.phone_number_id")
	}
	for i := start; i < len(dst); i++ {
		dst[i].PhoneNumberID = phoneID
	}
	return dst, nil
}

func (d *Decoder) metadata() (uint64, error) {
	s := &d.s
	if present, err := d.openObject("metadata"); !present || err != nil {
		return 0, err
	}
	var phoneID uint64
	first := true
	for {
		key, ok, err := s.nextKey(&first)
		if err != nil || !ok {
			return phoneID, err
		}
		if string(key) == "phone_number_id" {
			phoneID, _, err = d.readID("phone_number_id", true)
		} else {
			err = s.skipValue()
		}
		if err != nil {
			return 0, err
		}
	}
}

// onPremIDs are the ids of an On-Premises payload, from the record headers.
// They are parsed at its first message or status, so that a payload with
// none (only contacts or errors) needs no header.
type onPremIDs struct {
	hdr           Headers
	parsed        bool
	phoneID, waba uint64
}

func (d *Decoder) onPremItems(section string, ids *onPremIDs, dst []billing.Event) ([]billing.Event, error) {
	d.section = section
	dst, err := d.items(dst, section == "statuses", ids)
	d.section = ""
	return dst, err
}

func (d *Decoder) headerIDs(ids *onPremIDs) error {
	hdr := &ids.hdr
	if hdr.PhoneNumberID == "" {
		return d.fail(ReasonMissingPhoneNumberID, "On-Premises payload (no entry envelope) and no phone_number_id record header")
	}
	phoneID, ok := parseID([]byte(hdr.PhoneNumberID))
	if !ok || phoneID == 0 {
		return d.fail(ReasonInvalidID, "phone_number_id header "+quote([]byte(hdr.PhoneNumberID))+" is not a numeric id")
	}
	var waba uint64
	if hdr.WABA != "" {
		if waba, ok = parseID([]byte(hdr.WABA)); !ok {
			return d.fail(ReasonInvalidID, "waba_id header "+quote([]byte(hdr.WABA))+" is not a numeric id")
		}
	}
	ids.parsed, ids.phoneID, ids.waba = true, phoneID, waba
	return nil
}

// items reads a messages[] or statuses[] array. Inside an envelope (onPrem
// nil) the callers set the events' ids once they are known.
func (d *Decoder) items(dst []billing.Event, statuses bool, onPrem *onPremIDs) ([]billing.Event, error) {
	s := &d.s
	if present, err := d.openArray(d.section); !present || err != nil {
		return dst, err
	}
	first := true
	for i := 0; ; i++ {
		ok, err := s.nextElem(&first)
		if err != nil || !ok {
			d.item = -1
			return dst, err
		}
		d.item = i
		if onPrem != nil && !onPrem.parsed {
			if err := d.headerIDs(onPrem); err != nil {
				return dst, err
			}
		}
		var e billing.Event
		if statuses {
			err = d.status(&e, len(dst))
		} else {
			err = d.message(&e, len(dst))
		}
		if err != nil {
			return dst, err
		}
		if onPrem != nil {
			e.PhoneNumberID, e.WABA = onPrem.phoneID, onPrem.waba
		}
		dst = append(dst, e)
	}
}

// message reads one inbound message into e, which will be dst[index].
func (d *Decoder) message(e *billing.Event, index int) error {
	s := &d.s
	present, err := d.openObject("message")
	if err != nil {
		return err
	}
	if !present {
		return d.fail(ReasonInvalidField, "message is null")
	}
	e.Kind = billing.Inbound
	var hasID, hasFrom, hasTime bool
	first := true
	for {
		key, ok, err := s.nextKey(&first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "id":
			var v []byte
			if v, hasID, err = d.readString("id"); hasID {
				hasID = len(v) > 0
				d.stash(index, fieldMessageID, v)
			}
		case "from":
			e.Customer, hasFrom, err = d.readID("from", true)
		case "timestamp":
			e.Time, hasTime, err = d.readTime("timestamp")
		case "referral":
			// Any referral object marks a free entry point candidate,
			// whatever its source_type (spec 1.1).
			e.Referral, err = d.skipObject("referral")
		default:
			err = s.skipValue()
		}
		if err != nil {
			return err
		}
	}
	switch {
	case !hasID:
		return d.fail(ReasonMissingField, "missing id")
	case !hasFrom:
		return d.fail(ReasonMissingField, "missing from")
	case !hasTime:
		return d.fail(ReasonMissingTimestamp, "missing timestamp")
	}
	return nil
}

// status reads one status into e, which will be dst[index].
func (d *Decoder) status(e *billing.Event, index int) error {
	s := &d.s
	present, err := d.openObject("status")
	if err != nil {
		return err
	}
	if !present {
		return d.fail(ReasonInvalidField, "status is null")
	}
	e.Kind = billing.Status
	var hasID, hasStatus, hasRecipient, hasTime bool
	first := true
	for {
		key, ok, err := s.nextKey(&first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "id":
			var v []byte
			if v, hasID, err = d.readString("id"); hasID {
				hasID = len(v) > 0
				d.stash(index, fieldMessageID, v)
			}
		case "status":
			var v []byte
			if v, hasStatus, err = d.readString("status"); hasStatus {
				hasStatus = len(v) > 0
				e.Status = statusKind(v)
			}
		case "recipient_id":
			e.Customer, hasRecipient, err = d.readID("recipient_id", true)
		case "timestamp":
			e.Time, hasTime, err = d.readTime("timestamp")
		case "conversation":
			err = d.conversation(index)
		case "pricing":
			err = d.pricing(e, index)
		default:
			err = s.skipValue()
		}
		if err != nil {
			return err
		}
	}
	switch {
	case !hasID:
		return d.fail(ReasonMissingField, "missing id")
	case !hasStatus:
		return d.fail(ReasonMissingField, "missing status")
	case !hasRecipient:
		return d.fail(ReasonMissingField, "missing recipient_id")
	case !hasTime:
		return d.fail(ReasonMissingTimestamp, "missing timestamp")
	}
	return nil
}

func (d *Decoder) conversation(index int) error {
	s := &d.s
	if present, err := d.openObject("conversation"); !present || err != nil {
		return err
	}
	first := true
	for {
		key, ok, err := s.nextKey(&first)
		if err != nil || !ok {
			return err
		}
		if string(key) == "id" {
			var v []byte
			var present bool
			if v, present, err = d.readString("conversation.id"); present {
				d.stash(index, fieldConversationID, v)
			}
		} else {
			err = s.skipValue()
		}
		if err != nil {
			return err
		}
	}
}

func (d *Decoder) pricing(e *billing.Event, index int) error {
	s := &d.s
	if present, err := d.openObject("pricing"); !present || err != nil {
		return err
	}
	first := true
	for {
		key, ok, err := s.nextKey(&first)
		if err != nil || !ok {
			return err
		}
		var v []byte
		var present bool
		switch string(key) {
		case "pricing_model":
			if v, present, err = d.readString("pricing.pricing_model"); present {
				d.stash(index, fieldPricingModel, v)
			}
		case "category":
			if v, present, err = d.readString("pricing.category"); present {
				d.catBuf = normalizeCategory(d.catBuf, v)
				e.MsgKind = pricingCategory(d.catBuf)
				d.stash(index, fieldCategory, d.catBuf)
			}
		default:
			err = s.skipValue()
		}
		if err != nil {
			return err
		}
	}
}
