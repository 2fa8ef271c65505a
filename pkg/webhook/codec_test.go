package webhook

import (
	"errors"
	"math"
	"testing"

	"github.com/wameter/wameter/pkg/billing"
)

func codecSamples(t testing.TB) []billing.Event {
	events, err := DecodeWebhook(readExample(t, "cloud_batch_mixed.json"), Headers{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return append(events,
		billing.Event{Kind: billing.Inbound, Referral: true, Time: 1752065000, PhoneNumberID: 1, Customer: 5511987654321, MessageID: "wamid.é/ü"},
		billing.Event{Kind: billing.Send, MsgKind: billing.KindLegacy, Status: billing.StatusFailed, Time: math.MinInt64,
			WABA: math.MaxUint64, PhoneNumberID: math.MaxUint64, Customer: math.MaxUint64},
		billing.Event{Kind: billing.Status, Time: math.MaxInt64, MessageID: string(make([]byte, 300)),
			MetaConversationID: "c", MetaCategory: "marketing_lite", MetaPricingModel: "XYZ"},
	)
}

func TestEventCodecRoundTrip(t *testing.T) {
	var buf []byte
	for i, want := range codecSamples(t) {
		buf = AppendEvent(buf[:0], &want)
		if buf[0] != eventFormatV1 {
			t.Fatalf("event %d: format byte %d", i, buf[0])
		}
		var got billing.Event
		if err := ReadEvent(buf, &got); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if got != want {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got, want)
		}
		// A view's strings are buf's bytes: equal now, changed with them.
		var view billing.Event
		if err := ReadEventView(buf, &view); err != nil || view != want {
			t.Fatalf("event %d: view %+v, %v", i, view, err)
		}
		if len(want.MetaPricingModel) > 0 {
			buf[len(buf)-1]++
			if view.MetaPricingModel == want.MetaPricingModel || got.MetaPricingModel != want.MetaPricingModel {
				t.Errorf("event %d: the view does not share buf's bytes, or ReadEvent's copy does", i)
			}
		}
	}
}

func TestEventCodecAppends(t *testing.T) {
	e := billing.Event{Kind: billing.Inbound, Time: 1, Customer: 2, PhoneNumberID: 3, MessageID: "m"}
	prefix := []byte("key")
	b := AppendEvent(prefix, &e)
	if string(b[:3]) != "key" {
		t.Fatalf("prefix overwritten: %q", b)
	}
	var got billing.Event
	if err := ReadEvent(b[3:], &got); err != nil || got != e {
		t.Fatalf("got %+v, %v", got, err)
	}
	// A status costs a few dozen bytes besides its strings.
	events, _ := DecodeWebhook(readExample(t, "cloud_status_cbp_delivered.json"), Headers{}, nil)
	s := &events[0]
	strs := len(s.MessageID) + len(s.MetaConversationID) + len(s.MetaCategory) + len(s.MetaPricingModel)
	if n := len(AppendEvent(nil, s)) - strs; n > 40 {
		t.Errorf("a CBP status takes %d bytes besides its strings", n)
	}
}

func TestReadEventRejects(t *testing.T) {
	e := codecSamples(t)[0]
	good := AppendEvent(nil, &e)
	var got billing.Event
	// Every truncation fails.
	for n := range len(good) {
		if err := ReadEvent(good[:n], &got); !errors.Is(err, ErrCorruptEvent) {
			t.Fatalf("truncated to %d of %d bytes: err %v", n, len(good), err)
		}
	}
	corrupt := func(name string, f func(b []byte) []byte) {
		b := f(append([]byte(nil), good...))
		if err := ReadEvent(b, &got); !errors.Is(err, ErrCorruptEvent) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	corrupt("trailing byte", func(b []byte) []byte { return append(b, 0) })
	corrupt("unknown format", func(b []byte) []byte { b[0] = 2; return b })
	corrupt("kind 0", func(b []byte) []byte { b[1] = 0; return b })
	corrupt("kind 4", func(b []byte) []byte { b[1] = 4; return b })
	corrupt("status 5", func(b []byte) []byte { b[2] = 5; return b })
	corrupt("msg kind 7", func(b []byte) []byte { b[3] = 7; return b })
	corrupt("flags", func(b []byte) []byte { b[4] = 2; return b })
	corrupt("overlong varint", func(b []byte) []byte {
		return append(b[:5], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)
	})
	// Lengths that wrap around when added must not pass the total check.
	corrupt("huge lengths", func(b []byte) []byte {
		b = append(b[:5], 2, 2, 2, 2)
		for range 2 {
			b = append(b, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01) // 1<<63
		}
		return append(b, 0, 0, 'x')
	})
}
