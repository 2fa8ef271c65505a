package traffic

import (
	"math"
	"math/rand/v2"
)

// rng is the generator's only source of randomness. PCG's output is fixed
// by its algorithm, and the derived draws below are computed here rather
// than by math/rand's helpers, so a seed gives the same stream on every Go
// release.
type rng struct {
	src rand.PCG
}

func newRNG(seed uint64) *rng {
	r := &rng{}
	r.src.Seed(seed, 0x9e3779b97f4a7c15)
	return r
}

func (r *rng) u64() uint64 { return r.src.Uint64() }

// float returns a uniform float64 in [0, 1).
func (r *rng) float() float64 { return float64(r.u64()>>11) * 0x1p-53 }

func (r *rng) chance(p float64) bool { return p > 0 && r.float() < p }

// intn returns a uniform int in [0, n), n > 0 (bias below 2^-32).
func (r *rng) intn(n int) int { return int((r.u64() >> 32) * uint64(n) >> 32) }

// between returns a uniform int64 in [lo, hi].
func (r *rng) between(lo, hi int64) int64 {
	return lo + int64(r.float()*float64(hi-lo+1))
}

// exp returns an exponentially distributed duration of the given mean.
func (r *rng) exp(mean float64) float64 { return -mean * math.Log(1-r.float()) }

// pick returns an index drawn with the given cumulative weights (last = total).
func (r *rng) pick(cumulative []float64) int {
	x := r.float() * cumulative[len(cumulative)-1]
	for i, c := range cumulative {
		if x < c {
			return i
		}
	}
	return len(cumulative) - 1
}

// mix64 is splitmix64's finaliser: a bijection of uint64 that scatters bits,
// used to derive ids from counters (unique because it is a bijection).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
