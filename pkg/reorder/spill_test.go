package reorder

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/webhook"
)

// arrivals returns traffic shuffled within the lateness, with Meta's
// retries, and the input offset of each: increasing, two events per
// offset, or in no order.
func arrivals(rng *rand.Rand, customers int, lateness int64, offsets string) ([]billing.Event, []int64) {
	evs := traffic(rng, customers)
	for i := range evs {
		if evs[i].Kind == billing.Status && rng.IntN(2) == 0 {
			evs[i].MetaConversationID = strings.Repeat(fmt.Sprintf("%x", rng.Uint64()), 1+rng.IntN(12))
			evs[i].MetaCategory, evs[i].MetaPricingModel = "marketing", "PMP"
		}
	}
	out := shuffle(rng, evs, lateness)
	offs := make([]int64, len(out))
	for i := range out {
		switch offsets {
		case "increasing":
			offs[i] = int64(i)
		case "repeating":
			offs[i] = int64(i / 2)
		case "unordered":
			offs[i] = rng.Int64N(int64(len(out)))
		}
	}
	return out, offs
}

// Property: with a memory bound small enough for many runs and merges,
// with releases between random numbers of adds, the buffer releases
// exactly what it releases without the bound, which is the input sorted;
// MinOffset is never above the lowest offset buffered, and Len counts
// every event buffered.
func TestSpilledReleaseEqualsSorted(t *testing.T) {
	const lateness = 3 * 3600
	for _, offsets := range []string{"increasing", "repeating", "unordered"} {
		for seed := uint64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("%s/%d", offsets, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 7))
				evs, offs := arrivals(rng, 40, lateness, offsets)
				want := make([]Item, len(evs))
				for i := range evs {
					want[i] = Item{Event: evs[i], Offset: offs[i]}
				}
				slices.SortStableFunc(want, func(a, b Item) int {
					if before(&a.Event, a.Offset, &b.Event, b.Offset) {
						return -1
					}
					if before(&b.Event, b.Offset, &a.Event, a.Offset) {
						return 1
					}
					return 0
				})
				releaseEvery := make([]int, len(evs))
				for i := range releaseEvery {
					releaseEvery[i] = rng.IntN(20)
				}

				run := func(b *Buffer) []Item {
					t.Helper()
					buffered := map[int64]int{}
					var got []Item
					rel := func(it *Item) {
						got = append(got, *it)
						if buffered[it.Offset]--; buffered[it.Offset] == 0 {
							delete(buffered, it.Offset)
						}
					}
					check := func(step int) {
						t.Helper()
						if err := b.Err(); err != nil {
							t.Fatalf("step %d: %v", step, err)
						}
						trueMin := int64(-1)
						n := 0
						for o, c := range buffered {
							if trueMin < 0 || o < trueMin {
								trueMin = o
							}
							n += c
						}
						if m := b.MinOffset(); m > trueMin || (trueMin < 0) != (m < 0) {
							t.Fatalf("step %d: MinOffset %d, lowest buffered offset %d", step, m, trueMin)
						}
						if b.Len() != n {
							t.Fatalf("step %d: Len %d, %d events buffered", step, b.Len(), n)
						}
						if st := b.Stats(); b.sp != nil && (st.Runs > b.sp.maxRuns || st.MemoryBytes > b.maxBytes) {
							t.Fatalf("step %d: %d runs (at most %d), %d bytes in memory (at most %d)",
								step, st.Runs, b.sp.maxRuns, st.MemoryBytes, b.maxBytes)
						}
					}
					for i := range evs {
						if !b.Add(&evs[i], offs[i]) {
							t.Fatalf("event %d (time %d) refused as late; released %d", i, evs[i].Time, b.Released())
						}
						buffered[offs[i]]++
						if releaseEvery[i] == 0 {
							check(i)
							b.Release(b.Ready(), rel)
							check(i)
						}
					}
					b.Release(b.MaxSeen(), rel)
					check(len(evs))
					return got
				}

				inMemory := run(New(lateness))
				if !reflect.DeepEqual(inMemory, want) {
					t.Fatalf("without a bound: released %d events, not in sorted order", len(inMemory))
				}
				for _, o := range []Options{
					{MaxBytes: 8 << 10, MaxRuns: 3},
					{MaxBytes: 2 << 10, MaxRuns: 5, ReadBuffer: 64}, // records longer than the read buffer
				} {
					o.SpillDir = t.TempDir()
					b, err := NewWithOptions(lateness, o)
					if err != nil {
						t.Fatal(err)
					}
					spilled := run(b)
					st := b.Stats()
					if st.Spills < 10 || st.Merges < 3 {
						t.Errorf("%+v: %d spills and %d merges; the test needs more", o, st.Spills, st.Merges)
					}
					if st.Runs != 0 || st.SpilledEvents != 0 || st.MemoryEvents != 0 || st.MemoryBytes != 0 {
						t.Errorf("%+v: all released, yet %+v", o, st)
					}
					if !reflect.DeepEqual(spilled, want) {
						i := 0
						for i < min(len(spilled), len(want)) && reflect.DeepEqual(spilled[i], want[i]) {
							i++
						}
						t.Fatalf("%+v: released %d events, want %d; first difference at %d", o, len(spilled), len(want), i)
					}
					if err := b.Close(); err != nil {
						t.Fatal(err)
					}
				}
			})
		}
	}
}

