package webhook

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wameter/wameter/pkg/billing"
)

// seedBodies returns the example payloads: every file under
// testdata/examples, one body per line for JSON lines files.
func seedBodies(t testing.TB, sends bool) [][]byte {
	t.Helper()
	var bodies [][]byte
	err := filepath.WalkDir(filepath.Join("testdata", "examples"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		isSend := strings.HasPrefix(name, "send")
		isJSON := strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".jsonl")
		if !isJSON || isSend != sends {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.HasSuffix(name, ".jsonl") {
			for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
				bodies = append(bodies, line)
			}
		} else {
			bodies = append(bodies, b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return bodies
}

var extraWebhookSeeds = []string{
	env(okStatus),
	`{"statuses":[` + okStatus + `]}`,
	`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"statuses":[{"x":1}]},"field":"account_update"}]}]}`,
	`{"object":"whatsapp_business_account","entry":[null,{"id":1,"changes":[null,{"value":null}]}]}`,
	env(`{"id":"\ud83d\ude00\ud800x\u00e9","status":"read","timestamp":1,"recipient_id":"+1","pricing":{"category":"A-B"}}`),
	"{\"statuses\":[{\"id\":\"\xff\xfe\",\"status\":\"sent\",\"timestamp\":\"1\",\"recipient_id\":\"1\"}]}",
	`{"a":[[[[[[[[[[{"b":-0.5e+10}]]]]]]]]]],"statuses":[]}`,
	// Once made finish index past the events: a value's strings were kept
	// when its change turned out not to be a messages change.
	`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"metadata":{"phone_number_id":"1"},"statuses":[` + okStatus + `]},"field":"history"}]}]}`,
}

func FuzzDecodeWebhook(f *testing.F) {
	for _, b := range seedBodies(f, false) {
		f.Add(b, "106540352242922", "102290129340398")
		f.Add(b, "", "")
	}
	for _, s := range extraWebhookSeeds {
		f.Add([]byte(s), "1", "")
	}
	f.Fuzz(func(t *testing.T, body []byte, phoneHdr, wabaHdr string) {
		hdr := Headers{PhoneNumberID: phoneHdr, WABA: wabaHdr}
		got, err := DecodeWebhook(body, hdr, nil)
		want, refErr := refDecodeWebhook(body, hdr)
		checkAgainstReference(t, body, got, err, want, refErr)
	})
}

func FuzzDecodeSend(f *testing.F) {
	for _, b := range seedBodies(f, true) {
		f.Add(b)
	}
	f.Add([]byte(`{"message_id":"m","phone_number_id":1,"to":"(1) 2-3","timestamp":1,"type":"Template","template":{"category":"authentication-international"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := DecodeSend(body, nil)
		want, refErr := refDecodeSend(body)
		checkAgainstReference(t, body, got, err, want, refErr)
	})
}

func FuzzReadEvent(f *testing.F) {
	for _, e := range codecSamples(f) {
		f.Add(AppendEvent(nil, &e))
	}
	f.Add([]byte{eventFormatV1, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e, view billing.Event
		err := ReadEvent(b, &e)
		if verr := ReadEventView(b, &view); (err == nil) != (verr == nil) || (err == nil && view != e) {
			t.Fatalf("ReadEventView: %+v, %v; ReadEvent: %+v, %v", view, verr, e, err)
		}
		if err != nil {
			return
		}
		// Whatever was accepted must survive a round trip unchanged.
		var again billing.Event
		if err := ReadEvent(AppendEvent(nil, &e), &again); err != nil || again != e {
			t.Fatalf("round trip of %+v: %+v, %v", e, again, err)
		}
	})
}

func FuzzEventRoundTrip(f *testing.F) {
	f.Add(uint8(3), uint8(2), uint8(2), false, int64(1752062400), uint64(1), uint64(2), uint64(3), "wamid.A", "conv", "marketing", "PMP")
	f.Fuzz(func(t *testing.T, kind, st, msgKind uint8, referral bool, tm int64, waba, phoneID, customer uint64, id, conv, cat, model string) {
		e := billing.Event{Kind: billing.EventKind(kind%3 + 1), Status: billing.StatusKind(st % 5), MsgKind: billing.MsgKind(msgKind % 7),
			Referral: referral, Time: tm, WABA: waba, PhoneNumberID: phoneID, Customer: customer,
			MessageID: id, MetaConversationID: conv, MetaCategory: cat, MetaPricingModel: model}
		var got billing.Event
		if err := ReadEvent(AppendEvent(nil, &e), &got); err != nil || got != e {
			t.Fatalf("round trip of %+v: %+v, %v", e, got, err)
		}
	})
}

// TestDecodersMatchReference runs the differential check of the fuzz tests
// over the seed corpus, so that a plain go test exercises it.
func TestDecodersMatchReference(t *testing.T) {
	hdrs := []Headers{{}, {PhoneNumberID: "106540352242922", WABA: "102290129340398"}}
	bodies := seedBodies(t, false)
	for _, s := range extraWebhookSeeds {
		bodies = append(bodies, []byte(s))
	}
	for _, body := range bodies {
		for _, hdr := range hdrs {
			got, err := DecodeWebhook(body, hdr, nil)
			want, refErr := refDecodeWebhook(body, hdr)
			checkAgainstReference(t, body, got, err, want, refErr)
		}
	}
	for _, body := range seedBodies(t, true) {
		got, err := DecodeSend(body, nil)
		want, refErr := refDecodeSend(body)
		checkAgainstReference(t, body, got, err, want, refErr)
	}
}
