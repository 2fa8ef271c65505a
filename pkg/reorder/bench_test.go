package reorder

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/webhook"
)

// BenchmarkBufferAddRelease buffers a day of shuffled events (about 150k)
// and releases them, as the window stage does when a backfill's lateness
// holds everything until the idle flush; ns/op is per event.
func BenchmarkBufferAddRelease(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	evs := traffic(rng, 4000)
	rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	b.ReportAllocs()
	var n int
	for b.Loop() {
		buf := New(48 * 3600)
		for i := range evs {
			buf.Add(&evs[i], int64(i))
		}
		buf.Release(buf.MaxSeen(), func(*Item) { n++ })
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
	_ = billing.Less
}

// BenchmarkBufferBound adds 5M events over a day of event time, from a
// million customers, with 48 h of lateness so that nothing is released
// before the end (a backfill), then releases them all. It reports events/s
// and the peak HeapInuse sampled along the way: without a bound the heap
// grows with the events, with one it stays near MaxBytes. max-add-ms is
// the longest Add: the one that spills (or grows the heap) stalls the
// partition that long.
func BenchmarkBufferBound(b *testing.B) {
	const events = 5_000_000
	for _, o := range []struct {
		name     string
		maxBytes int64
	}{{"memory", 0}, {"spill-64MiB", 64 << 20}} {
		b.Run(o.name, func(b *testing.B) {
			var peak uint64
			var slowest time.Duration
			var st Stats
			var ms runtime.MemStats
			sample := func() {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
			rng := rand.New(rand.NewPCG(5, 5))
			id := []byte("wamid.HBgLMTQxNTU1NTAxMjMVAgASGBQzQTJCM0Q0RTVGNjA3MTgyOTNB")
			prefix := len(id)
			n := 0
			for b.Loop() {
				buf, err := NewWithOptions(48*3600, Options{SpillDir: b.TempDir(), MaxBytes: o.maxBytes})
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				base := int64(1751155200)
				for i := range events {
					ev := billing.Event{Kind: billing.Status, Status: billing.StatusDelivered, WABA: 9, PhoneNumberID: 1065000,
						Customer: 14155550000 + rng.Uint64N(1_000_000), Time: base + int64(i)*86400/events + rng.Int64N(600),
						MetaCategory: "marketing", MetaPricingModel: "PMP"}
					// Its own message id string, as a decoded event has.
					ev.MessageID = string(strconv.AppendUint(id[:prefix], uint64(i), 10))
					start := time.Now()
					buf.Add(&ev, int64(i))
					slowest = max(slowest, time.Since(start))
					if i%1000 == 999 {
						buf.Release(buf.Ready(), func(*Item) {})
					}
					if i%250_000 == 0 {
						sample()
					}
				}
				if err := buf.Err(); err != nil {
					b.Fatal(err)
				}
				sample()
				st = buf.Stats()
				buf.Release(buf.MaxSeen(), func(*Item) { n++ })
				sample()
				if err := errors.Join(buf.Err(), buf.Close()); err != nil {
					b.Fatal(err)
				}
			}
			if n != events*b.N {
				b.Fatalf("released %d events of %d", n, events*b.N)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(st.WrittenBytes)/(1<<20), "written-MiB")
			b.ReportMetric(float64(st.Merges), "merges")
			b.ReportMetric(float64(slowest.Microseconds())/1000, "max-add-ms")
		})
	}
}

// BenchmarkBufferStreaming is a busy window partition in a backfill on the
// default lateness: a million events over five hours of event time (55 per
// second, so most comparisons are ties on the second), arriving encoded and
// shuffled within the 10 minutes of lateness, decoded as the window does
// (a view) and added, released to the watermark after every 5,000.
// ns/event is per event decoded, added and released.
func BenchmarkBufferStreaming(b *testing.B) {
	const events, lateness = 1_000_000, 600
	rng := rand.New(rand.NewPCG(9, 9))
	base := int64(1754265600)
	evs := make([]billing.Event, events)
	keys := make([]int64, events)
	for i := range evs {
		t := base + int64(i)*5*3600/events
		evs[i] = billing.Event{Kind: billing.Status, Status: billing.StatusDelivered, WABA: 9, PhoneNumberID: 106540352242922 + rng.Uint64N(4),
			Customer: 5511900000000 + rng.Uint64N(200_000), Time: t, MessageID: "wamid.HBgNNTUxMTk1NDY3MzI5MhUCABEYEk" + strconv.Itoa(i)}
		keys[i] = t + rng.Int64N(lateness)
	}
	order := make([]int, events)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int { return int(keys[x] - keys[y]) })
	// As the window stage gets them: encoded, in arrival order.
	encoded := make([][]byte, events)
	for i, j := range order {
		encoded[i] = webhook.AppendEvent(nil, &evs[j])
	}
	b.ReportAllocs()
	n := 0
	release := func(it *Item) { n += len(it.Event.MessageID) & 1 }
	for b.Loop() {
		buf := New(lateness)
		var ev billing.Event
		for i, enc := range encoded {
			if err := webhook.ReadEventView(enc, &ev); err != nil {
				b.Fatal(err)
			}
			buf.AddEncoded(&ev, enc, int64(i))
			if i%5000 == 4999 {
				buf.Release(buf.Ready(), release)
			}
		}
		buf.Release(buf.MaxSeen(), release)
		if buf.Len() != 0 {
			b.Fatalf("%d events left", buf.Len())
		}
	}
	_ = n
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events*b.N), "ns/event")
}
