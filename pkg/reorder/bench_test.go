package reorder

import (
	"math/rand/v2"
	"testing"

	"github.com/wameter/wameter/pkg/billing"
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
