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

func TestPackedRoundTrip(t *testing.T) {
	evs := []billing.Event{
		{Kind: billing.Inbound, Time: 1754265600, PhoneNumberID: 1, Customer: 14155550100, MessageID: "wamid.a"},
		{Kind: billing.Status, Status: billing.StatusDelivered, Time: 1754265601, PhoneNumberID: 1, Customer: 5511988887777, MessageID: "wamid.b"},
	}
	b := BeginPacked(nil)
	for i := range evs {
		b = AppendPacked(b, webhook.AppendEvent(nil, &evs[i]))
	}
	if !IsPacked(b) || IsSourceMark(b) {
		t.Fatal("a packed record is not recognised as one")
	}
	var ev billing.Event
	if webhook.ReadEvent(b, &ev) == nil {
		t.Fatal("ReadEvent accepted a packed record")
	}
	if IsPacked(webhook.AppendEvent(nil, &evs[0])) {
		t.Fatal("an event is taken for a packed record")
	}
	prefix := [][]byte{[]byte("kept")}
	parts, err := SplitPacked(b, prefix)
	if err != nil || len(parts) != 3 || string(parts[0]) != "kept" {
		t.Fatalf("split: %d parts, %v", len(parts), err)
	}
	for i, p := range parts[1:] {
		if err := webhook.ReadEvent(p, &ev); err != nil || ev != evs[i] {
			t.Fatalf("event %d: %+v, %v", i, ev, err)
		}
	}
	// Every truncation that cuts an event, and a record without events,
	// is refused whole.
	whole := len(BeginPacked(nil)) + 1 + len(webhook.AppendEvent(nil, &evs[0]))
	for n := range len(b) {
		got, err := SplitPacked(b[:n], prefix[:1])
		if n == whole {
			if err != nil || len(got) != 2 {
				t.Fatalf("cut after the first event: %d parts, %v", len(got), err)
			}
			continue
		}
		if err == nil || len(got) != 1 {
			t.Fatalf("truncated to %d bytes: %d parts, %v", n, len(got), err)
		}
	}
	if _, err := SplitPacked(append(BeginPacked(nil), 0), nil); err == nil {
		t.Fatal("an empty event was accepted")
	}
}

func FuzzSplitPacked(f *testing.F) {
	ev := billing.Event{Kind: billing.Inbound, Time: 1, MessageID: "m"}
	f.Add(AppendPacked(BeginPacked(nil), webhook.AppendEvent(nil, &ev)))
	f.Fuzz(func(t *testing.T, b []byte) {
		parts, err := SplitPacked(b, nil)
		strs, serr := SplitPackedString(string(b), nil)
		if (err == nil) != (serr == nil) || len(strs) != len(parts) {
			t.Fatalf("the string split differs: %d parts (%v), the bytes' %d (%v)", len(strs), serr, len(parts), err)
		}
		for i := range parts {
			if strs[i] != string(parts[i]) || cap(parts[i]) != len(parts[i]) {
				t.Fatalf("part %d: string %q, bytes %q (cap %d)", i, strs[i], parts[i], cap(parts[i]))
			}
		}
		if err != nil {
			return
		}
		again := BeginPacked(nil)
		for _, p := range parts {
			again = AppendPacked(again, p)
		}
		parts2, err := SplitPacked(again, nil)
		if err != nil || !reflect.DeepEqual(parts, parts2) {
			t.Fatalf("re-packed record splits otherwise: %v", err)
		}
	})
}
