package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/wameter/wameter/pkg/billing"
)

// This file is a second, slow and obvious implementation of the decoders on
// top of encoding/json, for differential tests: it shares with the real one
// only the field parsers (parseID, parseSeconds, the category maps), not
// the JSON reading, key order handling or null handling.

// refFail is a rejection by the reference decoder.
type refFail struct{ reason Reason }

func (f refFail) Error() string { return string(f.reason) }

func refParse(body []byte) (map[string]any, error) {
	if !json.Valid(body) {
		return nil, refFail{ReasonInvalidJSON}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		panic(err) // json.Valid said it was valid
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, refFail{ReasonInvalidField}
	}
	return top, nil
}

// refString: absent or null is not present; another type is invalid_field.
func refString(m map[string]any, key string) (string, bool, error) {
	switch v := m[key].(type) {
	case nil:
		return "", false, nil
	case string:
		return v, true, nil
	}
	return "", false, refFail{ReasonInvalidField}
}

func refObject(m map[string]any, key string) (map[string]any, error) {
	switch v := m[key].(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return v, nil
	}
	return nil, refFail{ReasonInvalidField}
}

func refArray(m map[string]any, key string) ([]any, error) {
	switch v := m[key].(type) {
	case nil:
		return nil, nil
	case []any:
		return v, nil
	}
	return nil, refFail{ReasonInvalidField}
}

func refScalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return string(v), true
	}
	return "", false
}

func refID(m map[string]any, key string, nonzero bool) (uint64, bool, error) {
	v := m[key]
	if v == nil {
		return 0, false, nil
	}
	s, ok := refScalar(v)
	if !ok {
		return 0, false, refFail{ReasonInvalidID}
	}
	id, ok := parseID([]byte(s))
	if !ok || nonzero && id == 0 {
		return 0, false, refFail{ReasonInvalidID}
	}
	return id, true, nil
}

func refTime(m map[string]any) (int64, error) {
	v := m["timestamp"]
	if v == nil {
		return 0, refFail{ReasonMissingTimestamp}
	}
	s, ok := refScalar(v)
	if !ok {
		return 0, refFail{ReasonInvalidTimestamp}
	}
	t, ok := parseSeconds([]byte(s))
	if !ok {
		return 0, refFail{ReasonInvalidTimestamp}
	}
	return t, nil
}

func refDecodeWebhook(body []byte, hdr Headers) ([]billing.Event, error) {
	top, err := refParse(body)
	if err != nil {
		return nil, err
	}
	_, hasEntry := top["entry"]
	object, hasObject, err := refString(top, "object")
	if err != nil {
		return nil, err
	}
	if hasObject && object != "whatsapp_business_account" {
		return nil, refFail{ReasonNotWhatsApp}
	}
	envelope := hasEntry || hasObject
	onPrem := false
	for _, k := range []string{"messages", "statuses", "contacts", "errors"} {
		if _, ok := top[k]; ok {
			onPrem = true
		}
	}
	switch {
	case envelope && onPrem:
		return nil, refFail{ReasonInvalidField}
	case onPrem:
		return refOnPrem(top, hdr)
	case !envelope:
		return nil, refFail{ReasonNotWhatsApp}
	}
	entries, err := refArray(top, "entry")
	if err != nil {
		return nil, err
	}
	var events []billing.Event
	for _, ev := range entries {
		if ev == nil {
			continue
		}
		entry, ok := ev.(map[string]any)
		if !ok {
			return nil, refFail{ReasonInvalidField}
		}
		waba, _, err := refID(entry, "id", false)
		if err != nil {
			return nil, err
		}
		changes, err := refArray(entry, "changes")
		if err != nil {
			return nil, err
		}
		for _, cv := range changes {
			if cv == nil {
				continue
			}
			change, ok := cv.(map[string]any)
			if !ok {
				return nil, refFail{ReasonInvalidField}
			}
			field, hasField, err := refString(change, "field")
			if err != nil {
				return nil, err
			}
			if hasField && field != "messages" {
				continue
			}
			value, err := refObject(change, "value")
			if err != nil || value == nil {
				if err != nil {
					return nil, err
				}
				continue
			}
			product, hasProduct, err := refString(value, "messaging_product")
			if err != nil {
				return nil, err
			}
			if hasProduct && product != "whatsapp" {
				return nil, refFail{ReasonNotWhatsApp}
			}
			meta, err := refObject(value, "metadata")
			if err != nil {
				return nil, err
			}
			var phoneID uint64
			if meta != nil {
				if phoneID, _, err = refID(meta, "phone_number_id", true); err != nil {
					return nil, err
				}
			}
			items, err := refItems(value)
			if err != nil {
				return nil, err
			}
			if len(items) > 0 && phoneID == 0 {
				return nil, refFail{ReasonMissingPhoneNumberID}
			}
			for i := range items {
				items[i].WABA, items[i].PhoneNumberID = waba, phoneID
			}
			events = append(events, items...)
		}
	}
	return events, nil
}

