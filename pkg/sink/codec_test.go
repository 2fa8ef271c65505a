package sink

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wameter/wameter/pkg/billing"
)

func sampleConversation() billing.Conversation {
	return billing.Conversation{
		WABA:               102290129340398,
		PhoneNumberID:      106540352242922,
		Customer:           16315551181,
		Market:             "US",
		Category:           billing.CatMarketing,
		Model:              billing.CBP,
		RuleSet:            billing.RulesCBP2024,
		OpenedAt:           1733050800, // 2024-12-01 11:00:00 UTC
		ExpiresAt:          1733137200,
		OpeningMessageID:   "wamid.HBgLMTYzMTU1NTExODEVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
		MetaConversationID: "4a3d7bd6b5b2c1e0f1e2d3c4b5a69788",
	}
}

func sampleUnit() billing.Unit {
	return billing.Unit{
		WABA:                 102290129340398,
		PhoneNumberID:        106540352242922,
		Customer:             919876543210,
		Market:               "IN",
		Category:             billing.CatUtility,
		Model:                billing.PMP,
		RuleSet:              billing.RulesPMP2025,
		PricingType:          billing.PTRegular,
		BillingUnit:          billing.UnitMessage,
		ChargedAt:            1752000000,
		MessageID:            "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSQUJDREVGMDEyMzQ1Njc4OQA=",
		ConversationCategory: billing.CatUtility,
		ConversationOpenedAt: 1751990000,
		MetaConversationID:   "c0ffee",
		MetaCategory:         "utility",
		MetaPricingModel:     "PMP",
		Currency:             "INR",
		AmountMicro:          115000, // 0.115000
		RateCard:             "2025-07-01",
		Tier:                 3,
	}
}

func TestConversationRowRoundTrip(t *testing.T) {
	c := sampleConversation()
	b := AppendConversationRow([]byte("prefix"), &c, 7)
	if string(b[:6]) != "prefix" {
		t.Fatalf("dst not kept: %q", b[:6])
	}
	var r Row
	if err := DecodeRow(b[6:], &r); err != nil {
		t.Fatal(err)
	}
	id := c.ID()
	want := ConversationRow{
		ConversationID:     id.String(),
		WABAID:             "102290129340398",
		PortfolioID:        "7",
		PhoneNumberID:      "106540352242922",
		CustomerWaID:       "16315551181",
		Market:             "US",
		Category:           "marketing",
		PricingModel:       "CBP",
		RuleSet:            "CBP-2024-11",
		OpenedAt:           time.Date(2024, 12, 1, 11, 0, 0, 0, time.UTC),
		ExpiresAt:          time.Date(2024, 12, 2, 11, 0, 0, 0, time.UTC),
		OpeningMessageID:   c.OpeningMessageID,
		MetaConversationID: c.MetaConversationID,
	}
	if r.Table != TableConversations || r.Conversation != want {
		t.Fatalf("decoded\n%+v\nwant\n%+v", r, want)
	}
	if got := r.Key(); string(got) != string(id[:]) {
		t.Fatalf("Key = %x, want %x", got, id[:])
	}
}

