package keystate

import (
	"math/rand/v2"
	"testing"

	"github.com/wameter/wameter/pkg/billing"
)

// Random sets, deletes and sweeps, checked against a Go map; few distinct
// keys and a fixed seed make long runs and wrap-around likely.
func TestTableMatchesMap(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		rng := rand.New(rand.NewPCG(seed, 7))
		tb := newTable()
		tb.seed = seed
		model := map[billing.Key]uint64{}
		for step := 0; step < 50000; step++ {
			k := billing.Key{PhoneNumberID: rng.Uint64N(3), Customer: rng.Uint64N(500)}
			switch op := rng.IntN(100); {
			case op < 50:
				v := rng.Uint64() | 1
				tb.set(k, v)
				model[k] = v
			case op < 85:
				tb.del(k)
				delete(model, k)
			case op < 87:
				cut := rng.Uint64N(4)
				seen := map[billing.Key]bool{}
				tb.sweep(func(k billing.Key, v uint64) bool {
					if seen[k] {
						t.Fatalf("seed %d step %d: sweep saw %v twice", seed, step, k)
					}
					seen[k] = true
					return v%4 == cut
				})
				if len(seen) != len(model) {
					t.Fatalf("seed %d step %d: sweep saw %d keys, want %d", seed, step, len(seen), len(model))
				}
				for k, v := range model {
					if v%4 == cut {
						delete(model, k)
					}
				}
			default:
				v, ok := tb.get(k)
				if w, wok := model[k]; v != w || ok != wok {
					t.Fatalf("seed %d step %d: get(%v) = %d %v, want %d %v", seed, step, k, v, ok, w, wok)
				}
			}
			if tb.n != len(model) {
				t.Fatalf("seed %d step %d: %d keys, want %d", seed, step, tb.n, len(model))
			}
		}
		n := 0
		tb.each(func(k billing.Key, v uint64) bool {
			if model[k] != v {
				t.Fatalf("seed %d: each: %v = %d, want %d", seed, k, v, model[k])
			}
			n++
			return true
		})
		if n != len(model) {
			t.Fatalf("seed %d: each saw %d keys, want %d", seed, n, len(model))
		}
	}
}

func TestTableLoad(t *testing.T) {
	tb := newTable()
	for i := range uint64(200000) {
		tb.set(key(i), i+1)
		if i > 1000 && i%997 == 0 {
			if load := float64(tb.n) * 24 / float64(tb.bytes()); load < 0.45 || load > 0.8 {
				t.Fatalf("%d keys: load %.2f", tb.n, load)
			}
		}
	}
}
