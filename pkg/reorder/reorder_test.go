package reorder

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/pricing"
)

func traffic(rng *rand.Rand, customers int) []billing.Event {
	base := int64(1751155200) // 2025-06-29T00:00:00Z: spans the switch to PMP
	kinds := []billing.MsgKind{billing.KindMarketing, billing.KindUtility, billing.KindAuthentication, billing.KindNonTemplate}
	var evs []billing.Event
	for c := 0; c < customers; c++ {
		cust := uint64(14155550000 + c)
		if c%2 == 1 {
			cust = uint64(5511900000000 + c)
		}
		pn := uint64(1065000 + c%3)
		t := base + rng.Int64N(3600)
		for i := 0; i < 15; i++ {
			t += rng.Int64N(10 * 3600)
			id := fmt.Sprintf("wamid.%d.%d", c, i)
			if rng.IntN(3) == 0 {
				evs = append(evs, billing.Event{Kind: billing.Inbound, Time: t, WABA: 9, PhoneNumberID: pn, Customer: cust, MessageID: id, Referral: rng.IntN(5) == 0})
				continue
			}
			k := kinds[rng.IntN(len(kinds))]
			evs = append(evs,
				billing.Event{Kind: billing.Send, Time: t, WABA: 9, PhoneNumberID: pn, Customer: cust, MessageID: id, MsgKind: k},
				billing.Event{Kind: billing.Status, Status: billing.StatusDelivered, Time: t + rng.Int64N(30), WABA: 9, PhoneNumberID: pn, Customer: cust, MessageID: id},
				billing.Event{Kind: billing.Status, Status: billing.StatusRead, Time: t + 30 + rng.Int64N(3000), WABA: 9, PhoneNumberID: pn, Customer: cust, MessageID: id})
		}
	}
	return evs
}

// streamed runs arrivals through a Buffer per partition (by customer), the
// engine and then the ledger in unit order, as the pipeline does.
// A positive maxBytes bounds each buffer's memory.
func streamed(t *testing.T, cat *pricing.Catalog, arrivals []billing.Event, lateness int64, partitions int, maxBytes int64) billing.Result {
	t.Helper()
	eng, _ := billing.New(billing.Config{Catalog: cat})
	led, _ := billing.NewLedger(cat, nil)
	bufs := make([]*Buffer, partitions)
	for i := range bufs {
		var err error
		if bufs[i], err = NewWithOptions(lateness, Options{SpillDir: t.TempDir(), MaxBytes: maxBytes, MaxRuns: 4}); err != nil {
			t.Fatal(err)
		}
	}
	states := map[billing.Key]*billing.State{}
	var out billing.Output
	apply := func(it *Item) {
		k := billing.KeyOf(&it.Event)
		st := states[k]
		if st == nil {
			st = &billing.State{}
			states[k] = st
		}
		eng.Apply(st, &it.Event, &out)
	}
	for i := range arrivals {
		b := bufs[arrivals[i].Customer%uint64(partitions)]
		if !b.Add(&arrivals[i], int64(i)) {
			t.Fatalf("event %d (time %d) refused as late; released %d", i, arrivals[i].Time, b.Released())
		}
		b.Release(b.Ready(), apply)
	}
	var spills int64
	for _, b := range bufs {
		spills += b.Stats().Spills
		b.Release(b.MaxSeen(), apply)
		if err := errors.Join(b.Err(), b.Close()); err != nil {
			t.Fatal(err)
		}
	}
	if maxBytes > 0 && spills < 10 {
		t.Fatalf("%d spills: the test needs more", spills)
	}
	slices.SortStableFunc(out.Units, func(a, b billing.Unit) int {
		switch {
		case billing.UnitLess(&a, &b):
			return -1
		case billing.UnitLess(&b, &a):
			return 1
		}
		return 0
	})
	for i := range out.Units {
		led.Price(&out.Units[i])
	}
	return billing.Result{Conversations: out.Conversations, Charges: out.Units}
}

// shuffle returns evs in an arrival order shuffled within the lateness,
// with Meta's retries (a quarter of the events arrive twice).
func shuffle(rng *rand.Rand, evs []billing.Event, lateness int64) []billing.Event {
	type arrival struct {
		ev  billing.Event
		key int64
	}
	var arr []arrival
	for _, e := range evs {
		arr = append(arr, arrival{e, e.Time + rng.Int64N(lateness)})
		if rng.IntN(4) == 0 { // Meta's retry
			arr = append(arr, arrival{e, e.Time + rng.Int64N(lateness)})
		}
	}
	slices.SortStableFunc(arr, func(a, b arrival) int { return int(a.key - b.key) })
	out := make([]billing.Event, len(arr))
	for i := range arr {
		out[i] = arr[i].ev
	}
	return out
}

// Property: arrival order shuffled within the lateness bound, with
// duplicates, through any number of partitions, spilling or not, gives
// what sorted input gives.
func TestStreamedEqualsSortedWithinLateness(t *testing.T) {
	cat, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	const lateness = 600
	for seed := uint64(1); seed <= 10; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		evs := traffic(rng, 30)
		eng, _ := billing.New(billing.Config{Catalog: cat})
		led, _ := billing.NewLedger(cat, nil)
		want := billing.Derive(slices.Clone(evs), eng, led)
		if len(want.Charges) == 0 {
			t.Fatal("generator derived no charges")
		}

		arrivals := shuffle(rng, evs, lateness)
		for _, c := range []struct {
			parts    int
			maxBytes int64
		}{{1, 0}, {3, 0}, {8, 0}, {1, 512}, {3, 512}} {
			parts := c.parts
			got := streamed(t, cat, arrivals, lateness, parts, c.maxBytes)
			// Conversations come out in release order per partition: compare as sets.
			sortConvs(got.Conversations)
			sortConvs(want.Conversations)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d, %d partitions, max bytes %d: streamed %d charges / %d conversations, sorted %d / %d",
					seed, parts, c.maxBytes, len(got.Charges), len(got.Conversations), len(want.Charges), len(want.Conversations))
			}
		}
	}
}