func TestChargeRowRoundTrip(t *testing.T) {
	f := func(name string, u billing.Unit, portfolio uint64, want ChargeRow) {
		t.Helper()
		var r Row
		if err := DecodeRow(AppendChargeRow(nil, &u, portfolio), &r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Table != TableCharges || r.Charge != want {
			t.Fatalf("%s: decoded\n%+v\nwant\n%+v", name, r.Charge, want)
		}
		id := u.ID()
		if string(r.Key()) != string(id[:]) {
			t.Fatalf("%s: Key = %x, want %x", name, r.Key(), id[:])
		}
	}

	u := sampleUnit()
	conv, _ := u.ConversationID()
	id := u.ID()
	f("pmp message", u, 0, ChargeRow{
		ChargeID:           id.String(),
		WABAID:             "102290129340398",
		PortfolioID:        "",
		PhoneNumberID:      "106540352242922",
		CustomerWaID:       "919876543210",
		Market:             "IN",
		Category:           "utility",
		PricingModel:       "PMP",
		PricingType:        "regular",
		BillingUnit:        "message",
		ConversationID:     conv.String(),
		MessageID:          u.MessageID,
		ChargedAt:          time.Unix(1752000000, 0).UTC(),
		Currency:           "INR",
		AmountMicro:        115000,
		RateCard:           "2025-07-01",
		Tier:               3,
		RuleSet:            "PMP-2025-07",
		MetaConversationID: "c0ffee",
		MetaCategory:       "utility",
		MetaPricingModel:   "PMP",
	})

	free := billing.Unit{
		WABA: 0, PhoneNumberID: 1, Customer: 2, Market: "OTHER",
		Category: billing.CatService, Model: billing.PMP, RuleSet: billing.RulesPMP2025,
		PricingType: billing.PTFreeCustomerService, BillingUnit: billing.UnitMessage,
		ChargedAt: 1752000001, MessageID: "m", Currency: "USD", AmountMicro: 0,
	}
	freeID := free.ID()
	f("free, no conversation, unknown waba", free, 0, ChargeRow{
		ChargeID: freeID.String(), PhoneNumberID: "1", CustomerWaID: "2", Market: "OTHER",
		Category: "service", PricingModel: "PMP", PricingType: "free_customer_service",
		BillingUnit: "message", MessageID: "m", ChargedAt: time.Unix(1752000001, 0).UTC(),
		Currency: "USD", RuleSet: "PMP-2025-07",
	})

	big := sampleUnit()
	big.AmountMicro = -maxAmountMicro
	big.Tier = 65535
	want := ChargeRow{}
	{
		var r Row
		if err := DecodeRow(AppendChargeRow(nil, &big, 1), &r); err != nil {
			t.Fatal(err)
		}
		want = r.Charge
	}
	if want.AmountMicro != -maxAmountMicro || want.Tier != 65535 {
		t.Fatalf("extremes: amount %d tier %d", want.AmountMicro, want.Tier)
	}
}

// TestEncodingGolden pins format 1, including pkg/billing's enumeration
// values it carries: if this fails, old records on the rows topic would
// decode differently, so add a new format instead of changing this one.
func TestEncodingGolden(t *testing.T) {
	c := billing.Conversation{
		WABA: 1, PhoneNumberID: 2, Customer: 3, Market: "BR",
		Category: billing.CatAuthenticationIntl, Model: billing.CBP, RuleSet: billing.RulesCBP2023,
		OpenedAt: 1700000000, ExpiresAt: 1700086400, OpeningMessageID: "m1",
	}
	u := billing.Unit{
		WABA: 1, PhoneNumberID: 2, Customer: 3, Market: "BR",
		Category: billing.CatMarketing, Model: billing.CBP, RuleSet: billing.RulesCBP2023,
		PricingType: billing.PTFreeTier, BillingUnit: billing.UnitConversation,
		ChargedAt: 1700000000, ConversationCategory: billing.CatMarketing, ConversationOpenedAt: 1700000000,
		MessageID: "m1", Currency: "BRL", AmountMicro: -1, RateCard: "r", Tier: 1,
	}
	cid, uid := c.ID(), u.ID()
	conv, _ := u.ConversationID()
	f := func(name string, got []byte, want string) {
		t.Helper()
		if h := hex.EncodeToString(got); h != want {
			t.Errorf("%s:\n got %s\nwant %s", name, h, want)
		}
	}
	f("conversation", AppendConversationRow(nil, &c, 9),
		"0101"+hex.EncodeToString(cid[:])+"09010203"+"024252"+"040101"+
			"80c49fd50c"+"808aaad50c"+"026d31"+"00")
	f("charge", AppendChargeRow(nil, &u, 9),
		"0102"+hex.EncodeToString(uid[:])+"09010203"+"024252"+"0101010301"+"80c49fd50c"+
			"01"+hex.EncodeToString(conv[:])+"026d31"+"00"+"00"+"00"+"0342524c"+"01"+"0172"+"01")
}

func TestDecodeRowRejects(t *testing.T) {
	c := sampleConversation()
	u := sampleUnit()
	validConv := AppendConversationRow(nil, &c, 7)
	validCharge := AppendChargeRow(nil, &u, 7)

	f := func(name string, b []byte, wantErr string) {
		t.Helper()
		r := Row{Table: TableCharges, Charge: ChargeRow{ChargeID: "stale"}} // must be cleared
		err := DecodeRow(b, &r)
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		if !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("%s: error %q, want it to contain %q", name, err, wantErr)
		}
		if r != (Row{}) {
			t.Fatalf("%s: row not cleared on error: %+v", name, r)
		}
	}
	f("nil", nil, "truncated")
	f("one byte", []byte{1}, "truncated")
	f("unknown format", append([]byte{2}, validConv[1:]...), "unknown format 2")
	f("unknown row type", append([]byte{1, 3}, validConv[2:]...), "unknown row type 3")
	f("trailing byte", append(append([]byte{}, validConv...), 0), "1 trailing bytes")

	for n := 2; n < len(validConv); n++ {
		err := DecodeRow(validConv[:n], new(Row))
		if !errors.Is(err, errTruncated) {
			t.Fatalf("conversation cut to %d bytes: %v, want truncated", n, err)
		}
	}
	for n := 2; n < len(validCharge); n++ {
		err := DecodeRow(validCharge[:n], new(Row))
		if !errors.Is(err, errTruncated) {
			t.Fatalf("charge cut to %d bytes: %v, want truncated", n, err)
		}
	}

	enc := func(mod func(u *billing.Unit)) []byte {
		v := sampleUnit()
		mod(&v)
		return AppendChargeRow(nil, &v, 7)
	}
	f("unknown category", enc(func(u *billing.Unit) { u.Category = 200 }), "category: unknown category 200")
	f("unknown model", enc(func(u *billing.Unit) { u.Model = 3 }), "pricing_model: unknown pricing model 3")
	f("unknown rule set", enc(func(u *billing.Unit) { u.RuleSet = 9 }), "rule_set: unknown rule set 9")
	f("chargeable placeholder", enc(func(u *billing.Unit) { u.PricingType = billing.PTChargeable }), "not a charge's pricing type")
	f("no pricing type", enc(func(u *billing.Unit) { u.PricingType = billing.PTNone }), "not a charge's pricing type")
	f("unknown pricing type", enc(func(u *billing.Unit) { u.PricingType = 99 }), "not a charge's pricing type")
	f("no billing unit", enc(func(u *billing.Unit) { u.BillingUnit = 0 }), "unknown billing unit 0")
	f("amount overflow", enc(func(u *billing.Unit) { u.AmountMicro = maxAmountMicro + 1 }), "outside Decimal(18,6)")
	f("negative amount overflow", enc(func(u *billing.Unit) { u.AmountMicro = -maxAmountMicro - 1 }), "outside Decimal(18,6)")
	f("tier overflow", enc(func(u *billing.Unit) { u.Tier = 65536 }), "tier: 65536 outside UInt16")
	f("negative tier", enc(func(u *billing.Unit) { u.Tier = -1 }), "outside UInt16")
	f("negative time", enc(func(u *billing.Unit) { u.ChargedAt = -1 }), "charged_at: -1 outside DateTime's range")
	f("time after 2106", enc(func(u *billing.Unit) { u.ChargedAt = 1 << 32 }), "outside DateTime's range")

	badPresence := enc(func(*billing.Unit) {})
	// header(2) + id(16) + 4 uvarints + market + 5 enum bytes + charged_at
	off := 2 + 16
	for range 4 {
		for badPresence[off] >= 0x80 {
			off++
		}
		off++
	}
	off += 1 + len("IN") + 5 + 5 // 1752000000 takes 5 varint bytes
	if badPresence[off] != 1 {
		t.Fatalf("test bug: presence byte at %d is %d", off, badPresence[off])
	}
	badPresence[off] = 2
	f("bad presence byte", badPresence, "presence byte 2")

	overlong := append([]byte{1, 1}, make([]byte, 16)...)
	overlong = append(overlong, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)
	f("varint overflow", overlong, "varint overflows 64 bits")

	hugeString := append([]byte{1, 1}, make([]byte, 16)...)
	hugeString = append(hugeString, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 'x')
	f("string longer than message", hugeString, "market: truncated")
}

