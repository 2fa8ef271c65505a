package billing

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// benchTraffic is a day of PMP traffic for n customers, in event-time order:
// per message a send record, sent, delivered and read, and some inbound.
func benchTraffic(n, perCustomer int) []Event {
	rng := rand.New(rand.NewPCG(1, 2))
	base := mustTime("2025-08-04T00:00:00Z")
	kinds := []MsgKind{KindMarketing, KindUtility, KindAuthentication, KindNonTemplate}
	var evs []Event
	for c := 0; c < n; c++ {
		cust := uint64(14155550000 + c)
		if c%3 == 1 {
			cust = uint64(5511900000000 + c)
		}
		for i := 0; i < perCustomer; i++ {
			t := base + rng.Int64N(86400)
			id := fmt.Sprintf("wamid.HBgL%012d%04d", c, i)
			if i%4 == 0 {
				evs = append(evs, Event{Kind: Inbound, Time: t, WABA: testWABA, PhoneNumberID: testPN, Customer: cust, MessageID: id})
				continue
			}
			k := kinds[rng.IntN(len(kinds))]
			evs = append(evs,
				Event{Kind: Send, Time: t, WABA: testWABA, PhoneNumberID: testPN, Customer: cust, MessageID: id, MsgKind: k},
				Event{Kind: Status, Status: StatusSent, Time: t, WABA: testWABA, PhoneNumberID: testPN, Customer: cust, MessageID: id, MsgKind: k},
				Event{Kind: Status, Status: StatusDelivered, Time: t + 2, WABA: testWABA, PhoneNumberID: testPN, Customer: cust, MessageID: id, MsgKind: k},
				Event{Kind: Status, Status: StatusRead, Time: t + 60, WABA: testWABA, PhoneNumberID: testPN, Customer: cust, MessageID: id, MsgKind: k})
		}
	}
	slices.SortStableFunc(evs, func(a, b Event) int {
		switch {
		case Less(&a, &b):
			return -1
		case Less(&b, &a):
			return 1
		}
		return 0
	})
	return evs
}

// BenchmarkApply measures the per-key step over a realistic mix (state
// lookup by key included), reporting events/s. Steady state: the states
// exist and have room for their messages; allocs/op must be 0.
func BenchmarkApply(b *testing.B) {
	cat := testCatalog(b)
	evs := benchTraffic(20000, 8)
	eng, _ := New(Config{Catalog: cat})
	states := make(map[Key]*State)
	var out Output
	// Warm up: create every state and grow every buffer once.
	for i := range evs {
		k := KeyOf(&evs[i])
		st := states[k]
		if st == nil {
			st = &State{}
			states[k] = st
		}
		eng.Apply(st, &evs[i], &out)
		out.Reset()
	}
	for _, st := range states {
		st.msgs = slices.Grow(st.msgs[:0], 16)[:0]
		*st = State{msgs: st.msgs}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev := &evs[i%len(evs)]
		if i%len(evs) == 0 && i > 0 {
			b.StopTimer()
			for _, st := range states {
				*st = State{msgs: st.msgs[:0]}
			}
			b.StartTimer()
		}
		eng.Apply(states[KeyOf(ev)], ev, &out)
		if len(out.Units) > 512 {
			out.Reset()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkLedgerPrice measures the account step per unit.
func BenchmarkLedgerPrice(b *testing.B) {
	cat := testCatalog(b)
	evs := benchTraffic(5000, 8)
	h := newHarness(b, cat, "")
	r := h.derive(evs)
	units := r.Charges
	led, _ := NewLedger(cat, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		u := units[i%len(units)]
		led.Price(&u)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "units/s")
}
