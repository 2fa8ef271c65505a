package billing

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

func status(s *scenario, h float64, id string, st StatusKind, k MsgKind) {
	s.events = append(s.events, Event{Kind: Status, Status: st, Time: s.at(h), WABA: s.waba,
		PhoneNumberID: s.pn, Customer: s.cust, MessageID: id, MsgKind: k})
}

func send(s *scenario, h float64, id string, k MsgKind) {
	s.events = append(s.events, Event{Kind: Send, Time: s.at(h), WABA: s.waba,
		PhoneNumberID: s.pn, Customer: s.cust, MessageID: id, MsgKind: k})
}

// A read status proves delivery when Meta skipped delivered; the earliest of
// delivered and read is the delivery instant; repeats bill nothing.
func TestDeliveryIsEarliestDeliveredOrRead(t *testing.T) {
	h := newHarness(t, nil, "")
	s := newScenario(t, "2025-08-04T00:00:00Z")
	send(s, 0, "wamid.a", KindMarketing)
	status(s, 0, "wamid.a", StatusSent, KindUnknown)
	status(s, 1, "wamid.a", StatusRead, KindUnknown) // delivered skipped
	send(s, 2, "wamid.b", KindMarketing)
	status(s, 2.5, "wamid.b", StatusDelivered, KindUnknown)
	status(s, 2.5, "wamid.b", StatusDelivered, KindUnknown) // Meta's retry
	status(s, 30, "wamid.b", StatusRead, KindUnknown)
	send(s, 3, "wamid.c", KindMarketing)
	status(s, 3, "wamid.c", StatusFailed, KindUnknown) // never billed
	mk := rate(t, h.cat, "PMP", "2025-08-04", "NORTH_AMERICA", "marketing")
	s.expect(h, "", "marketing@1h/regular/"+mk+" marketing@9000s/regular/"+mk)
	if h.eng.Stats.RepeatDeliveries != 2 {
		t.Errorf("RepeatDeliveries = %d, want 2", h.eng.Stats.RepeatDeliveries)
	}
}

// The send record is authoritative; else any status's pricing category.
func TestMessageKindSources(t *testing.T) {
	h := newHarness(t, nil, "")
	s := newScenario(t, "2025-08-04T00:00:00Z")
	send(s, 0, "wamid.send-wins", KindUtility)
	status(s, 0, "wamid.send-wins", StatusDelivered, KindMarketing)
	status(s, 1, "wamid.from-sent", StatusSent, KindAuthentication)
	status(s, 1, "wamid.from-sent", StatusDelivered, KindUnknown)
	status(s, 2, "wamid.service", StatusDelivered, KindNonTemplate) // pricing service / referral_conversion
	status(s, 3, "wamid.unknown", StatusDelivered, KindUnknown)
	status(s, 4, "wamid.legacy", StatusDelivered, KindLegacy)
	ut := rate(t, h.cat, "PMP", "2025-08-04", "NORTH_AMERICA", "utility")
	au := rate(t, h.cat, "PMP", "2025-08-04", "NORTH_AMERICA", "authentication")
	s.expect(h, "", "utility@0h/regular/"+ut+" authentication@1h/regular/"+au+" service@2h/free_customer_service/0.000000")
	if h.eng.Stats.UnknownKind != 1 || h.eng.Stats.Legacy != 1 {
		t.Errorf("UnknownKind = %d, Legacy = %d; want 1 and 1", h.eng.Stats.UnknownKind, h.eng.Stats.Legacy)
	}
}

func TestReconciliationFieldsKept(t *testing.T) {
	h := newHarness(t, nil, "")
	s := newScenario(t, "2024-03-04T00:00:00Z")
	s.events = append(s.events, Event{Kind: Status, Status: StatusDelivered, Time: s.at(0), WABA: testWABA,
		PhoneNumberID: testPN, Customer: usCust, MessageID: "wamid.x", MsgKind: KindMarketing,
		MetaConversationID: "conv-123", MetaCategory: "marketing", MetaPricingModel: "CBP"})
	r := h.derive(s.events)
	if len(r.Conversations) != 1 || r.Conversations[0].MetaConversationID != "conv-123" {
		t.Fatalf("conversations %+v: want Meta's conversation id kept", r.Conversations)
	}
	if u := r.Charges[0]; u.MetaConversationID != "conv-123" || u.MetaCategory != "marketing" || u.MetaPricingModel != "CBP" {
		t.Errorf("charge %+v: want Meta's pricing kept", u)
	}
}