func FuzzDecodeRow(f *testing.F) {
	c := sampleConversation()
	u := sampleUnit()
	f.Add(AppendConversationRow(nil, &c, 7))
	f.Add(AppendChargeRow(nil, &u, 7))
	u.ConversationOpenedAt = 0
	u.PricingType = billing.PTFreeTier
	f.Add(AppendChargeRow(nil, &u, 0))
	f.Add([]byte{})
	f.Add([]byte{1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Row
		if err := DecodeRow(b, &r); err != nil {
			if r != (Row{}) {
				t.Fatalf("row not cleared on error %v", err)
			}
			return
		}
		// Whatever decodes is a row ClickHouse stores as given.
		if len(r.Key()) != 16 {
			t.Fatalf("decoded row with bad id %q", r.ID())
		}
		var at []time.Time
		switch r.Table {
		case TableConversations:
			at = []time.Time{r.Conversation.OpenedAt, r.Conversation.ExpiresAt}
		case TableCharges:
			at = []time.Time{r.Charge.ChargedAt}
			if r.Charge.AmountMicro > maxAmountMicro || r.Charge.AmountMicro < -maxAmountMicro {
				t.Fatalf("amount %d out of range", r.Charge.AmountMicro)
			}
			if id := r.Charge.ConversationID; id != "" {
				if _, ok := parseID(id); !ok {
					t.Fatalf("bad conversation id %q", id)
				}
			}
		default:
			t.Fatalf("decoded table %d", r.Table)
		}
		for _, tm := range at {
			if tm.Unix() < 0 || tm.Unix() > maxDateTime || tm.Location() != time.UTC {
				t.Fatalf("time %v out of range", tm)
			}
		}
		// A valid row is rejected whole once cut.
		if err := DecodeRow(b[:len(b)-1], new(Row)); err == nil {
			t.Fatalf("truncated row decoded")
		}
	})
}

func BenchmarkEncodeChargeRow(b *testing.B) {
	u := sampleUnit()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendChargeRow(buf[:0], &u, 7)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeChargeRow(b *testing.B) {
	u := sampleUnit()
	buf := AppendChargeRow(nil, &u, 7)
	var r Row
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if err := DecodeRow(buf, &r); err != nil {
			b.Fatal(err)
		}
	}
}
