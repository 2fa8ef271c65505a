// Package keystate holds the per-key billing states of one partition in
// little memory: millions of customers that are idle but still remembered
// (an open window, a message whose late statuses may still come) cost about
// 80 to 95 bytes each (BenchmarkIdleFootprint; a map of *billing.State cost
// about 250), so a burst of distinct customers degrades throughput instead
// of exhausting memory.
//
// A Store has two tiers. The hot tier holds the decoded *billing.State of
// the keys used most recently (at most Config.MaxHot), for the engine to
// work on. The cold tier holds every other key's state in its binary form
// (billing.State.AppendBinary) in a byte arena of large []byte chunks. One
// hash table from key to a packed word (a position in the arena, or a slot
// of the hot tier) indexes both; neither the table nor the arena holds
// pointers, so the garbage collector does not scan them. Get decodes a cold
// key into the hot tier; when the hot tier is full, a key not used recently
// goes back to the cold tier (the CLOCK approximation of least recently
// used: a hit only sets a bit in the entry it touches anyway).
//
// The binary form a checkpoint needs (Binary) is written into the arena and
// kept while the state does not change, so a checkpointed key goes cold
// without a second encoding, and a restore (Put) fills the cold tier
// directly. States replaced or deleted leave garbage in the arena; the
// store compacts it when it exceeds a quarter of the live bytes.
package keystate

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/wameter/wameter/pkg/billing"
)

// Config configures a Store.
type Config struct {
	// MaxHot bounds the decoded states a Store keeps. 0 means DefaultMaxHot.
	MaxHot int
}

// DefaultMaxHot is the hot tier's default bound: the distinct keys of many
// batches, about 2.5 MB of decoded states.
const DefaultMaxHot = 8192

// Store is the states of one partition's keys. The zero value is not
// usable: call New. It is not safe for concurrent use.
//
// A *billing.State that Get returns is valid until the next call of a
// method other than Len, Hot, Bytes, Garbage and Binary.
type Store struct {
	maxHot int
	// index locates every key's state: a ref into the arena (cold), or
	// hotBit|slot (hot).
	index table
	arena arena
	live  int64 // bytes of the arena that some key needs
	// slots are the hot tier; a free slot is in free. hand is the clock
	// hand: the next slot to consider for demotion.
	slots []*entry
	free  []int32
	hand  int
	buf   []byte        // encoding scratch
	peek  billing.State // decoding scratch for Range, Sweep and Put

	// minGarbage: below this many garbage bytes the arena is never
	// compacted (a field so that tests can compact small arenas).
	minGarbage int64
	// Compactions counts arena compactions.
	Compactions uint64
}

const hotBit = 1 << 63

// entry is a hot key.
type entry struct {
	key billing.Key
	st  billing.State
	// ref is st's binary form in the arena while st is unchanged since
	// Binary wrote it (0 otherwise): demoting the key then costs nothing.
	ref  ref
	used bool // Get returned it since the clock hand last passed
	live bool // the slot holds a key
}

// New returns an empty store.
func New(cfg Config) *Store {
	if cfg.MaxHot <= 0 {
		cfg.MaxHot = DefaultMaxHot
	}
	return &Store{maxHot: cfg.MaxHot, index: newTable(), arena: newArena(),
		minGarbage: 4 * chunkSize}
}

// Len returns how many keys the store holds.
func (s *Store) Len() int { return s.index.n }

// Hot returns how many keys are decoded in the hot tier.
func (s *Store) Hot() int { return len(s.slots) - len(s.free) }

// hotEntryBytes estimates a hot slot: its entry (a State with room for a
// few messages) and its pointer. Bytes counts hot slots at this rate rather
// than visiting thousands of entries at every flush.
var hotEntryBytes = int64(unsafe.Sizeof(entry{})) + 4*32 + 8