// spillSome returns a buffer in dir holding n events of which some were
// written to run files.
func spillSome(t *testing.T, dir string, n int, readBuffer int) *Buffer {
	t.Helper()
	b, err := NewWithOptions(3600, Options{SpillDir: dir, MaxBytes: 4 << 10, ReadBuffer: readBuffer})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ev := billing.Event{Kind: billing.Inbound, Time: 1000 + int64(i%50), Customer: uint64(i), MessageID: fmt.Sprint("wamid.", i)}
		if !b.Add(&ev, int64(100+i)) {
			t.Fatalf("event %d refused", i)
		}
	}
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Runs == 0 || st.SpilledBytes == 0 {
		t.Fatalf("nothing spilled: %+v", st)
	}
	return b
}

func runFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, runPrefix+"*"+runSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCloseRemovesRunFiles(t *testing.T) {
	dir := t.TempDir()
	b := spillSome(t, dir, 500, 0)
	if st := b.Stats(); len(runFiles(t, dir)) != st.Runs {
		t.Fatalf("%d run files, stats %+v", len(runFiles(t, dir)), st)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if f := runFiles(t, dir); len(f) != 0 {
		t.Errorf("after Close: %v", f)
	}
}

// Releasing everything removes the drained run files.
func TestDrainedRunsAreRemoved(t *testing.T) {
	dir := t.TempDir()
	b := spillSome(t, dir, 500, 0)
	n := 0
	b.Release(b.MaxSeen(), func(*Item) { n++ })
	if n != 500 || b.Len() != 0 || b.MinOffset() != -1 {
		t.Errorf("released %d of 500; Len %d, MinOffset %d", n, b.Len(), b.MinOffset())
	}
	if f := runFiles(t, dir); len(f) != 0 {
		t.Errorf("after releasing all: %v", f)
	}
}

// A crash leaves run files behind: a new buffer in the same directory
// removes them, and only them.
func TestStaleRunFilesAreRemoved(t *testing.T) {
	dir := t.TempDir()
	b := spillSome(t, dir, 500, 0) // never closed: as if the process died
	stale := runFiles(t, dir)
	if len(stale) == 0 {
		t.Fatal("no run files")
	}
	other := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(other, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewWithOptions(3600, Options{SpillDir: dir, MaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if f := runFiles(t, dir); len(f) != 0 {
		t.Errorf("stale run files left: %v", f)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a file that is not a run was touched: %v", err)
	}
	_ = b
}

func TestSpillDirErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, filepath.Join(file, "partition-3")} {
		if _, err := NewWithOptions(60, Options{SpillDir: dir, MaxBytes: 1 << 20}); err == nil {
			t.Errorf("spill dir %s: no error", dir)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	f := func(o Options, problems int) {
		t.Helper()
		err := o.Validate()
		n := 0
		if err != nil {
			n = strings.Count(err.Error(), "\n") + 1
		}
		if n != problems {
			t.Errorf("%+v: %d problems (%v), want %d", o, n, err, problems)
		}
	}
	f(Options{}, 0)
	f(Options{SpillDir: "/tmp/x", MaxBytes: 1, MaxRuns: 2, ReadBuffer: 16}, 0)
	f(Options{MaxBytes: 1 << 20}, 1)
	f(Options{MaxBytes: -1, MaxRuns: 1, ReadBuffer: -1}, 3)
}

// A disk error while spilling fails the buffer: it reports the error,
// releases nothing, and its MinOffset still covers every event it was
// given, so a replay from it loses nothing.
func TestSpillErrorFailsTheBuffer(t *testing.T) {
	dir := t.TempDir()
	b, err := NewWithOptions(3600, Options{SpillDir: dir, MaxBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil { // as if the disk went away
		t.Fatal(err)
	}
	for i := range 200 {
		ev := billing.Event{Kind: billing.Inbound, Time: 1000 + int64(i), MessageID: fmt.Sprint(i)}
		if !b.Add(&ev, int64(50+i)) {
			t.Fatalf("event %d refused", i)
		}
	}
	if !errors.Is(b.Err(), os.ErrNotExist) {
		t.Fatalf("Err %v, want a missing directory", b.Err())
	}
	released := b.Released()
	n := 0
	b.Release(b.MaxSeen(), func(*Item) { n++ })
	if n != 0 || b.Released() != released {
		t.Errorf("a failed buffer released %d events, up to %d", n, b.Released())
	}
	if b.MinOffset() != 50 || b.Len() != 200 {
		t.Errorf("MinOffset %d, Len %d; want 50, 200", b.MinOffset(), b.Len())
	}
	if err := b.Close(); err != nil {
		t.Error(err)
	}
}

// A run file damaged under the buffer fails Release with the error.
func TestDamagedRunFailsRelease(t *testing.T) {
	dir := t.TempDir()
	b := spillSome(t, dir, 500, 16) // a read buffer smaller than a run
	if n := b.Stats().SpilledBytes / int64(b.Stats().Runs); n < 100 {
		t.Fatalf("runs of %d bytes: the read buffer holds them", n)
	}
	for _, f := range runFiles(t, dir) {
		if err := os.Truncate(f, 40); err != nil {
			t.Fatal(err)
		}
	}
	released := b.Released()
	b.Release(b.MaxSeen(), func(*Item) {})
	if err := b.Err(); !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, webhook.ErrCorruptEvent) {
		t.Fatalf("Err %v, want a truncated run", err)
	}
	if b.Released() != released || b.MinOffset() < 0 || b.MinOffset() > 100 || b.Len() == 0 {
		t.Errorf("after the failure: released %d, MinOffset %d, Len %d", b.Released(), b.MinOffset(), b.Len())
	}
	if f := runFiles(t, dir); len(f) != 0 {
		t.Errorf("run files left: %v", f)
	}
}

// Runs longer than a MinOffset block: MinOffset follows the releases
// through a run, never above the lowest offset left, with offsets in and
// out of time order.
func TestMinOffsetThroughLongRuns(t *testing.T) {
	for _, ordered := range []bool{true, false} {
		rng := rand.New(rand.NewPCG(9, 9))
		b, err := NewWithOptions(100_000, Options{SpillDir: t.TempDir(), MaxBytes: 2 << 20})
		if err != nil {
			t.Fatal(err)
		}
		const n = 40_000
		buffered := map[int64]int{}
		for i := range n {
			offset := int64(i)
			if !ordered {
				offset = rng.Int64N(n)
			}
			ev := billing.Event{Kind: billing.Inbound, Time: 1000 + int64(i)/4 + rng.Int64N(50), MessageID: fmt.Sprint(i)}
			if !b.Add(&ev, offset) {
				t.Fatalf("event %d refused", i)
			}
			buffered[offset]++
		}
		if st := b.Stats(); st.Runs < 2 || st.SpilledEvents < 4*blockLen*int64(st.Runs) {
			t.Fatalf("runs too short for the test: %+v", st)
		}
		for upTo := int64(1000); b.Len() > 0; upTo += 97 {
			b.Release(upTo, func(it *Item) {
				if buffered[it.Offset]--; buffered[it.Offset] == 0 {
					delete(buffered, it.Offset)
				}
			})
			trueMin := int64(-1)
			for o := range buffered {
				if trueMin < 0 || o < trueMin {
					trueMin = o
				}
			}
			got := b.MinOffset()
			if got > trueMin || (got < 0) != (trueMin < 0) {
				t.Fatalf("ordered %v, released up to %d: MinOffset %d, lowest offset left %d", ordered, upTo, got, trueMin)
			}
			// In order, MinOffset moves on within a block of the truth
			// per run instead of staying at a run's first offset.
			if ordered && trueMin >= 0 && got < trueMin-int64(b.Stats().Runs+1)*blockLen {
				t.Fatalf("released up to %d: MinOffset %d lags the lowest offset left %d", upTo, got, trueMin)
			}
		}
		if err := errors.Join(b.Err(), b.Close()); err != nil {
			t.Fatal(err)
		}
	}
}

// A buffer given a directory another buffer still uses (a misconfiguration)
// removes the other's files as stale, yet the other releases all it holds.
func TestSharedSpillDir(t *testing.T) {
	dir := t.TempDir()
	first := spillSome(t, dir, 500, 0)
	second := spillSome(t, dir, 500, 0)
	for _, b := range []*Buffer{first, second} {
		n := 0
		b.Release(b.MaxSeen(), func(*Item) { n++ })
		if err := errors.Join(b.Err(), b.Close()); err != nil || n != 500 {
			t.Errorf("released %d of 500: %v", n, err)
		}
	}
	if f := runFiles(t, dir); len(f) != 0 {
		t.Errorf("run files left: %v", f)
	}
}
