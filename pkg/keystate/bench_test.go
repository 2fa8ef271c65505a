package keystate

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/pricing"
)

const (
	benchWABA = 102938475610
	benchPN   = 106540352242922
)

// benchCustomers is how many customers the footprint benchmarks hold:
// WAMETER_BENCH_CUSTOMERS, 1 M by default.
func benchCustomers() int {
	if v, err := strconv.Atoi(os.Getenv("WAMETER_BENCH_CUSTOMERS")); err == nil && v > 0 {
		return v
	}
	return 1_000_000
}

func benchEngine(b *testing.B) *billing.Engine {
	cat, err := pricing.Default()
	if err != nil {
		b.Fatal(err)
	}
	eng, err := billing.New(billing.Config{Catalog: cat})
	if err != nil {
		b.Fatal(err)
	}
	return eng
}

// idleCustomer applies to st what a typical idle customer has had: during
// the CBP era, an inbound message (every other customer), then 1 to 3
// delivered marketing templates, the first of which opened a conversation.
func idleCustomer(eng *billing.Engine, st *billing.State, i int, out *billing.Output) {
	t := int64(1741600000) + int64(i%50000) // 2025-03-10, CBP 2024 rules
	cust := uint64(5511900000000 + i)
	if i%2 == 0 {
		eng.Apply(st, &billing.Event{Kind: billing.Inbound, Time: t, WABA: benchWABA, PhoneNumberID: benchPN, Customer: cust,
			MessageID: "wamid.in"}, out)
	}
	for m := 0; m < 1+i%3; m++ {
		id := "wamid.HBgL" + strconv.Itoa(i) + "." + strconv.Itoa(m)
		at := t + 60 + int64(m)*900
		eng.Apply(st, &billing.Event{Kind: billing.Send, Time: at, WABA: benchWABA, PhoneNumberID: benchPN, Customer: cust,
			MessageID: id, MsgKind: billing.KindMarketing}, out)
		eng.Apply(st, &billing.Event{Kind: billing.Status, Status: billing.StatusDelivered, Time: at + 3, WABA: benchWABA,
			PhoneNumberID: benchPN, Customer: cust, MessageID: id, MsgKind: billing.KindMarketing}, out)
	}
	out.Reset()
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func reportFootprint(b *testing.B, before uint64, n int) {
	perCustomer := float64(heapInuse()-before) / float64(n)
	b.ReportMetric(perCustomer, "B/customer")
	b.ReportMetric(perCustomer*10e6/(1<<30), "GiB/10M-customers")
}

// BenchmarkIdleFootprint measures the memory a partition holds per idle
// customer (an open conversation, 1 to 3 remembered messages): HeapInuse
// after a GC, less before, divided by the customers. "map" is the window
// stage's states before this package (a map of *billing.State); "store"
// builds each state in the hot tier and checkpoints it (Binary), as the
// window stage does; all but the last DefaultMaxHot keys end up cold.
func BenchmarkIdleFootprint(b *testing.B) {
	n := benchCustomers()
	b.Run("map", func(b *testing.B) {
		for range b.N {
			eng := benchEngine(b)
			var out billing.Output
			before := heapInuse()
			states := make(map[billing.Key]*billing.State)
			for i := 0; i < n; i++ {
				st := &billing.State{}
				idleCustomer(eng, st, i, &out)
				states[key(uint64(i))] = st
			}
			reportFootprint(b, before, n)
			runtime.KeepAlive(states)
		}
	})
	b.Run("store", func(b *testing.B) {
		for range b.N {
			eng := benchEngine(b)
			var out billing.Output
			before := heapInuse()
			s := New(Config{})
			for i := 0; i < n; i++ {
				k := key(uint64(i))
				st, _ := s.Get(k)
				idleCustomer(eng, st, i, &out)
				s.Binary(k)
			}
			if s.Hot() != DefaultMaxHot || s.Len() != n {
				b.Fatalf("hot %d len %d, want %d and %d", s.Hot(), s.Len(), DefaultMaxHot, n)
			}
			reportFootprint(b, before, n)
			b.ReportMetric(float64(s.Bytes())/float64(n), "estimated-B/customer")
			runtime.KeepAlive(s)
		}
	})
}

// benchTraffic is a day of PMP traffic for n customers, in event-time order:
// per message a send record, sent, delivered and read, and some inbound
// (billing's BenchmarkApply traffic).
func benchTraffic(n, perCustomer int) []billing.Event {
	rng := rand.New(rand.NewPCG(1, 2))
	base := int64(1754265600) // 2025-08-04
	kinds := []billing.MsgKind{billing.KindMarketing, billing.KindUtility, billing.KindAuthentication, billing.KindNonTemplate}
	var evs []billing.Event
	for c := 0; c < n; c++ {
		cust := uint64(14155550000 + c)
		if c%3 == 1 {
			cust = uint64(5511900000000 + c)
		}
		for i := 0; i < perCustomer; i++ {
			t := base + rng.Int64N(86400)
			id := fmt.Sprintf("wamid.HBgL%012d%04d", c, i)
			ev := billing.Event{Time: t, WABA: benchWABA, PhoneNumberID: benchPN, Customer: cust, MessageID: id}
			if i%4 == 0 {
				ev.Kind = billing.Inbound
				evs = append(evs, ev)
				continue
			}
			ev.MsgKind = kinds[rng.IntN(len(kinds))]
			send, sent, delivered, read := ev, ev, ev, ev
			send.Kind = billing.Send
			sent.Kind, sent.Status = billing.Status, billing.StatusSent
			delivered.Kind, delivered.Status, delivered.Time = billing.Status, billing.StatusDelivered, t+2
			read.Kind, read.Status, read.Time = billing.Status, billing.StatusRead, t+60
			evs = append(evs, send, sent, delivered, read)
		}
	}
	slices.SortStableFunc(evs, func(a, b billing.Event) int {
		switch {
		case billing.Less(&a, &b):
			return -1
		case billing.Less(&b, &a):
			return 1
		}
		return 0
	})
	return evs
}

// BenchmarkApply measures the engine's per-event cost with the state looked
// up per event (billing's BenchmarkApply), steady state, allocs/op must be 0:
//
//   - map: a map of *billing.State, as the window stage held them before;
//   - store-allhot: Store.Get, a hot tier large enough for every key;
//   - store: Store.Get with the default hot tier (8192 keys) for 20000
//     customers: most events decode their key from the cold tier, and
//     demote another;
//   - map-batches and store-batches: as the window stage runs, in batches
//     of 1000 events after each of which every changed key is encoded for
//     the checkpoint (Binary).
func BenchmarkApply(b *testing.B) {
	evs := benchTraffic(20000, 8)
	const batch = 1000
	run := func(b *testing.B, get func(billing.Key) *billing.State, endBatch func(dirty map[billing.Key]struct{}), reset func()) {
		eng := benchEngine(b)
		var out billing.Output
		dirty := make(map[billing.Key]struct{})
		lap := func(timed bool) {
			for i := range evs {
				ev := &evs[i]
				k := billing.KeyOf(ev)
				eng.Apply(get(k), ev, &out)
				dirty[k] = struct{}{}
				if len(out.Units) > 512 {
					out.Reset()
				}
				if i%batch == batch-1 && endBatch != nil {
					endBatch(dirty)
					clear(dirty)
				}
			}
		}
		lap(false) // create every state and grow every buffer once
		reset()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			ev := &evs[i%len(evs)]
			if i%len(evs) == 0 && i > 0 {
				b.StopTimer()
				reset()
				b.StartTimer()
			}
			k := billing.KeyOf(ev)
			eng.Apply(get(k), ev, &out)
			if endBatch != nil {
				dirty[k] = struct{}{}
				if i%batch == batch-1 {
					endBatch(dirty)
					clear(dirty)
				}
			}
			if len(out.Units) > 512 {
				out.Reset()
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	}
	mapRun := func(b *testing.B, checkpoint bool) {
		states := make(map[billing.Key]*billing.State)
		get := func(k billing.Key) *billing.State {
			st := states[k]
			if st == nil {
				st = &billing.State{}
				states[k] = st
			}
			return st
		}
		var endBatch func(map[billing.Key]struct{})
		if checkpoint {
			buf := make([]byte, 0, 64<<10)
			endBatch = func(dirty map[billing.Key]struct{}) {
				buf = buf[:0]
				for k := range dirty {
					buf, _ = states[k].AppendBinary(buf)
				}
			}
		}
		run(b, get, endBatch, func() {
			for _, st := range states {
				st.Reset()
			}
		})
	}
	storeRun := func(b *testing.B, maxHot int, checkpoint bool) {
		s := New(Config{MaxHot: maxHot})
		get := func(k billing.Key) *billing.State {
			st, err := s.Get(k)
			if err != nil {
				b.Fatal(err)
			}
			return st
		}
		var endBatch func(map[billing.Key]struct{})
		if checkpoint {
			endBatch = func(dirty map[billing.Key]struct{}) {
				for k := range dirty {
					s.Binary(k)
				}
			}
		}
		run(b, get, endBatch, func() {
			var keys []billing.Key
			s.Range(func(k billing.Key, _ *billing.State) bool { keys = append(keys, k); return true })
			for _, k := range keys {
				st, _ := s.Get(k)
				st.Reset()
			}
		})
	}
	b.Run("map", func(b *testing.B) { mapRun(b, false) })
	b.Run("store-allhot", func(b *testing.B) { storeRun(b, 1<<15, false) })
	b.Run("store", func(b *testing.B) { storeRun(b, 0, false) })
	b.Run("map-batches", func(b *testing.B) { mapRun(b, true) })
	b.Run("store-batches", func(b *testing.B) { storeRun(b, 0, true) })
}

// BenchmarkPut measures a restore's in-memory part per key (what a
// changelog record costs once read): "map" decodes into a new
// *billing.State as the window stage did, "store" checks the state and
// copies it into the cold tier. The changelog holds version 1 states.
func BenchmarkPut(b *testing.B) {
	const n = 1 << 20
	values := make([][]byte, 64)
	for i := range values {
		values[i] = stateBytes(uint64(i), 1+i%3)
	}
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		states := make(map[billing.Key]*billing.State)
		for i := 0; i < b.N; i++ {
			if i%n == 0 {
				states = make(map[billing.Key]*billing.State)
			}
			st := &billing.State{}
			if err := st.UnmarshalBinary(values[i%len(values)]); err != nil {
				b.Fatal(err)
			}
			states[key(uint64(i%n))] = st
		}
	})
	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		s := New(Config{})
		for i := 0; i < b.N; i++ {
			if i%n == 0 {
				s = New(Config{})
			}
			if err := s.Put(key(uint64(i%n)), values[i%len(values)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSweep measures the idle sweep per key over a cold tier.
func BenchmarkSweep(b *testing.B) {
	s := New(Config{})
	const n = 100000
	for i := range uint64(n) {
		s.Put(key(i), stateBytes(i, 1+int(i%3)))
	}
	now := time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC).Unix()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += n {
		s.Sweep(func(_ billing.Key, st *billing.State) bool { return st.Idle(now, billing.DefaultMessageMemory) })
	}
}