func sortConvs(cs []billing.Conversation) {
	slices.SortFunc(cs, func(a, b billing.Conversation) int {
		x, y := a.ID(), b.ID()
		return slices.Compare(x[:], y[:])
	})
}

func TestLateEventsAreRefused(t *testing.T) {
	b := New(60)
	ev := func(t int64) *billing.Event {
		return &billing.Event{Kind: billing.Inbound, Time: t, MessageID: fmt.Sprint(t)}
	}
	var got []int64
	rel := func(it *Item) { got = append(got, it.Event.Time) }
	for _, at := range []int64{100, 130, 90, 200} {
		if !b.Add(ev(at), 0) {
			t.Fatalf("event at %d refused", at)
		}
		b.Release(b.Ready(), rel)
	}
	// maxSeen 200, released up to 140: 100, 130, 90 released in order.
	if want := []int64{90, 100, 130}; !reflect.DeepEqual(got, want) {
		t.Errorf("released %v, want %v", got, want)
	}
	if b.Add(ev(140), 0) {
		t.Error("an event at the released watermark was accepted")
	}
	if !b.Add(ev(141), 0) {
		t.Error("an event after the released watermark was refused")
	}
	if b.MinOffset() != 0 || b.Len() != 2 {
		t.Errorf("buffer holds %d events, min offset %d", b.Len(), b.MinOffset())
	}
}

// MinOffset tracks the oldest buffered input offset as events are released
// in event-time order, which is not offset order; it agrees with a scan.
func TestMinOffsetFollowsReleases(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	b := New(100)
	scan := func() int64 {
		m := int64(-1)
		b.each(func(e *entry) {
			if o := e.offset; m < 0 || o < m {
				m = o
			}
		})
		return m
	}
	for off := int64(0); off < 5000; off++ {
		ev := billing.Event{Kind: billing.Inbound, Time: 1000 + off/3 + rng.Int64N(90), MessageID: fmt.Sprint(off)}
		if !b.Add(&ev, off/2) { // two events per record offset, as offsets repeat in tests
			continue
		}
		if off%7 == 0 {
			b.Release(b.Ready(), func(*Item) {})
		}
		if got, want := b.MinOffset(), scan(); got != want {
			t.Fatalf("after offset %d: MinOffset %d, scan %d", off, got, want)
		}
	}
	b.Release(b.MaxSeen(), func(*Item) {})
	if b.MinOffset() != -1 {
		t.Errorf("empty buffer: MinOffset %d", b.MinOffset())
	}
}

// Property: events added in any order, several to a second and to a bucket
// that was partly released already, come out in compare order, the same
// whatever the watermarks Release was called with. Times stay within a few
// buckets, so that most adds land in a bucket holding sorted and unsorted
// entries and most releases stop inside one.
func TestReleaseOrderWithinBuckets(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 11))
		const lateness = 40
		b := New(lateness)
		var want, got []Item
		merges := 0
		for i := range 3000 {
			// Mostly increasing, some behind: within the lateness of the
			// highest time so far, never at or behind the released watermark.
			t0 := int64(1000 + i/20)
			ev := billing.Event{Kind: billing.EventKind(1 + rng.IntN(3)), Time: t0 - rng.Int64N(lateness), PhoneNumberID: 1 + rng.Uint64N(2),
				Customer: 1 + rng.Uint64N(3), MessageID: fmt.Sprint(rng.IntN(50)), Status: billing.StatusKind(rng.IntN(3))}
			if ev.Time <= b.Released() {
				continue
			}
			off := int64(i / 3)
			bk := b.buckets[ev.Time>>bucketShift]
			if bk != nil && bk.head > 0 {
				merges++
			}
			if !b.Add(&ev, off) {
				t.Fatalf("event %d refused", i)
			}
			want = append(want, Item{Event: ev, Offset: off})
			if rng.IntN(7) == 0 {
				b.Release(b.Ready()-rng.Int64N(lateness), func(it *Item) { got = append(got, *it) })
			}
		}
		b.Release(b.MaxSeen(), func(it *Item) { got = append(got, *it) })
		slices.SortFunc(want, func(x, y Item) int { return compare(&x.Event, x.Offset, &y.Event, y.Offset) })
		if len(got) != len(want) {
			t.Fatalf("seed %d: released %d events, added %d", seed, len(got), len(want))
		}
		for i := range got {
			if compare(&got[i].Event, got[i].Offset, &want[i].Event, want[i].Offset) != 0 {
				t.Fatalf("seed %d: event %d released is %+v, want %+v", seed, i, got[i], want[i])
			}
		}
		if merges < 100 {
			t.Fatalf("seed %d: only %d adds to a partly released bucket: the test needs more", seed, merges)
		}
		if b.Len() != 0 || len(b.buckets) != 0 || len(b.keys) != 0 {
			t.Fatalf("seed %d: empty buffer holds %d events, %d buckets, %d keys", seed, b.Len(), len(b.buckets), len(b.keys))
		}
	}
}
