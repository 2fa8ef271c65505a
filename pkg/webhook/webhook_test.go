package webhook

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wameter/wameter/pkg/billing"
)

const (
	testWABA    = 102290129340398
	testPhoneID = 106540352242922
)

func readExample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func inbound(t int64, customer uint64, id string, referral bool) billing.Event {
	return billing.Event{Kind: billing.Inbound, Referral: referral, Time: t, WABA: testWABA,
		PhoneNumberID: testPhoneID, Customer: customer, MessageID: id}
}

func status(st billing.StatusKind, kind billing.MsgKind, t int64, customer uint64, id, conv, category, model string) billing.Event {
	return billing.Event{Kind: billing.Status, Status: st, MsgKind: kind, Time: t, WABA: testWABA,
		PhoneNumberID: testPhoneID, Customer: customer, MessageID: id,
		MetaConversationID: conv, MetaCategory: category, MetaPricingModel: model}
}

func with(e billing.Event, f func(*billing.Event)) billing.Event {
	f(&e)
	return e
}

func TestDecodeWebhookExamples(t *testing.T) {
	onPremHdr := Headers{PhoneNumberID: "106540352242922", WABA: "102290129340398"}
	const authIntlID = "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSNkE3QjhDOUQwRTFGMkEzQjRDAA=="
	second := func(e billing.Event) billing.Event {
		e.WABA, e.PhoneNumberID = 310000123456789, 220000987654321
		return e
	}
	tests := []struct {
		file string
		hdr  Headers
		want []billing.Event
	}{
		{file: "cloud_status_cbp_delivered.json", want: []billing.Event{
			status(billing.StatusDelivered, billing.KindUtility, 1750030075, 16505551234,
				"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA", "6ceb9d929c4a57ac4f4ef5b1a2c3d4e5", "utility", "CBP"),
		}},
		{file: "cloud_status_pmp_marketing.json", want: []billing.Event{
			status(billing.StatusDelivered, billing.KindMarketing, 1752062400, 447700900123,
				"wamid.HBgMNDQ3NzAwOTAwMTIzFQIAERgSMEU2QTNDQjc1RDBGNDI0MkFBAA==", "", "marketing", "PMP"),
		}},
		{file: "cloud_status_pmp_free_entry_point.json", want: []billing.Event{
			status(billing.StatusRead, billing.KindNonTemplate, 1752066000, 5511987654321,
				"wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEkI3RjE0QzZBRDNFOTg4MTBDQwA=", "b1c2d3e4f5a6978812345678deadbeef", "referral_conversion", "PMP"),
		}},
		{file: "cloud_status_failed.json", want: []billing.Event{
			status(billing.StatusFailed, billing.KindUnknown, 1750030190, 16505551234,
				"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJCNkY5NTBENEU3ODYxQTM3RUQA", "", "", ""),
		}},
		{file: "cloud_status_legacy_user_initiated.json", want: []billing.Event{
			status(billing.StatusDelivered, billing.KindLegacy, 1672531300, 16505551234,
				"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI0QzNBMjFGMEU5RDhDN0I2QTUA", "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "user_initiated", "CBP"),
		}},
		{file: "cloud_inbound_text.json", want: []billing.Event{
			inbound(1750030000, 16505551234, "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUI0NkE4NjM1QTU2NjVGOURGQgA=", false),
		}},
		{file: "cloud_inbound_interactive_reply.json", want: []billing.Event{
			inbound(1750030300, 16505551234, "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzRUIwMkE3QjFDMDU5QjQ4QjJBRAA=", false),
		}},
		// Meta escapes '/' as "\/": the id must come out unescaped.
		{file: "cloud_inbound_referral_ctwa.json", want: []billing.Event{
			inbound(1752065000, 5511987654321, "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFjNFQjBDMkE/NEY3OUQ1QjFFMkE3AA==", true),
		}},
		{file: "cloud_account_update.json", want: nil},
		// Two entries; metadata after statuses; entry id after changes;
		// numeric timestamps; a '+' on a wa_id; both spellings of
		// authentication-international; a template status change ignored.
		{file: "cloud_batch_mixed.json", want: []billing.Event{
			status(billing.StatusSent, billing.KindAuthenticationIntl, 1752070001, 919876543210,
				authIntlID, "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a", "authentication_international", "CBP"),
			status(billing.StatusDelivered, billing.KindAuthenticationIntl, 1752070003, 919876543210,
				authIntlID, "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a", "authentication_international", "CBP"),
			inbound(1752070100, 919876543210, "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgUM0E5RjBBQjFDMkQzRTRGNUE2QjcA", false),
			inbound(1752070105, 919876543210, "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgUM0I4QzlEMEUxRjJBM0I0QzVENkUA", false),
			second(status(billing.StatusRead, billing.KindAuthenticationIntl, 1752070200, 4915123456789,
				"wamid.HBgNNDkxNTEyMzQ1Njc4ORUCABEYEjNEOEUwRjFBMkIzQzRENUU2AA==", "", "authentication_international", "PMP")),
			second(status(billing.StatusOther, billing.KindUnknown, 1752070210, 4915123456789,
				"wamid.HBgNNDkxNTEyMzQ1Njc4ORUCABEYEjRFOUYxQTJCM0M0RDVFNkY3AA==", "", "", "")),
		}},
		{file: "onprem_statuses.json", hdr: onPremHdr, want: []billing.Event{
			status(billing.StatusDelivered, billing.KindLegacy, 1518694708, 16315551234,
				"gBGGFlB5YjhvAgnhuF1qIUvCo7A", "ee74a48cd8e1a0a0f3a4f3d4e6d9a1b2", "business_initiated", "CBP"),
		}},
		{file: "onprem_inbound.json", hdr: Headers{PhoneNumberID: "106540352242922"}, want: []billing.Event{
			with(inbound(1518694235, 16315551234, "ABGGFlA5FpafAgo6EhqSY3ZQxxhh", false),
				func(e *billing.Event) { e.WABA = 0 }),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got, err := DecodeWebhook(readExample(t, tc.file), tc.hdr, nil)
			if err != nil {
				t.Fatalf("DecodeWebhook: %v", err)
			}
			if (len(got) > 0 || len(tc.want) > 0) && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeWebhookTenStatuses(t *testing.T) {
	got, err := DecodeWebhook(readExample(t, "cloud_statuses_10.json"), Headers{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Fatalf("got %d events, want 10", len(got))
	}
	for i, e := range got {
		if e.Kind != billing.Status || e.PhoneNumberID != testPhoneID || e.WABA != testWABA || e.MessageID == "" {
			t.Errorf("event %d: %+v", i, e)
		}
	}
}

// env wraps statuses (JSON text of the array elements) in a Cloud API body.
func env(statuses string) string {
	return `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{` +
		`"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},` +
		`"statuses":[` + statuses + `]},"field":"messages"}]}]}`
}

const okStatus = `{"id":"wamid.A","status":"delivered","timestamp":"1752062400","recipient_id":"16505551234"}`

func TestDecodeWebhookVariations(t *testing.T) {
	base := status(billing.StatusDelivered, billing.KindUnknown, 1752062400, 16505551234, "wamid.A", "", "", "")
	tests := []struct {
		name string
		body string
		hdr  Headers
		want []billing.Event
	}{
		{"numeric timestamp", env(`{"id":"wamid.A","status":"delivered","timestamp":1752062400,"recipient_id":"16505551234"}`),
			Headers{}, []billing.Event{base}},
		{"numeric ids", `{"object":"whatsapp_business_account","entry":[{"id":102290129340398,"changes":[{"value":{"metadata":{"phone_number_id":106540352242922},"statuses":[` +
			`{"id":"wamid.A","status":"delivered","timestamp":"1752062400","recipient_id":16505551234}]}}]}]}`,
			Headers{}, []billing.Event{base}},
		{"plus on recipient", env(`{"id":"wamid.A","status":"delivered","timestamp":"1752062400","recipient_id":"+16505551234"}`),
			Headers{}, []billing.Event{base}},
		{"unknown status", env(`{"id":"wamid.A","status":"warning","timestamp":"1752062400","recipient_id":"16505551234"}`),
			Headers{}, []billing.Event{with(base, func(e *billing.Event) { e.Status = billing.StatusOther })}},
		{"unknown fields and nulls", env(`{"id":"wamid.A","status":"delivered","timestamp":"1752062400","recipient_id":"16505551234",` +
			`"biz_opaque_callback_data":"x","recipient_type":"individual","conversation":null,"pricing":{"category":null,"new":[1,{"a":true}]}}`),
			Headers{}, []billing.Event{base}},
		{"escapes decoded", env(`{"id":"wamid.\u0041\/B","status":"deliv\u0065red","timestamp":"1752062400","recipient_id":"16505551234","pricing":{"category":"UTILITY","pricing_model":"P\u004dP"}}`),
			Headers{}, []billing.Event{with(base, func(e *billing.Event) {
				e.MessageID, e.MsgKind, e.MetaCategory, e.MetaPricingModel = "wamid.A/B", billing.KindUtility, "utility", "PMP"
			})}},
		{"several statuses", env(okStatus + "," + okStatus), Headers{}, []billing.Event{base, base}},
		{"WABA absent", `{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"metadata":{"phone_number_id":"106540352242922"},"statuses":[` + okStatus + `]}}]}]}`,
			Headers{}, []billing.Event{with(base, func(e *billing.Event) { e.WABA = 0 })}},
		{"WABA zero (dashboard test payload)", `{"object":"whatsapp_business_account","entry":[{"id":"0","changes":[{"value":{"metadata":{"phone_number_id":"106540352242922"},"statuses":[` + okStatus + `]}}]}]}`,
			Headers{}, []billing.Event{with(base, func(e *billing.Event) { e.WABA = 0 })}},
		{"field before value, not messages", `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"account_update","value":{"statuses":[{"bad":1}]}}]}]}`,
			Headers{}, nil},
		{"field after value, not messages, bad value forgiven", `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"statuses":[{"bad":1}],"messaging_product":"other"},"field":"security"}]}]}`,
			Headers{}, nil},
		{"field after value, good value dropped", `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"metadata":{"phone_number_id":"106540352242922"},"statuses":[` + okStatus + `]},"field":"history"}]}]}`,
			Headers{}, nil},
		{"empty entry", `{"object":"whatsapp_business_account","entry":[]}`, Headers{}, nil},
		{"value with errors only", `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp","errors":[{"code":131051}]},"field":"messages"}]}]}`,
			Headers{}, nil},
		{"on-premises with headers", `{"statuses":[` + okStatus + `]}`,
			Headers{PhoneNumberID: "106540352242922", WABA: "102290129340398"}, []billing.Event{base}},
		{"on-premises without WABA header", `{"statuses":[` + okStatus + `]}`,
			Headers{PhoneNumberID: "+106540352242922"}, []billing.Event{with(base, func(e *billing.Event) { e.WABA = 0 })}},
		{"on-premises errors only, no header needed", `{"errors":[{"code":1014,"title":"Internal error"}]}`, Headers{}, nil},
		{"on-premises empty statuses, no header needed", `{"statuses":[]}`, Headers{}, nil},
		{"cloud ignores headers", env(okStatus), Headers{PhoneNumberID: "garbage"}, []billing.Event{base}},
		{"white space", " \n" + env(okStatus) + "\r\n\t", Headers{}, []billing.Event{base}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeWebhook([]byte(tc.body), tc.hdr, nil)
			if err != nil {
				t.Fatalf("DecodeWebhook: %v", err)
			}
			if (len(got) > 0 || len(tc.want) > 0) && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestPricingCategories(t *testing.T) {
	tests := []struct {
		category, norm string
		want           billing.MsgKind
	}{
		{"marketing", "marketing", billing.KindMarketing},
		{"utility", "utility", billing.KindUtility},
		{"authentication", "authentication", billing.KindAuthentication},
		{"authentication_international", "authentication_international", billing.KindAuthenticationIntl},
		{"authentication-international", "authentication_international", billing.KindAuthenticationIntl},
		{"AUTHENTICATION-INTERNATIONAL", "authentication_international", billing.KindAuthenticationIntl},
		{"service", "service", billing.KindNonTemplate},
		{"referral_conversion", "referral_conversion", billing.KindNonTemplate},
		{"business_initiated", "business_initiated", billing.KindLegacy},
		{"user_initiated", "user_initiated", billing.KindLegacy},
		{"marketing_lite", "marketing_lite", billing.KindUnknown},
		{"Brand-New", "brand_new", billing.KindUnknown},
		{"", "", billing.KindUnknown},
	}
	for _, tc := range tests {
		body := env(`{"id":"wamid.A","status":"sent","timestamp":"1752062400","recipient_id":"16505551234","pricing":{"pricing_model":"PMP","category":"` + tc.category + `"}}`)
		got, err := DecodeWebhook([]byte(body), Headers{}, nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.category, err)
		}
		if got[0].MsgKind != tc.want || got[0].MetaCategory != tc.norm {
			t.Errorf("%q: got kind %d category %q, want %d %q", tc.category, got[0].MsgKind, got[0].MetaCategory, tc.want, tc.norm)
		}
	}
}

func TestDecodeWebhookAppendsToDst(t *testing.T) {
	var d Decoder
	prior := billing.Event{Kind: billing.Send, MessageID: "kept"}
	dst := []billing.Event{prior}
	dst, err := d.DecodeWebhook([]byte(env(okStatus)), Headers{}, dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(dst) != 2 || dst[0] != prior || dst[1].MessageID != "wamid.A" {
		t.Fatalf("got %+v", dst)
	}
	// A rejected payload leaves dst as it was, and the Decoder reusable.
	dst, err = d.DecodeWebhook([]byte(env(okStatus+`,{"id":"wamid.B"}`)), Headers{}, dst)
	if err == nil || len(dst) != 2 {
		t.Fatalf("got %d events, err %v; want 2 and an error", len(dst), err)
	}
	dst, err = d.DecodeWebhook([]byte(env(okStatus)), Headers{}, dst[:1])
	if err != nil || len(dst) != 2 || dst[1].MessageID != "wamid.A" {
		t.Fatalf("after a rejection: %+v, %v", dst, err)
	}
}

func TestDecodeWebhookRejects(t *testing.T) {
	const cloudHead = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":`
	tests := []struct {
		name   string
		body   string
		hdr    Headers
		reason Reason
		msg    string // whole Error() text when set
	}{
		{"empty", ``, Headers{}, ReasonInvalidJSON, "invalid JSON at byte 0: unexpected end of input"},
		{"truncated", env(okStatus)[:120], Headers{}, ReasonInvalidJSON, ""},
		{"trailing comma", env(okStatus + ","), Headers{}, ReasonInvalidJSON, ""},
		{"trailing data", env(okStatus) + "{}", Headers{}, ReasonInvalidJSON, ""},
		{"bad escape", env(`{"id":"wamid.\x","status":"sent"}`), Headers{}, ReasonInvalidJSON, ""},
		{"control character", env("{\"id\":\"wamid.\n\"}"), Headers{}, ReasonInvalidJSON, ""},
		// Invalid JSON wins over any other fault found earlier.
		{"semantic fault then broken", env(`{"id":5}`) + "}", Headers{}, ReasonInvalidJSON, ""},
		{"top level array", `[` + env(okStatus) + `]`, Headers{}, ReasonInvalidField, "top level is not a JSON object"},
		{"entry not array", `{"object":"whatsapp_business_account","entry":{}}`, Headers{}, ReasonInvalidField, "entry is not an array"},
		{"status not object", env(`"x"`), Headers{}, ReasonInvalidField,
			"entry[0].changes[0].value.statuses[0]: status is not an object"},
		{"status id number", env(`{"id":5,"status":"sent","timestamp":"1752062400","recipient_id":"1"}`), Headers{}, ReasonInvalidField, ""},
		{"referral not object", cloudHead + `{"metadata":{"phone_number_id":"1"},"messages":[{"from":"1","id":"a","timestamp":"1752062400","referral":"ad"}]}}]}]}`,
			Headers{}, ReasonInvalidField, ""},
		{"mixed envelope and on-premises", `{"object":"whatsapp_business_account","entry":[],"statuses":[]}`, Headers{}, ReasonInvalidField, ""},
		{"other object", `{"object":"page","entry":[]}`, Headers{}, ReasonNotWhatsApp, `object is "page", not whatsapp_business_account`},
		{"other product", cloudHead + `{"messaging_product":"instagram","statuses":[]}}]}]}`, Headers{}, ReasonNotWhatsApp, ""},
		{"no known key", `{"hello":"world"}`, Headers{}, ReasonNotWhatsApp, ""},
		{"no phone_number_id", cloudHead + `{"metadata":{"display_phone_number":"15550783881"},"statuses":[` + okStatus + `]}}]}]}`,
			Headers{}, ReasonMissingPhoneNumberID, "entry[0].changes[0].value: messages or statuses without metadata.phone_number_id"},
		{"on-premises without header", `{"statuses":[` + okStatus + `]}`, Headers{WABA: "1"}, ReasonMissingPhoneNumberID, ""},
		{"on-premises bad header", `{"messages":[{}]}`, Headers{PhoneNumberID: "abc"}, ReasonInvalidID, ""},
		{"on-premises bad WABA header", `{"messages":[{}]}`, Headers{PhoneNumberID: "1", WABA: "x"}, ReasonInvalidID, ""},
		{"phone_number_id zero", cloudHead + `{"metadata":{"phone_number_id":"0"},"statuses":[]}}]}]}`, Headers{}, ReasonInvalidID, ""},
		{"WABA not numeric", `{"object":"whatsapp_business_account","entry":[{"id":"WABA-1"}]}`, Headers{}, ReasonInvalidID,
			`entry[0]: id (WABA) "WABA-1" is not a numeric id`},
		{"recipient with dashes", env(`{"id":"wamid.A","status":"sent","timestamp":"1752062400","recipient_id":"1-650-555-1234"}`), Headers{}, ReasonInvalidID, ""},
		{"recipient leading zero", env(`{"id":"wamid.A","status":"sent","timestamp":"1752062400","recipient_id":"016505551234"}`), Headers{}, ReasonInvalidID, ""},
		{"recipient overflows", env(`{"id":"wamid.A","status":"sent","timestamp":"1752062400","recipient_id":"18446744073709551616"}`), Headers{}, ReasonInvalidID, ""},
		{"recipient is object", env(`{"id":"wamid.A","status":"sent","timestamp":"1752062400","recipient_id":{}}`), Headers{}, ReasonInvalidID, ""},
		{"missing id", env(`{"status":"sent","timestamp":"1752062400","recipient_id":"1"}`), Headers{}, ReasonMissingField,
			"entry[0].changes[0].value.statuses[0]: missing id"},
		{"empty status", env(`{"id":"wamid.A","status":"","timestamp":"1752062400","recipient_id":"1"}`), Headers{}, ReasonMissingField, ""},
		{"missing recipient_id", env(okStatus + "," + `{"id":"wamid.A","status":"sent","timestamp":"1752062400"}`), Headers{}, ReasonMissingField,
			"entry[0].changes[0].value.statuses[1]: missing recipient_id"},
		{"missing from", cloudHead + `{"metadata":{"phone_number_id":"1"},"messages":[{"id":"a","timestamp":"1752062400"}]}}]}]}`, Headers{}, ReasonMissingField,
			"entry[0].changes[0].value.messages[0]: missing from"},
		{"missing timestamp", env(`{"id":"wamid.A","status":"sent","recipient_id":"1"}`), Headers{}, ReasonMissingTimestamp, ""},
		{"null timestamp", env(`{"id":"wamid.A","status":"sent","timestamp":null,"recipient_id":"1"}`), Headers{}, ReasonMissingTimestamp, ""},
		{"zero timestamp", env(`{"id":"wamid.A","status":"sent","timestamp":"0","recipient_id":"1"}`), Headers{}, ReasonInvalidTimestamp, ""},
		{"negative timestamp", env(`{"id":"wamid.A","status":"sent","timestamp":-1752062400,"recipient_id":"1"}`), Headers{}, ReasonInvalidTimestamp, ""},
		{"fractional timestamp", env(`{"id":"wamid.A","status":"sent","timestamp":1752062400.5,"recipient_id":"1"}`), Headers{}, ReasonInvalidTimestamp, ""},
		{"timestamp after 2100", env(`{"id":"wamid.A","status":"sent","timestamp":"4102444801","recipient_id":"1"}`), Headers{}, ReasonInvalidTimestamp, ""},
		{"timestamp in milliseconds", env(`{"id":"wamid.A","status":"sent","timestamp":"1752062400000","recipient_id":"1"}`), Headers{}, ReasonInvalidTimestamp, ""},
		{"timestamp as bool", env(`{"id":"wamid.A","status":"sent","timestamp":true,"recipient_id":"1"}`), Headers{}, ReasonInvalidTimestamp, ""},
		// A fault in a messages change is not forgiven by a later change.
		{"second change bad", `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"account_update","value":{}},` +
			`{"value":{"statuses":[{}]},"field":"messages"}]}]}`, Headers{}, ReasonMissingField, "entry[0].changes[1].value.statuses[0]: missing id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeWebhook([]byte(tc.body), tc.hdr, nil)
			checkReject(t, got, err, tc.reason, tc.msg)
		})
	}
}

func checkReject(t *testing.T, got []billing.Event, err error, reason Reason, msg string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %d events and error %v, want an *Error %s", len(got), err, reason)
	}
	if e.Reason != reason {
		t.Errorf("reason %s (%v), want %s", e.Reason, err, reason)
	}
	if msg != "" && err.Error() != msg {
		t.Errorf("error %q, want %q", err.Error(), msg)
	}
	if len(got) != 0 {
		t.Errorf("got %d events with an error", len(got))
	}
}

// The dead-letter examples are named <reason>__<what>.json.
func TestDecodeWebhookDeadLetterExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "examples", "dlq", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasPrefix(name, "send_") {
			continue
		}
		n++
		reason := Reason(strings.TrimSuffix(strings.SplitN(name, "__", 2)[0], ".json"))
		t.Run(name, func(t *testing.T) {
			got, err := DecodeWebhook(readExample(t, filepath.Join("dlq", name)), Headers{}, nil)
			checkReject(t, got, err, reason, "")
		})
	}
	// On-Premises examples are dead letters without their headers.
	for _, name := range []string{"onprem_statuses.json", "onprem_inbound.json"} {
		got, err := DecodeWebhook(readExample(t, name), Headers{}, nil)
		checkReject(t, got, err, ReasonMissingPhoneNumberID, "")
	}
	if n < 7 {
		t.Fatalf("found %d dead-letter examples, want at least 7", n)
	}
}

func TestParseID(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"16505551234", 16505551234, true},
		{"+16505551234", 16505551234, true},
		{"0", 0, true},
		{"18446744073709551615", 18446744073709551615, true},
		{"18446744073709551616", 0, false},
		{"99999999999999999999", 0, false},
		{"", 0, false},
		{"+", 0, false},
		{"++1", 0, false},
		{"01", 0, false},
		{"1 2", 0, false},
		{"-1", 0, false},
		{"1e5", 0, false},
	}
	for _, tc := range tests {
		got, ok := parseID([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseID(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseSeconds(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1750030073", 1750030073, true},
		{"1", 1, true},
		{"4102444800", 4102444800, true},
		{"4102444801", 0, false},
		{"9999999999", 0, false},
		{"17500300730", 0, false},
		{"0", 0, false},
		{"01750030073", 0, false},
		{"", 0, false},
		{"+1750030073", 0, false},
		{"1750030073.0", 0, false},
	}
	for _, tc := range tests {
		got, ok := parseSeconds([]byte(tc.in))
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("parseSeconds(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// hasSpecialByte must find every non-plain byte at every position of a
// word, whatever plain bytes surround it.
func TestHasSpecialByte(t *testing.T) {
	for _, filler := range []byte{0x20, 'a', 0x7f} {
		for pos := range 8 {
			for c := range 256 {
				var w [8]byte
				for i := range w {
					w[i] = filler
				}
				w[pos] = byte(c)
				got := hasSpecialByte(uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
					uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56)
				if want := !plainByte[c]; got != want {
					t.Fatalf("byte %#x at %d among %#x: got %v, want %v", c, pos, filler, got, want)
				}
			}
		}
	}
}

func TestDecodeWebhookErrorPaths(t *testing.T) {
	const head = `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{}},`
	tests := []struct{ body, want string }{
		{head + `5]}]}`, "entry[0].changes[1]: change is not an object"},
		{head + `{"field":7}]}]}`, "entry[0].changes[1]: field is not a string"},
		{head + `{"value":{"metadata":[]}}]}]}`, "entry[0].changes[1].value.metadata: metadata is not an object"},
		{head + `{"value":{"metadata":{"phone_number_id":"1"},"messages":[{"id":"a","from":"x"}]}}]}]}`,
			`entry[0].changes[1].value.messages[0]: from "x" is not a numeric id`},
		{`{"object":"whatsapp_business_account","entry":[{"id":"1"},{"changes":{}}]}`, "entry[1]: changes is not an array"},
		{`{"statuses":[` + okStatus + `,{}]}`, "statuses[0]: On-Premises payload (no entry envelope) and no phone_number_id record header"},
	}
	for _, tc := range tests {
		_, err := DecodeWebhook([]byte(tc.body), Headers{}, nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got %v\nwant %s", tc.body, err, tc.want)
		}
	}
}