// Bytes estimates the memory the store holds: the arena and the index
// (exact), and the hot tier's decoded states (estimated). It takes
// constant time.
func (s *Store) Bytes() int64 {
	return s.arena.alloc + s.index.bytes() + int64(len(s.slots))*hotEntryBytes
}

// Get returns k's state for the caller to read and change, a fresh one if
// the store does not hold k (which it then does). The error is a cold state
// that does not decode, which only a bug can cause: the key keeps it.
func (s *Store) Get(k billing.Key) (*billing.State, error) {
	v, ok := s.index.get(k)
	if ok && v&hotBit != 0 {
		i := int32(v &^ hotBit)
		e := s.slots[i]
		e.used = true
		if e.ref != 0 {
			s.drop(e.ref) // the caller may change the state
			e.ref = 0
		}
		return &e.st, nil
	}
	i := s.takeSlot()
	e := s.slots[i]
	if ok {
		if err := e.st.UnmarshalBinary(s.arena.bytes(ref(v))); err != nil {
			s.free = append(s.free, i)
			return nil, fmt.Errorf("keystate: state of %d/%d: %w", k.PhoneNumberID, k.Customer, err)
		}
		s.drop(ref(v))
	} else {
		e.st.Reset()
	}
	e.key, e.used, e.live = k, true, true
	s.index.set(k, hotBit|uint64(i))
	s.maybeCompact()
	return &e.st, nil
}

// takeSlot returns a free slot of the hot tier, demoting a key not used
// recently when the tier is full.
func (s *Store) takeSlot() int32 {
	if s.Hot() >= s.maxHot {
		for {
			if s.hand >= len(s.slots) {
				s.hand = 0
			}
			i := s.hand
			s.hand++
			e := s.slots[i]
			if !e.live {
				continue
			}
			if e.used {
				e.used = false
				continue
			}
			s.demote(int32(i))
			break
		}
	}
	if n := len(s.free); n > 0 {
		i := s.free[n-1]
		s.free = s.free[:n-1]
		return i
	}
	s.slots = append(s.slots, &entry{})
	return int32(len(s.slots) - 1)
}

// Binary returns k's state in binary form, nil if the store does not hold
// k. The bytes are never written again: the caller may keep them (say, in
// a message to a producer) for as long as it likes.
func (s *Store) Binary(k billing.Key) []byte {
	v, ok := s.index.get(k)
	switch {
	case !ok:
		return nil
	case v&hotBit != 0:
		e := s.slots[v&^hotBit]
		if e.ref == 0 {
			e.ref = s.encode(&e.st)
			s.maybeCompact()
		}
		return s.arena.bytes(e.ref)
	}
	return s.arena.bytes(ref(v))
}

// Put replaces k's state with the one in b (a binary form of either
// version, as a changelog holds it), in the cold tier. It checks b by
// decoding it into scratch memory, and stores it in the current version.
func (s *Store) Put(k billing.Key, b []byte) error {
	if err := s.peek.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("keystate: state of %d/%d: %w", k.PhoneNumberID, k.Customer, err)
	}
	s.remove(k)
	s.index.set(k, uint64(s.encode(&s.peek)))
	s.maybeCompact()
	return nil
}

// Delete removes k's state.
func (s *Store) Delete(k billing.Key) {
	s.remove(k)
	s.maybeCompact()
}

func (s *Store) remove(k billing.Key) {
	v, ok := s.index.get(k)
	if !ok {
		return
	}
	s.forget(v)
	s.index.del(k)
}

// forget releases what index value v holds: a hot slot or arena bytes.
func (s *Store) forget(v uint64) {
	if v&hotBit != 0 {
		s.release(int32(v &^ hotBit))
	} else {
		s.drop(ref(v))
	}
}

// DemoteAll sends every hot key to the cold tier (encoding the changed ones).
func (s *Store) DemoteAll() {
	for i, e := range s.slots {
		if e.live {
			s.demote(int32(i))
		}
	}
	s.maybeCompact()
}

