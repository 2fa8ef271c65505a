package wire

import (
	"reflect"
	"testing"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/webhook"
)

func TestUnitRoundTrip(t *testing.T) {
	u := billing.Unit{WABA: 1, PhoneNumberID: 2, Customer: 14155550100, Market: "NORTH_AMERICA",
		Category: billing.CatUtility, Model: billing.PMP, RuleSet: billing.RulesPMP2025, PricingType: billing.PTChargeable,
		BillingUnit: billing.UnitMessage, ChargedAt: 1754265600, MessageID: "wamid.x",
		ConversationCategory: billing.CatReferralConversion, ConversationOpenedAt: 1754265000,
		MetaConversationID: "c", MetaCategory: "utility", MetaPricingModel: "PMP"}
	var r Record
	if err := Read(AppendUnit(nil, 3, 77, &u), &r); err != nil {
		t.Fatal(err)
	}
	if r.Source != 3 || r.Seq != 77 || r.IsWatermark || !reflect.DeepEqual(r.Unit, u) {
		t.Errorf("round trip: %+v", r)
	}
	if err := Read(AppendWatermark(nil, 5, -12), &r); err != nil || !r.IsWatermark || r.Source != 5 || r.Watermark != -12 {
		t.Errorf("watermark round trip: %+v %v", r, err)
	}
}

func FuzzRead(f *testing.F) {
	f.Add(AppendUnit(nil, 1, 2, &billing.Unit{Market: "BR", MessageID: "m"}))
	f.Add(AppendWatermark(nil, 1, Idle))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if Read(b, &r) == nil && !r.IsWatermark {
			if err := Read(AppendUnit(nil, r.Source, r.Seq, &r.Unit), &r); err != nil {
				t.Fatalf("re-encoded record does not decode: %v", err)
			}
		}
	})
}

func TestSourceMarkRoundTrip(t *testing.T) {
	for _, in := range []SourceMark{
		{Topic: "whatsapp.webhooks", Partition: 3, Mark: 1754265602},
		{Topic: "whatsapp.sends", Partition: 0, Mark: -5, Idle: true},
	} {
		b := AppendSourceMark(nil, &in)
		if !IsSourceMark(b) {
			t.Fatalf("%+v: not recognised as a source mark", in)
		}
		var out SourceMark
		if err := ReadSourceMark(b, &out); err != nil || out != in {
			t.Fatalf("round trip of %+v: %+v, %v", in, out, err)
		}
		// An event reader must refuse it, and every truncation must fail.
		var ev billing.Event
		if err := webhook.ReadEvent(b, &ev); err == nil {
			t.Fatalf("ReadEvent accepted a source mark")
		}
		for n := range len(b) {
			if err := ReadSourceMark(b[:n], &out); err == nil {
				t.Fatalf("truncated to %d bytes: accepted", n)
			}
		}
	}
	ev := billing.Event{Kind: billing.Inbound, Time: 1, MessageID: "m"}
	if IsSourceMark(webhook.AppendEvent(nil, &ev)) {
		t.Fatal("an event is taken for a source mark")
	}
}