func refOnPrem(top map[string]any, hdr Headers) ([]billing.Event, error) {
	items, err := refItems(top)
	if err != nil || len(items) == 0 {
		return nil, err
	}
	if hdr.PhoneNumberID == "" {
		return nil, refFail{ReasonMissingPhoneNumberID}
	}
	phoneID, ok := parseID([]byte(hdr.PhoneNumberID))
	if !ok || phoneID == 0 {
		return nil, refFail{ReasonInvalidID}
	}
	var waba uint64
	if hdr.WABA != "" {
		if waba, ok = parseID([]byte(hdr.WABA)); !ok {
			return nil, refFail{ReasonInvalidID}
		}
	}
	for i := range items {
		items[i].WABA, items[i].PhoneNumberID = waba, phoneID
	}
	return items, nil
}

// refItems decodes m's messages and statuses. It reports a missing header
// as the real decoder does, at the first item, by returning the items and
// leaving the header to the caller.
func refItems(m map[string]any) ([]billing.Event, error) {
	var events []billing.Event
	messages, err := refArray(m, "messages")
	if err != nil {
		return nil, err
	}
	for _, v := range messages {
		msg, ok := v.(map[string]any)
		if !ok {
			return nil, refFail{ReasonInvalidField}
		}
		e := billing.Event{Kind: billing.Inbound}
		id, hasID, err := refString(msg, "id")
		if err != nil {
			return nil, err
		}
		e.MessageID = id
		var hasFrom bool
		if e.Customer, hasFrom, err = refID(msg, "from", true); err != nil {
			return nil, err
		}
		var timeErr error
		e.Time, timeErr = refTime(msg)
		if timeErr != nil && !errors.Is(timeErr, refFail{ReasonMissingTimestamp}) {
			return nil, timeErr
		}
		referral, err := refObject(msg, "referral")
		if err != nil {
			return nil, err
		}
		e.Referral = referral != nil
		switch {
		case !hasID || id == "", !hasFrom:
			return nil, refFail{ReasonMissingField}
		case timeErr != nil:
			return nil, timeErr
		}
		events = append(events, e)
	}
	statuses, err := refArray(m, "statuses")
	if err != nil {
		return nil, err
	}
	for _, v := range statuses {
		st, ok := v.(map[string]any)
		if !ok {
			return nil, refFail{ReasonInvalidField}
		}
		e := billing.Event{Kind: billing.Status}
		id, hasID, err := refString(st, "id")
		if err != nil {
			return nil, err
		}
		e.MessageID = id
		statusName, hasStatus, err := refString(st, "status")
		if err != nil {
			return nil, err
		}
		e.Status = statusKind([]byte(statusName))
		var hasRecipient bool
		if e.Customer, hasRecipient, err = refID(st, "recipient_id", true); err != nil {
			return nil, err
		}
		var timeErr error
		e.Time, timeErr = refTime(st)
		if timeErr != nil && !errors.Is(timeErr, refFail{ReasonMissingTimestamp}) {
			return nil, timeErr
		}
		conv, err := refObject(st, "conversation")
		if err != nil {
			return nil, err
		}
		if conv != nil {
			if e.MetaConversationID, _, err = refString(conv, "id"); err != nil {
				return nil, err
			}
		}
		pricing, err := refObject(st, "pricing")
		if err != nil {
			return nil, err
		}
		if pricing != nil {
			if e.MetaPricingModel, _, err = refString(pricing, "pricing_model"); err != nil {
				return nil, err
			}
			category, _, err := refString(pricing, "category")
			if err != nil {
				return nil, err
			}
			e.MetaCategory = strings.ReplaceAll(asciiLower(category), "-", "_")
			e.MsgKind = pricingCategory([]byte(e.MetaCategory))
		}
		switch {
		case !hasID || id == "", !hasStatus || statusName == "", !hasRecipient:
			return nil, refFail{ReasonMissingField}
		case timeErr != nil:
			return nil, timeErr
		}
		events = append(events, e)
	}
	return events, nil
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func refDecodeSend(body []byte) ([]billing.Event, error) {
	m, err := refParse(body)
	if err != nil {
		return nil, err
	}
	e := billing.Event{Kind: billing.Send}
	id, _, err := refString(m, "message_id")
	if err != nil {
		return nil, err
	}
	e.MessageID = id
	if e.WABA, _, err = refID(m, "waba_id", false); err != nil {
		return nil, err
	}
	var hasPhone bool
	if e.PhoneNumberID, hasPhone, err = refID(m, "phone_number_id", true); err != nil {
		return nil, err
	}
	var hasTo bool
	if to, ok := m["to"].(string); ok {
		var digits []byte
		digits, ok = appendPhoneDigits(nil, []byte(to))
		if ok {
			e.Customer, ok = parseID(digits)
		}
		if !ok || e.Customer == 0 {
			return nil, refFail{ReasonInvalidID}
		}
		hasTo = true
	} else if e.Customer, hasTo, err = refID(m, "to", true); err != nil {
		return nil, err
	}
	var timeErr error
	e.Time, timeErr = refTime(m)
	if timeErr != nil && !errors.Is(timeErr, refFail{ReasonMissingTimestamp}) {
		return nil, timeErr
	}
	typ, _, err := refString(m, "type")
	if err != nil {
		return nil, err
	}
	tmpl, err := refObject(m, "template")
	if err != nil {
		return nil, err
	}
	var category string
	if tmpl != nil {
		if category, _, err = refString(tmpl, "category"); err != nil {
			return nil, err
		}
	}
	switch {
	case id == "":
		return nil, refFail{ReasonMissingField}
	case !hasPhone:
		return nil, refFail{ReasonMissingPhoneNumberID}
	case !hasTo:
		return nil, refFail{ReasonMissingField}
	case timeErr != nil:
		return nil, timeErr
	case typ == "":
		return nil, refFail{ReasonMissingField}
	case asciiLower(typ) != "template":
		e.MsgKind = billing.KindNonTemplate
	case tmpl == nil || category == "":
		return nil, refFail{ReasonMissingField}
	default:
		kind, ok := templateCategory([]byte(strings.ReplaceAll(asciiLower(category), "-", "_")))
		if !ok {
			return nil, refFail{ReasonUnknownCategory}
		}
		e.MsgKind = kind
	}
	return []billing.Event{e}, nil
}

// hasDuplicateKeys reports whether any object in a valid body repeats a
// key. On such bodies encoding/json's maps keep the last value while the
// streaming decoder may also have used the first, so they are compared for
// validity only.
func hasDuplicateKeys(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	var walk func() bool
	walk = func() bool {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				key, _ := dec.Token()
				k, _ := key.(string)
				if seen[k] {
					return true
				}
				seen[k] = true
				if walk() {
					return true
				}
			}
			_, _ = dec.Token()
		case json.Delim('['):
			for dec.More() {
				if walk() {
					return true
				}
			}
			_, _ = dec.Token()
		}
		return false
	}
	dup := walk()
	if _, err := dec.Token(); err != io.EOF {
		return true // not a single value: compare validity only
	}
	return dup
}

