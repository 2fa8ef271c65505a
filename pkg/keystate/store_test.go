package keystate

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/pricing"
)

// stateBytes returns the version 1 binary form (as old changelogs hold it)
// of a state with a service window, one open conversation and msgs
// remembered messages, varied by seed.
func stateBytes(seed uint64, msgs int) []byte {
	base := int64(1754300000) + int64(seed%86400)
	b := []byte{1}
	b = binary.AppendUvarint(b, 102938475610+seed%5)
	for _, v := range []int64{base + 86400, 0, 0, base + 80000, 0, 0, 0, 0} {
		b = binary.AppendVarint(b, v)
	}
	b = binary.AppendUvarint(b, uint64(msgs))
	for i := 0; i < msgs; i++ {
		b = binary.LittleEndian.AppendUint64(b, seed*0x9e3779b97f4a7c15+uint64(i))
		b = binary.AppendVarint(b, base+int64(i)*600)
		b = binary.AppendVarint(b, base+int64(i)*600+2)
		b = append(b, 2, 2)
	}
	return b
}

// canonical returns the current binary form of a binary form of any version.
func canonical(t testing.TB, b []byte) []byte {
	t.Helper()
	var st billing.State
	if err := st.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	out, _ := st.MarshalBinary()
	return out
}

func key(i uint64) billing.Key {
	return billing.Key{PhoneNumberID: 106540352242922, Customer: 5511900000000 + i}
}

func TestGetPutDelete(t *testing.T) {
	s := New(Config{MaxHot: 2})
	st, err := s.Get(key(1))
	if err != nil || st.WABA != 0 || st.Messages() != 0 {
		t.Fatalf("fresh key: %+v, %v", st, err)
	}
	st.WABA = 7
	if err := s.Put(key(2), stateBytes(2, 3)); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 || s.Hot() != 1 {
		t.Fatalf("len %d hot %d, want 2 and 1", s.Len(), s.Hot())
	}
	// A restored (cold) key decodes on Get, as the changelog had it.
	st, err = s.Get(key(2))
	if err != nil || st.Messages() != 3 || st.WABA != 102938475612 {
		t.Fatalf("restored key: %d messages, WABA %d, %v", st.Messages(), st.WABA, err)
	}
	if got := s.Binary(key(2)); !bytes.Equal(got, canonical(t, stateBytes(2, 3))) {
		t.Errorf("binary of a restored key: %x", got)
	}
	s.DemoteAll()
	if s.Hot() != 0 || s.Len() != 2 {
		t.Fatalf("after DemoteAll: hot %d len %d, want 0 and 2", s.Hot(), s.Len())
	}
	st, _ = s.Get(key(1))
	if st.WABA != 7 {
		t.Errorf("a state changed then demoted lost the change: WABA %d", st.WABA)
	}
	s.Delete(key(1))
	s.Delete(key(2))
	s.Delete(key(3))
	if s.Len() != 0 || s.Binary(key(1)) != nil || s.Binary(key(2)) != nil {
		t.Errorf("after delete: len %d", s.Len())
	}
	if s.live != 0 {
		t.Errorf("no key left but %d live bytes counted", s.live)
	}
	if err := s.Put(key(4), []byte{1, 2, 3}); err == nil {
		t.Error("Put accepted a broken state")
	}
	if s.Len() != 0 {
		t.Error("a broken state was stored")
	}
}

