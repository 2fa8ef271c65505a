package webhook

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wameter/wameter/pkg/billing"
)

func sendEvent(kind billing.MsgKind, t int64, waba, customer uint64, id string) billing.Event {
	return billing.Event{Kind: billing.Send, MsgKind: kind, Time: t, WABA: waba,
		PhoneNumberID: testPhoneID, Customer: customer, MessageID: id}
}

func TestDecodeSendExamples(t *testing.T) {
	want := []billing.Event{
		sendEvent(billing.KindUtility, 1750030073, testWABA, 16505551234, "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"),
		sendEvent(billing.KindMarketing, 1752062390, testWABA, 447700900123, "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAERgSMEU2QTNDQjc1RDBGNDI0MkFBAA=="),
		sendEvent(billing.KindNonTemplate, 1750030180, 0, 16505551234, "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJCNkY5NTBENEU3ODYxQTM3RUQA"),
		sendEvent(billing.KindNonTemplate, 1752065990, testWABA, 5511987654321, "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEkI3RjE0QzZBRDNFOTg4MTBDQwA="),
		sendEvent(billing.KindAuthentication, 1752070000, testWABA, 919876543210, "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSNkE3QjhDOUQwRTFGMkEzQjRDAA=="),
		sendEvent(billing.KindAuthenticationIntl, 1752070100, testWABA, 4915123456789, "wamid.HBgNNDkxNTEyMzQ1Njc4ORUCABEYEjNEOEUwRjFBMkIzQzRENUU2AA=="),
	}
	var got []billing.Event
	var d Decoder
	for i, line := range bytes.Split(bytes.TrimSpace(readExample(t, "sends.jsonl")), []byte("\n")) {
		var err error
		if got, err = d.DecodeSend(line, got); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events:\n got %+v\nwant %+v", got, want)
	}
}

func TestDecodeSendVariations(t *testing.T) {
	const head = `{"message_id":"wamid.A","phone_number_id":"106540352242922","timestamp":"1750030073",`
	base := sendEvent(billing.KindNonTemplate, 1750030073, 0, 16505551234, "wamid.A")
	tests := []struct {
		name string
		body string
		want billing.Event
	}{
		{"text", head + `"to":"16505551234","type":"text"}`, base},
		{"to formatted", head + `"to":"+1 (650) 555-1234","type":"image"}`, base},
		{"to as number", head + `"to":16505551234,"type":"document"}`, base},
		{"template in another type is ignored", head + `"to":"16505551234","type":"interactive","template":{"category":"MARKETING"}}`, base},
		{"type upper case", head + `"to":"16505551234","type":"TEMPLATE","template":{"category":"Utility"}}`,
			with(base, func(e *billing.Event) { e.MsgKind = billing.KindUtility })},
		{"authentication-international", head + `"to":"16505551234","type":"template","template":{"category":"AUTHENTICATION-INTERNATIONAL"}}`,
			with(base, func(e *billing.Event) { e.MsgKind = billing.KindAuthenticationIntl })},
		{"numeric timestamp and ids", `{"message_id":"wamid.A","waba_id":102290129340398,"phone_number_id":106540352242922,"timestamp":1750030073,"to":"16505551234","type":"text"}`,
			with(base, func(e *billing.Event) { e.WABA = testWABA })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeSend([]byte(tc.body), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeSendRejects(t *testing.T) {
	const id, phone, to, ts = `"message_id":"wamid.A",`, `"phone_number_id":"106540352242922",`, `"to":"16505551234",`, `"timestamp":"1750030073",`
	tests := []struct {
		name   string
		body   string
		reason Reason
		msg    string
	}{
		{"not JSON", `message_id=wamid.A`, ReasonInvalidJSON, ""},
		{"array", `[]`, ReasonInvalidField, "send record is not a JSON object"},
		{"missing message_id", `{` + phone + to + ts + `"type":"text"}`, ReasonMissingField, "missing message_id"},
		{"empty message_id", `{"message_id":"",` + phone + to + ts + `"type":"text"}`, ReasonMissingField, ""},
		{"missing phone_number_id", `{` + id + to + ts + `"type":"text"}`, ReasonMissingPhoneNumberID, "missing phone_number_id"},
		{"missing to", `{` + id + phone + ts + `"type":"text"}`, ReasonMissingField, "missing to"},
		{"to with letters", `{` + id + phone + `"to":"+1 650 CALL-NOW",` + ts + `"type":"text"}`, ReasonInvalidID, `to "+1 650 CALL-NOW" is not a phone number`},
		{"to empty", `{` + id + phone + `"to":"",` + ts + `"type":"text"}`, ReasonInvalidID, ""},
		{"bad waba_id", `{` + id + phone + to + ts + `"waba_id":"abc","type":"text"}`, ReasonInvalidID, ""},
		{"missing timestamp", `{` + id + phone + to + `"type":"text"}`, ReasonMissingTimestamp, "missing timestamp"},
		{"timestamp in ms", `{` + id + phone + to + `"timestamp":1750030073000,"type":"text"}`, ReasonInvalidTimestamp, ""},
		{"missing type", `{` + id + phone + to + ts + `"template":{"category":"UTILITY"}}`, ReasonMissingField, "missing type"},
		{"template missing", `{` + id + phone + to + ts + `"type":"template"}`, ReasonMissingField, "type template without template"},
		{"template null", `{` + id + phone + to + ts + `"type":"template","template":null}`, ReasonMissingField, ""},
		{"category missing", `{` + id + phone + to + ts + `"type":"template","template":{"name":"x"}}`, ReasonMissingField, "missing template.category"},
		{"category unknown", `{` + id + phone + to + ts + `"type":"template","template":{"category":"SERVICE"}}`, ReasonUnknownCategory,
			`template.category "service" is not a template category`},
		{"category not string", `{` + id + phone + to + ts + `"type":"template","template":{"category":3}}`, ReasonInvalidField, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeSend([]byte(tc.body), nil)
			checkReject(t, got, err, tc.reason, tc.msg)
		})
	}
}

// The dead-letter send examples are named send_<reason>[__<what>].json.
func TestDecodeSendDeadLetterExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "examples", "dlq", "send_*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("found %d send dead-letter examples, want at least 5", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		reason := Reason(strings.TrimSuffix(strings.SplitN(strings.TrimPrefix(name, "send_"), "__", 2)[0], ".json"))
		t.Run(name, func(t *testing.T) {
			got, err := DecodeSend(readExample(t, filepath.Join("dlq", name)), nil)
			checkReject(t, got, err, reason, "")
		})
	}
}