// randomTraffic makes a realistic mix for a few customers over a few days
// across the CBP-2024 / PMP switch.
func randomTraffic(rng *rand.Rand, customers int) []Event {
	base := mustTime("2025-06-29T00:00:00Z")
	kinds := []MsgKind{KindMarketing, KindUtility, KindAuthentication, KindNonTemplate, KindNonTemplate}
	var evs []Event
	for c := 0; c < customers; c++ {
		cust := []uint64{usCust, doCust, brCust, inCust, 263771234567}[c%5] + uint64(c)
		pn := uint64(testPN + c%2)
		t := base + rng.Int64N(3600)
		for i := 0; i < 12; i++ {
			t += rng.Int64N(14 * 3600)
			id := fmt.Sprintf("wamid.%d.%d", c, i)
			if rng.IntN(3) == 0 {
				evs = append(evs, Event{Kind: Inbound, Time: t, WABA: testWABA, PhoneNumberID: pn, Customer: cust,
					MessageID: id, Referral: rng.IntN(4) == 0})
				continue
			}
			k := kinds[rng.IntN(len(kinds))]
			if rng.IntN(4) > 0 {
				evs = append(evs, Event{Kind: Send, Time: t, WABA: testWABA, PhoneNumberID: pn, Customer: cust, MessageID: id, MsgKind: k})
			}
			pk := k
			if rng.IntN(3) == 0 {
				pk = KindUnknown
			}
			evs = append(evs, Event{Kind: Status, Status: StatusSent, Time: t, WABA: testWABA, PhoneNumberID: pn, Customer: cust, MessageID: id, MsgKind: pk})
			d := t + rng.Int64N(120)
			if rng.IntN(5) > 0 {
				evs = append(evs, Event{Kind: Status, Status: StatusDelivered, Time: d, WABA: testWABA, PhoneNumberID: pn, Customer: cust, MessageID: id, MsgKind: pk})
			}
			if rng.IntN(2) == 0 {
				evs = append(evs, Event{Kind: Status, Status: StatusRead, Time: d + rng.Int64N(7200), WABA: testWABA, PhoneNumberID: pn, Customer: cust, MessageID: id})
			}
		}
	}
	return evs
}

// Order independence: shuffling arrival order and adding duplicates (Meta's
// retries) changes nothing.
func TestDeriveIsOrderIndependentAndIdempotent(t *testing.T) {
	cat := testCatalog(t)
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		evs := randomTraffic(rng, 25)
		want := newHarness(t, cat, "").derive(evs)
		if len(want.Charges) == 0 || len(want.Conversations) == 0 {
			t.Fatalf("seed %d: traffic derived %d charges and %d conversations; the generator is broken",
				seed, len(want.Charges), len(want.Conversations))
		}
		mixed := slices.Clone(evs)
		for i := 0; i < len(evs)/3; i++ {
			mixed = append(mixed, evs[rng.IntN(len(evs))])
		}
		rng.Shuffle(len(mixed), func(i, j int) { mixed[i], mixed[j] = mixed[j], mixed[i] })
		got := newHarness(t, cat, "").derive(mixed)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: shuffled input with duplicates derived %d charges / %d conversations, sorted input %d / %d",
				seed, len(got.Charges), len(got.Conversations), len(want.Charges), len(want.Conversations))
		}
	}
}

// A state checkpointed mid-stream and restored continues exactly as if it
// had never stopped.
func TestStateSurvivesMarshalRoundTrip(t *testing.T) {
	cat := testCatalog(t)
	rng := rand.New(rand.NewPCG(42, 42))
	evs := randomTraffic(rng, 1)
	slices.SortFunc(evs, func(a, b Event) int {
		switch {
		case Less(&a, &b):
			return -1
		case Less(&b, &a):
			return 1
		}
		return 0
	})
	run := func(split int) Output {
		eng, _ := New(Config{Catalog: cat})
		var st State
		var out Output
		for i := range evs {
			if i == split {
				b, err := st.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				var restored State
				if err := restored.UnmarshalBinary(b); err != nil {
					t.Fatal(err)
				}
				st = restored
			}
			eng.Apply(&st, &evs[i], &out)
		}
		return out
	}
	want := run(-1)
	for split := 1; split < len(evs); split += 3 {
		if got := run(split); !reflect.DeepEqual(got, want) {
			t.Fatalf("restored at event %d: %d units, want %d", split, len(got.Units), len(want.Units))
		}
	}
}

func TestStateUnmarshalRejectsGarbage(t *testing.T) {
	var st State
	st.msgs = append(st.msgs, msgRec{hash: 1, seenAt: 5})
	good, _ := st.MarshalBinary()
	for _, b := range [][]byte{nil, {9}, good[:len(good)-1], append(slices.Clone(good), 0)} {
		var s State
		if err := s.UnmarshalBinary(b); err == nil {
			t.Errorf("UnmarshalBinary(%x) accepted garbage", b)
		}
	}
}