func eventKey(e billing.Event) string { return fmt.Sprintf("%+v", e) }

// checkAgainstReference compares a decoder result with the reference's.
func checkAgainstReference(t *testing.T, body []byte, got []billing.Event, err error, want []billing.Event, refErr error) {
	t.Helper()
	var e *Error
	if err != nil && !errors.As(err, &e) {
		t.Fatalf("error is not an *Error: %T %v", err, err)
	}
	if err != nil && len(got) != 0 {
		t.Fatalf("%d events returned with error %v", len(got), err)
	}
	var rf refFail
	refInvalid := errors.As(refErr, &rf) && rf.reason == ReasonInvalidJSON
	if (err != nil && e.Reason == ReasonInvalidJSON) != refInvalid {
		t.Fatalf("validity disagrees with encoding/json: err %v, json.Valid %v\nbody %q", err, !refInvalid, body)
	}
	if refInvalid || hasDuplicateKeys(body) {
		return
	}
	if (err == nil) != (refErr == nil) {
		t.Fatalf("decoder err %v, reference err %v\nbody %q", err, refErr, body)
	}
	if err != nil {
		return
	}
	g := slices.Clone(got)
	w := slices.Clone(want)
	slices.SortFunc(g, func(a, b billing.Event) int { return strings.Compare(eventKey(a), eventKey(b)) })
	slices.SortFunc(w, func(a, b billing.Event) int { return strings.Compare(eventKey(a), eventKey(b)) })
	if len(g) != len(w) || !slices.Equal(g, w) {
		t.Fatalf("events differ from the reference\n got %+v\nwant %+v\nbody %q", g, w, body)
	}
}
