package webhook

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/wameter/wameter/pkg/billing"
)

// BenchmarkDecodeWebhook decodes a payload of 10 statuses (CBP and PMP,
// compact as Meta sends it) with one reused Decoder and dst, as a normalize
// worker does.
func BenchmarkDecodeWebhook(b *testing.B) {
	body := readExample(b, "cloud_statuses_10.json")
	var d Decoder
	dst := make([]billing.Event, 0, 16)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	statuses := 0
	for b.Loop() {
		events, err := d.DecodeWebhook(body, Headers{}, dst[:0])
		if err != nil {
			b.Fatal(err)
		}
		statuses += len(events)
	}
	b.ReportMetric(float64(statuses)/b.Elapsed().Seconds(), "statuses/s")
}

// BenchmarkDecodeWebhookPooled is the package-level function, which takes a
// Decoder from a pool on each call.
func BenchmarkDecodeWebhookPooled(b *testing.B) {
	body := readExample(b, "cloud_statuses_10.json")
	dst := make([]billing.Event, 0, 16)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	statuses := 0
	for b.Loop() {
		events, err := DecodeWebhook(body, Headers{}, dst[:0])
		if err != nil {
			b.Fatal(err)
		}
		statuses += len(events)
	}
	b.ReportMetric(float64(statuses)/b.Elapsed().Seconds(), "statuses/s")
}

// stdlibPayload is what a straightforward encoding/json decoder would
// unmarshal into; BenchmarkDecodeWebhookEncodingJSON is the baseline that
// justifies the package's own JSON reader.
type stdlibPayload struct {
	Object string `json:"object"`
	Entry  []struct {
		ID      string `json:"id"`
		Changes []struct {
			Field string `json:"field"`
			Value struct {
				Metadata struct {
					PhoneNumberID string `json:"phone_number_id"`
				} `json:"metadata"`
				Statuses []struct {
					ID           string          `json:"id"`
					Status       string          `json:"status"`
					Timestamp    json.RawMessage `json:"timestamp"`
					RecipientID  string          `json:"recipient_id"`
					Conversation *struct {
						ID string `json:"id"`
					} `json:"conversation"`
					Pricing *struct {
						PricingModel string `json:"pricing_model"`
						Category     string `json:"category"`
					} `json:"pricing"`
				} `json:"statuses"`
			} `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

func BenchmarkDecodeWebhookEncodingJSON(b *testing.B) {
	body := readExample(b, "cloud_statuses_10.json")
	dst := make([]billing.Event, 0, 16)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	statuses := 0
	for b.Loop() {
		var p stdlibPayload
		if err := json.Unmarshal(body, &p); err != nil {
			b.Fatal(err)
		}
		dst = dst[:0]
		for _, en := range p.Entry {
			waba, _ := strconv.ParseUint(en.ID, 10, 64)
			for _, c := range en.Changes {
				phoneID, _ := strconv.ParseUint(c.Value.Metadata.PhoneNumberID, 10, 64)
				for _, s := range c.Value.Statuses {
					customer, _ := strconv.ParseUint(s.RecipientID, 10, 64)
					e := billing.Event{Kind: billing.Status, Status: statusKind([]byte(s.Status)), WABA: waba,
						PhoneNumberID: phoneID, Customer: customer, MessageID: s.ID}
					if s.Pricing != nil {
						e.MetaCategory, e.MetaPricingModel = s.Pricing.Category, s.Pricing.PricingModel
					}
					if s.Conversation != nil {
						e.MetaConversationID = s.Conversation.ID
					}
					dst = append(dst, e)
				}
			}
		}
		statuses += len(dst)
	}
	b.ReportMetric(float64(statuses)/b.Elapsed().Seconds(), "statuses/s")
}

func BenchmarkDecodeSend(b *testing.B) {
	body, _, _ := bytes.Cut(readExample(b, "sends.jsonl"), []byte("\n"))
	var d Decoder
	dst := make([]billing.Event, 0, 1)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.DecodeSend(body, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	events, err := DecodeWebhook(readExample(b, "cloud_status_cbp_delivered.json"), Headers{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEvent(buf[:0], &events[0])
	}
}

func BenchmarkReadEvent(b *testing.B) {
	events, err := DecodeWebhook(readExample(b, "cloud_status_cbp_delivered.json"), Headers{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	buf := AppendEvent(nil, &events[0])
	var e billing.Event
	b.ReportAllocs()
	for b.Loop() {
		if err := ReadEvent(buf, &e); err != nil {
			b.Fatal(err)
		}
	}
}