// Random operations on a store with a tiny hot tier and eager compaction,
// checked against a plain map of binary forms.
func TestStoreMatchesMapModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		rng := rand.New(rand.NewPCG(seed, 99))
		s := New(Config{MaxHot: 4})
		s.minGarbage = 0
		model := map[billing.Key][]byte{}
		var kept []struct {
			b, want []byte
		}
		for step := 0; step < 20000; step++ {
			k := key(rng.Uint64N(64))
			switch op := rng.IntN(100); {
			case op < 35: // the engine changes the state
				st, err := s.Get(k)
				if err != nil {
					t.Fatal(err)
				}
				if w, ok := model[k]; ok {
					if got, _ := st.MarshalBinary(); !bytes.Equal(got, w) {
						t.Fatalf("seed %d step %d: Get(%v) = %x, want %x", seed, step, k, got, w)
					}
				} else if st.WABA != 0 || st.Messages() != 0 {
					t.Fatalf("seed %d step %d: fresh key %v not empty", seed, step, k)
				}
				if err := st.UnmarshalBinary(stateBytes(rng.Uint64(), rng.IntN(4))); err != nil {
					t.Fatal(err)
				}
				model[k], _ = st.MarshalBinary()
			case op < 50: // checkpoint
				got := s.Binary(k)
				if !bytes.Equal(got, model[k]) {
					t.Fatalf("seed %d step %d: Binary(%v) = %x, want %x", seed, step, k, got, model[k])
				}
				if got != nil && rng.IntN(4) == 0 {
					kept = append(kept, struct{ b, want []byte }{got, bytes.Clone(got)})
				}
			case op < 60: // restore
				b := stateBytes(rng.Uint64(), rng.IntN(4))
				if err := s.Put(k, b); err != nil {
					t.Fatal(err)
				}
				model[k] = canonical(t, b)
			case op < 70:
				s.Delete(k)
				delete(model, k)
			case op < 75:
				s.DemoteAll()
			case op < 92:
				cut := rng.Uint64()
				n, err := s.Sweep(func(k billing.Key, st *billing.State) bool { return st.WABA%5 == cut%5 })
				if err != nil {
					t.Fatal(err)
				}
				want := 0
				for k, b := range model {
					var st billing.State
					st.UnmarshalBinary(b)
					if st.WABA%5 == cut%5 {
						delete(model, k)
						want++
					}
				}
				if n != want {
					t.Fatalf("seed %d step %d: swept %d, want %d", seed, step, n, want)
				}
			case op < 95:
				s.Compact()
			default:
				checkAll(t, s, model)
			}
			if s.Len() != len(model) {
				t.Fatalf("seed %d step %d: %d keys, want %d", seed, step, s.Len(), len(model))
			}
			if s.Hot() > 4 {
				t.Fatalf("seed %d step %d: %d hot keys, bound 4", seed, step, s.Hot())
			}
		}
		checkAll(t, s, model)
		if s.Compactions == 0 {
			t.Error("the arena was never compacted")
		}
		// What Binary handed out never changes, through compactions too.
		for _, k := range kept {
			if !bytes.Equal(k.b, k.want) {
				t.Fatalf("seed %d: bytes from Binary changed from %x to %x", seed, k.want, k.b)
			}
		}
		// Live bytes are accounted exactly: a compaction leaves no garbage.
		s.Compact()
		if g := s.Garbage(); g != 0 {
			t.Errorf("seed %d: %d bytes of garbage right after a compaction", seed, g)
		}
	}
}