// demote moves hot slot i's key to the cold tier.
func (s *Store) demote(i int32) {
	e := s.slots[i]
	r := e.ref
	if r == 0 {
		r = s.encode(&e.st)
	}
	e.ref = 0
	s.index.set(e.key, uint64(r))
	s.release(i)
}

// release frees hot slot i (its key leaves the hot tier).
func (s *Store) release(i int32) {
	e := s.slots[i]
	if e.ref != 0 {
		s.drop(e.ref)
		e.ref = 0
	}
	if e.st.HeapBytes() > maxRecycled {
		e.st = billing.State{} // a flood's message memory: let it go
	}
	e.live, e.used = false, false
	s.free = append(s.free, i)
}

// maxRecycled: a hot slot keeps its State's message memory for the next
// key up to room for 16 messages.
var maxRecycled = (&billing.State{}).HeapBytes() + 16*32

// Range calls f for every key until f returns false. For a cold key st is
// decoded into scratch memory, valid only during the call. f must neither
// keep nor change st, nor call the store's methods.
func (s *Store) Range(f func(k billing.Key, st *billing.State) bool) error {
	var err error
	s.index.each(func(k billing.Key, v uint64) bool {
		var st *billing.State
		if st, err = s.view(k, v); err != nil {
			return false
		}
		return f(k, st)
	})
	return err
}

func (s *Store) view(k billing.Key, v uint64) (*billing.State, error) {
	if v&hotBit != 0 {
		return &s.slots[v&^hotBit].st, nil
	}
	if err := s.peek.UnmarshalBinary(s.arena.bytes(ref(v))); err != nil {
		return nil, fmt.Errorf("keystate: state of %d/%d: %w", k.PhoneNumberID, k.Customer, err)
	}
	return &s.peek, nil
}

// Sweep deletes every key for which evict returns true, and returns how
// many it deleted. st is as in Range. A cold state that does not decode (a
// bug) is kept and reported after the sweep.
func (s *Store) Sweep(evict func(k billing.Key, st *billing.State) bool) (int, error) {
	n := 0
	var errs []error
	s.index.sweep(func(k billing.Key, v uint64) bool {
		st, err := s.view(k, v)
		if err != nil {
			errs = append(errs, err)
			return false
		}
		if !evict(k, st) {
			return false
		}
		s.forget(v)
		n++
		return true
	})
	s.maybeCompact()
	return n, errors.Join(errs...)
}

// Clear removes every key and releases the arena and the hot tier.
func (s *Store) Clear() {
	*s = *New(Config{MaxHot: s.maxHot})
}

func (s *Store) encode(st *billing.State) ref {
	s.buf, _ = st.AppendBinary(s.buf[:0])
	r := s.arena.append(s.buf)
	s.live += int64(len(s.buf))
	return r
}

// drop marks the bytes r locates as garbage.
func (s *Store) drop(r ref) { s.live -= int64(s.arena.size(r)) }

// Garbage returns how many bytes of the arena no key needs any more.
func (s *Store) Garbage() int64 { return s.arena.used - s.live }

func (s *Store) maybeCompact() {
	if g := s.Garbage(); g > s.minGarbage && g > s.live/4 {
		s.Compact()
	}
}

// Compact copies the live states into a fresh arena and drops the old one.
// Slices Binary returned earlier stay valid: they keep their old chunk.
func (s *Store) Compact() {
	old := s.arena
	s.arena = newArena()
	s.index.each(func(k billing.Key, v uint64) bool {
		if v&hotBit == 0 {
			s.index.set(k, uint64(s.arena.append(old.bytes(ref(v)))))
		}
		return true
	})
	for _, e := range s.slots {
		if e.ref != 0 {
			e.ref = s.arena.append(old.bytes(e.ref))
		}
	}
	s.live = s.arena.used
	s.Compactions++
}