// A flood for one customer is bounded: the oldest messages are forgotten.
func TestMessageMemoryIsBounded(t *testing.T) {
	cat := testCatalog(t)
	eng, _ := New(Config{Catalog: cat, MaxMessagesPerKey: 16})
	var st State
	var out Output
	base := mustTime("2025-08-04T00:00:00Z")
	for i := 0; i < 100; i++ {
		ev := Event{Kind: Status, Status: StatusDelivered, Time: base + int64(i), PhoneNumberID: testPN,
			Customer: usCust, MessageID: fmt.Sprint("wamid.", i), MsgKind: KindMarketing}
		eng.Apply(&st, &ev, &out)
	}
	if st.Messages() > 16 || eng.Stats.MessagesDropped != 84 {
		t.Errorf("remembers %d messages, dropped %d; want <= 16 and 84", st.Messages(), eng.Stats.MessagesDropped)
	}
	if len(out.Units) != 100 {
		t.Errorf("%d units, want 100", len(out.Units))
	}
	if st.Idle(base+100, DefaultMessageMemory) {
		t.Error("a key with recent messages is not idle")
	}
	if !st.Idle(base+100+DefaultMessageMemory, DefaultMessageMemory) {
		t.Error("a key whose messages are all older than the memory is idle")
	}
}

// The ledger's counters survive a checkpoint: pricing continues identically.
func TestLedgerSurvivesMarshalRoundTrip(t *testing.T) {
	cat := testCatalog(t)
	rng := rand.New(rand.NewPCG(5, 5))
	// Derive with a ledger that prices nothing yet: a tier-less catalog
	// still prices, so take the units before pricing from a recording run.
	evs := randomTraffic(rng, 4000)
	for i := range evs {
		evs[i].Time -= 365 * 86400 // CBP-2023: the free tier applies
	}
	eng, _ := New(Config{Catalog: cat})
	var out Output
	var st *State
	var key Key
	slices.SortStableFunc(evs, func(a, b Event) int {
		if c := cmp.Compare(a.Customer, b.Customer); c != 0 {
			return c
		}
		if c := cmp.Compare(a.PhoneNumberID, b.PhoneNumberID); c != 0 {
			return c
		}
		switch {
		case Less(&a, &b):
			return -1
		case Less(&b, &a):
			return 1
		}
		return 0
	})
	for i := range evs {
		if k := KeyOf(&evs[i]); st == nil || k != key {
			st, key = &State{}, k
		}
		eng.Apply(st, &evs[i], &out)
	}
	units := out.Units
	slices.SortStableFunc(units, func(a, b Unit) int {
		if UnitLess(&a, &b) {
			return -1
		}
		if UnitLess(&b, &a) {
			return 1
		}
		return 0
	})
	price := func(split int) []Unit {
		led, _ := NewLedger(cat, nil)
		priced := slices.Clone(units)
		for i := range priced {
			if i == split {
				b, _ := led.MarshalBinary()
				led, _ = NewLedger(cat, nil)
				if err := led.UnmarshalBinary(b); err != nil {
					t.Fatal(err)
				}
			}
			led.Price(&priced[i])
		}
		return priced
	}
	want := price(-1)
	free, paid := 0, 0
	for _, u := range want {
		switch {
		case u.PricingType == PTFreeTier:
			free++
		case u.Category == CatService && u.PricingType == PTRegular:
			paid++
		}
	}
	if free < FreeServicePerMonth || paid == 0 {
		t.Fatalf("%d free-tier and %d paid service units: the traffic does not cross the free tier", free, paid)
	}
	for _, split := range []int{1, len(units) / 2, len(units) - 1} {
		if got := price(split); !reflect.DeepEqual(got, want) {
			t.Fatalf("ledger restored at unit %d prices differently", split)
		}
	}
}

// A message id remembered longer than the message memory is a new message
// when it comes again, whether or not the key added a message (and so
// forgot old ones) in between: the same ids a year apart are billed twice.
func TestMessageOlderThanTheMemoryIsForgotten(t *testing.T) {
	cat := testCatalog(t)
	eng, _ := New(Config{Catalog: cat})
	var st State
	var out Output
	base := mustTime("2025-08-04T00:00:00Z")
	deliver := func(at int64, id string) int {
		out.Reset()
		ev := Event{Kind: Status, Status: StatusDelivered, Time: at, PhoneNumberID: testPN,
			Customer: usCust, MessageID: id, MsgKind: KindMarketing}
		eng.Apply(&st, &ev, &out)
		return len(out.Units)
	}
	if n := deliver(base, "wamid.a"); n != 1 {
		t.Fatalf("first delivery: %d units", n)
	}
	if n := deliver(base+3600, "wamid.a"); n != 0 {
		t.Errorf("the same delivery an hour later (a retry): %d units, want 0", n)
	}
	if n := deliver(base+DefaultMessageMemory+3601, "wamid.a"); n != 1 {
		t.Errorf("the same id past the message memory: %d units, want 1 (a new message)", n)
	}
}
