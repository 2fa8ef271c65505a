package keystate

import (
	"math/rand/v2"

	"github.com/wameter/wameter/pkg/billing"
)

// table maps keys to non-zero words, in 24 bytes a slot and no pointers.
// A Go map of the same types costs 42 to 69 bytes a key (its tables double
// in step, so its load swings between 7/16 and 7/8); this one is split into
// segments that grow by half when 4/5 full, so its load stays between about
// 0.53 and 0.8: 30 to 45 bytes a key. A segment is linear-probed with
// backward-shift deletion (no tombstones), so a long-lived table with
// churn never degrades.
type table struct {
	seed uint64
	segs [numSegs]segment
	n    int
}

const (
	segBits = 4
	numSegs = 1 << segBits
	minSeg  = 8
)

type slot struct {
	k billing.Key
	v uint64 // 0: empty
}

type segment struct {
	slots []slot
	n     int
}

func newTable() table { return table{seed: rand.Uint64()} }

// hash mixes a key with the table's seed (so that chosen keys cannot
// collide on purpose); the top bits pick the segment, the low 32 bits the
// home slot in it.
func (t *table) hash(k billing.Key) uint64 {
	h := (k.PhoneNumberID^t.seed)*0x9e3779b97f4a7c15 ^ k.Customer
	h ^= h >> 32
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 31
	h *= 0x94d049bb133111eb
	h ^= h >> 29
	return h
}

func home(h uint64, size int) int { return int(uint64(uint32(h)) * uint64(size) >> 32) }

func (t *table) seg(h uint64) *segment { return &t.segs[h>>(64-segBits)] }

// find returns k's slot, or the empty slot where it would go.
func (s *segment) find(k billing.Key, h uint64) (int, bool) {
	size := len(s.slots)
	if size == 0 {
		return -1, false
	}
	for i := home(h, size); ; {
		switch sl := &s.slots[i]; {
		case sl.v == 0:
			return i, false
		case sl.k == k:
			return i, true
		}
		if i++; i == size {
			i = 0
		}
	}
}

func (t *table) get(k billing.Key) (uint64, bool) {
	h := t.hash(k)
	s := t.seg(h)
	i, ok := s.find(k, h)
	if !ok {
		return 0, false
	}
	return s.slots[i].v, true
}

// set maps k to v (not 0).
func (t *table) set(k billing.Key, v uint64) {
	h := t.hash(k)
	s := t.seg(h)
	i, ok := s.find(k, h)
	if ok {
		s.slots[i].v = v
		return
	}
	if (s.n+1)*5 > len(s.slots)*4 {
		t.grow(s)
		i, _ = s.find(k, h)
	}
	s.slots[i] = slot{k, v}
	s.n++
	t.n++
}

func (t *table) grow(s *segment) {
	old := s.slots
	s.slots = make([]slot, max(minSeg, len(old)*3/2))
	for _, sl := range old {
		if sl.v != 0 {
			i, _ := s.find(sl.k, t.hash(sl.k))
			s.slots[i] = sl
		}
	}
}

func (t *table) del(k billing.Key) {
	h := t.hash(k)
	s := t.seg(h)
	if i, ok := s.find(k, h); ok {
		t.deleteAt(s, i)
	}
}

// deleteAt empties slot i, moving back the later slots of its run that
// would not be found past the hole.
func (t *table) deleteAt(s *segment, i int) {
	size := len(s.slots)
	for j := i; ; {
		if j++; j == size {
			j = 0
		}
		if s.slots[j].v == 0 {
			break
		}
		// The slot at j may fill the hole at i unless its home lies
		// cyclically in (i, j].
		h := home(t.hash(s.slots[j].k), size)
		if i <= j && (h <= i || h > j) || i > j && h <= i && h > j {
			s.slots[i] = s.slots[j]
			i = j
		}
	}
	s.slots[i] = slot{}
	s.n--
	t.n--
}

// each calls f for every key; f may change the value of the key it is
// given (set with the same key), nothing else.
func (t *table) each(f func(k billing.Key, v uint64) bool) {
	for si := range t.segs {
		for _, sl := range t.segs[si].slots {
			if sl.v != 0 && !f(sl.k, sl.v) {
				return
			}
		}
	}
}

// sweep calls f for every key once, and deletes those for which it
// returns true. f must not use the table.
func (t *table) sweep(f func(k billing.Key, v uint64) bool) {
	for si := range t.segs {
		s := &t.segs[si]
		size := len(s.slots)
		// Start after an empty slot: no run of keys crosses it, so
		// deleting (which moves keys back within their run) never moves
		// a key the sweep has not seen behind it, nor one it has seen
		// ahead of it.
		start := 0
		for start < size && s.slots[start].v != 0 {
			start++
		}
		for step, i := 0, start; step < size; {
			if sl := s.slots[i]; sl.v != 0 && f(sl.k, sl.v) {
				t.deleteAt(s, i)
				continue // i now holds the next key of the run, or nothing
			}
			step++
			if i++; i == size {
				i = 0
			}
		}
	}
}

// bytes returns the memory the slots take.
func (t *table) bytes() int64 {
	var n int64
	for i := range t.segs {
		n += int64(len(t.segs[i].slots)) * 24
	}
	return n
}