// checkAll compares every key of s, through Range, with the model.
func checkAll(t *testing.T, s *Store, model map[billing.Key][]byte) {
	t.Helper()
	seen := map[billing.Key]bool{}
	err := s.Range(func(k billing.Key, st *billing.State) bool {
		got, _ := st.MarshalBinary()
		if !bytes.Equal(got, model[k]) {
			t.Fatalf("Range: %v = %x, want %x", k, got, model[k])
		}
		if seen[k] {
			t.Fatalf("Range: %v twice", k)
		}
		seen[k] = true
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(model) {
		t.Fatalf("Range saw %d keys, want %d", len(seen), len(model))
	}
}

// The hot tier never holds more than MaxHot keys: one not used recently
// goes cold, changed or not, and comes back intact.
func TestHotTierIsBounded(t *testing.T) {
	s := New(Config{MaxHot: 8})
	for i := range uint64(1000) {
		st, _ := s.Get(key(i))
		st.WABA = i + 1
		s.Get(key(0)) // used all the time: stays hot
		if s.Hot() > 8 {
			t.Fatalf("%d hot keys, bound 8", s.Hot())
		}
	}
	if v, _ := s.index.get(key(0)); v&hotBit == 0 {
		t.Error("the most used key went cold")
	}
	for i := range uint64(1000) {
		if st, _ := s.Get(key(i)); st.WABA != i+1 {
			t.Fatalf("key %d: WABA %d after a round trip through the cold tier", i, st.WABA)
		}
	}
}

// The states of a restore go to the cold tier without a decoded State, in
// the current version whatever version the changelog held.
func TestRestoreFillsTheColdTier(t *testing.T) {
	s := New(Config{})
	for i := range uint64(5000) {
		if err := s.Put(key(i), stateBytes(i, int(i%4))); err != nil {
			t.Fatal(err)
		}
	}
	if s.Hot() != 0 || s.Len() != 5000 {
		t.Fatalf("hot %d len %d, want 0 and 5000", s.Hot(), s.Len())
	}
	for i := range uint64(5000) {
		if got, want := s.Binary(key(i)), canonical(t, stateBytes(i, int(i%4))); !bytes.Equal(got, want) {
			t.Fatalf("key %d: %x, want %x", i, got, want)
		}
	}
}

// Steady state costs no allocation: a hot key's Get, and a cycle that
// brings a batch of keys back from the cold tier, checkpoints and demotes
// them.
func TestSteadyStateDoesNotAllocate(t *testing.T) {
	s := New(Config{})
	for i := range uint64(100) {
		s.Put(key(i), stateBytes(i, 3))
	}
	cycle := func() {
		for i := range uint64(100) {
			st, _ := s.Get(key(i))
			st.WABA++
			s.Binary(key(i))
		}
		s.DemoteAll()
	}
	cycle()
	s.Compact()
	if n := testing.AllocsPerRun(10, func() { s.Get(key(1)) }); n != 0 {
		t.Errorf("%v allocations per hot Get", n)
	}
	// The arena appends into 1 MiB chunks: a new one now and then.
	if n := testing.AllocsPerRun(50, cycle); n > 1 {
		t.Errorf("%v allocations per cycle of 100 keys", n)
	}
}

// A flooded key's state is larger than a chunk's share: it gets a chunk of
// its own and survives demotion and compaction.
func TestLargeState(t *testing.T) {
	s := New(Config{})
	big := stateBytes(7, 20000)
	if err := s.Put(key(1), big); err != nil {
		t.Fatal(err)
	}
	s.Put(key(2), stateBytes(8, 1))
	want := canonical(t, big)
	if len(want) <= ownChunkOver {
		t.Fatalf("test state of %d bytes is not large", len(want))
	}
	s.Delete(key(2))
	s.Compact()
	if got := s.Binary(key(1)); !bytes.Equal(got, want) {
		t.Fatalf("large state changed: %d bytes, want %d", len(got), len(want))
	}
	st, _ := s.Get(key(1))
	if st.Messages() != 20000 {
		t.Fatalf("%d messages, want 20000", st.Messages())
	}
	s.DemoteAll()
	if got := s.Binary(key(1)); !bytes.Equal(got, want) {
		t.Fatalf("large state changed by a round trip through the hot tier")
	}
}

// The engine run through a store that constantly moves states between its
// tiers, compacts, and restores from its own checkpoints derives exactly
// what it derives from states that never leave memory.
func TestEngineThroughStoreMatchesPlainStates(t *testing.T) {
	// The same day of traffic in the CBP era (conversations), then in PMP.
	pmp := benchTraffic(300, 6)
	evs := slices.Clone(pmp)
	for i := range evs {
		evs[i].Time -= 150 * 86400
	}
	evs = append(evs, pmp...)
	cat, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	run := func(get func(billing.Key) *billing.State, afterEvent func(i int)) billing.Output {
		eng, _ := billing.New(billing.Config{Catalog: cat})
		var out billing.Output
		for i := range evs {
			eng.Apply(get(billing.KeyOf(&evs[i])), &evs[i], &out)
			afterEvent(i)
		}
		return out
	}
	plain := map[billing.Key]*billing.State{}
	want := run(func(k billing.Key) *billing.State {
		if plain[k] == nil {
			plain[k] = &billing.State{}
		}
		return plain[k]
	}, func(int) {})

	rng := rand.New(rand.NewPCG(5, 5))
	s := New(Config{MaxHot: 3})
	s.minGarbage = 0
	got := run(func(k billing.Key) *billing.State {
		st, err := s.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}, func(i int) {
		k := billing.KeyOf(&evs[i])
		switch rng.IntN(10) {
		case 0:
			s.DemoteAll()
		case 1: // a restart: every state from its checkpoint
			restored := New(Config{MaxHot: 3})
			var keys []billing.Key
			s.Range(func(k billing.Key, _ *billing.State) bool { keys = append(keys, k); return true })
			for _, k := range keys {
				if err := restored.Put(k, s.Binary(k)); err != nil {
					t.Fatal(err)
				}
			}
			s = restored
		case 2:
			s.Binary(k)
		}
	})
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("through the store: %d units, %d conversations; want %d, %d",
			len(got.Units), len(got.Conversations), len(want.Units), len(want.Conversations))
	}
	if len(want.Units) < 100 || len(want.Conversations) == 0 {
		t.Fatalf("traffic derived %d units, %d conversations: too little to prove anything", len(want.Units), len(want.Conversations))
	}
}
