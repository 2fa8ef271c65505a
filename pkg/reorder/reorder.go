// Package reorder holds one partition's events until its event-time
// watermark passes them, and releases them in the order the billing engine
// needs, so results do not depend on arrival order within the lateness.
//
// The watermark is the highest event time seen minus the allowed lateness.
// Released events are in (time, phone_number_id, customer, billing.Less,
// input offset) order, increasing across calls. An event at or behind the
// watermark already released is late: Add refuses it, and the caller
// dead-letters it.
//
// A buffer built by NewWithOptions bounds the memory its events take: past
// Options.MaxBytes it sorts them into a run file on disk and merges the runs
// back as it releases (an external merge sort), in the same order.
package reorder

import (
	"math"
	"slices"
	"unsafe"

	"github.com/wameter/wameter/pkg/billing"
)

// Item is a buffered event with the input offset it came from.
type Item struct {
	Event  billing.Event
	Offset int64
}

// Before is the release order; the buffer releases events Before does not
// order (duplicates) by input offset.
func Before(a, b *billing.Event) bool {
	if a.Time != b.Time {
		return a.Time < b.Time
	}
	if a.PhoneNumberID != b.PhoneNumberID {
		return a.PhoneNumberID < b.PhoneNumberID
	}
	if a.Customer != b.Customer {
		return a.Customer < b.Customer
	}
	return billing.Less(a, b)
}

// Buffer is a min-heap of events by release order. Not safe for concurrent use.
//
// The events sit still in fixed-size chunks; the heap orders small entries
// (time, offset, slot) that point at them, so sifting moves 24 bytes instead
// of a whole event and a large buffer never copies its events to grow.
//
// With a memory bound (NewWithOptions), the in-memory events are written to
// a sorted run file whenever their estimated size passes the bound; Release
// merges the heap with the runs. See Options and Err.
type Buffer struct {
	lateness int64
	mem      int64    // estimated bytes of the events in memory (itemBytes)
	maxBytes int64    // spill past this; math.MaxInt64 without a bound
	failed   bool     // a disk error: see Err
	sp       *spiller // nil without a bound
	maxSeen  int64
	released int64 // events with Time <= released have been released
	heap     []entry
	chunks   [][]Item // each chunkLen long; slot s is chunks[s/chunkLen][s%chunkLen]
	slots    int32    // slots handed out so far
	free     []int32  // slots released for reuse

	// offsets and gone track, in add order, the input offsets of buffered
	// events and whether each was released, so MinOffset needs no scan
	// while offsets come in non-decreasing order (unordered otherwise).
	offsets   []int64
	gone      []bool
	head      int
	unordered bool
}

// entry is a heap element: the event's time and offset, so that most
// comparisons and MinOffset do not touch the event itself.
type entry struct {
	time   int64
	offset int64
	slot   int32
}

const chunkLen = 1024

func (b *Buffer) item(slot int32) *Item {
	return &b.chunks[slot/chunkLen][slot%chunkLen]
}

// store puts it in a free slot and returns the slot.
func (b *Buffer) store(it Item) int32 {
	var slot int32
	if n := len(b.free); n > 0 {
		slot = b.free[n-1]
		b.free = b.free[:n-1]
	} else {
		slot = b.slots
		b.slots++
		if int(slot/chunkLen) == len(b.chunks) {
			b.chunks = append(b.chunks, make([]Item, chunkLen))
		}
	}
	*b.item(slot) = it
	return slot
}

// New returns an empty buffer allowing lateness seconds of disorder.
func New(lateness int64) *Buffer {
	return &Buffer{lateness: lateness, maxSeen: math.MinInt64, released: math.MinInt64, maxBytes: math.MaxInt64}
}

// Len returns how many events are buffered, in memory and on disk.
func (b *Buffer) Len() int {
	if b.sp == nil {
		return len(b.heap)
	}
	if b.failed {
		return b.sp.failedLen
	}
	return len(b.heap) + int(b.sp.events)
}

// Released returns the watermark up to which events were released (inclusive).
func (b *Buffer) Released() int64 { return b.released }

// Lateness returns the allowed lateness in seconds.
func (b *Buffer) Lateness() int64 { return b.lateness }

// MaxSeen returns the highest event time added.
func (b *Buffer) MaxSeen() int64 { return b.maxSeen }

// Restore sets the positions a checkpoint recorded.
func (b *Buffer) Restore(released, maxSeen int64) {
	b.released, b.maxSeen = released, maxSeen
}

// Late reports whether an event at time t would be refused.
func (b *Buffer) Late(t int64) bool { return t <= b.released }

// Add buffers an event; it returns false, buffering nothing, if it is late.
// With a memory bound it may write the buffered events to disk first; if
// that fails, Err reports it.
func (b *Buffer) Add(ev *billing.Event, offset int64) bool {
	if ev.Time <= b.released {
		return false
	}
	if ev.Time > b.maxSeen {
		b.maxSeen = ev.Time
	}
	if b.failed {
		b.sp.lose(offset)
		return true
	}
	slot := b.store(Item{Event: *ev, Offset: offset})
	b.heap = append(b.heap, entry{time: ev.Time, offset: offset, slot: slot})
	b.up(len(b.heap) - 1)
	if n := len(b.offsets); n > b.head && offset < b.offsets[n-1] {
		b.unordered = true
	}
	if !b.unordered {
		b.offsets = append(b.offsets, offset)
		b.gone = append(b.gone, false)
	}
	b.mem += itemBytes(ev)
	if b.mem > b.maxBytes {
		b.spillMemory()
	}
	return true
}

// itemOverhead is what an event takes in memory besides its strings: its
// Item, its heap entry and add-order index, these two counted twice as
// append leaves up to as much spare capacity.
const itemOverhead = int64(unsafe.Sizeof(Item{}) + 2*unsafe.Sizeof(entry{}) + 2*(8+1))

// itemBytes estimates the memory an event takes in the buffer: its strings
// come from one allocation when decoded (webhook.ReadEvent), rounded up.
func itemBytes(ev *billing.Event) int64 {
	n := len(ev.MessageID) + len(ev.MetaConversationID) + len(ev.MetaCategory) + len(ev.MetaPricingModel)
	return itemOverhead + int64(n+15)&^15
}

// forget marks one buffered event of offset released in the add-order index.
func (b *Buffer) forget(offset int64) {
	if b.unordered {
		return
	}
	live := b.offsets[b.head:]
	i, _ := slices.BinarySearch(live, offset)
	for i < len(live) && live[i] == offset && b.gone[b.head+i] {
		i++
	}
	if i < len(live) && live[i] == offset {
		b.gone[b.head+i] = true
	}
	for b.head < len(b.offsets) && b.gone[b.head] {
		b.head++
	}
	if b.head == len(b.offsets) {
		b.offsets, b.gone, b.head = b.offsets[:0], b.gone[:0], 0
	} else if b.head > 1024 && b.head > len(b.offsets)/2 {
		n := copy(b.offsets, b.offsets[b.head:])
		copy(b.gone, b.gone[b.head:])
		b.offsets, b.gone, b.head = b.offsets[:n], b.gone[:n], 0
	}
}

// Ready returns the watermark the buffer may release up to now: the highest
// event time seen minus the lateness.
func (b *Buffer) Ready() int64 {
	if b.maxSeen == math.MinInt64 {
		return math.MinInt64
	}
	return b.maxSeen - b.lateness
}

// Release calls fn, in release order, for every buffered event with time at
// or before upTo, and records upTo as released (it never goes back). The
// event passed to fn is only valid during the call.
//
// If reading spilled events fails, Release stops, leaves Released where it
// was and Err reports why; fn may have seen part of the events up to upTo.
func (b *Buffer) Release(upTo int64, fn func(it *Item)) {
	if upTo <= b.released || b.failed {
		return
	}
	if b.sp != nil && len(b.sp.runs) > 0 {
		if !b.releaseMerged(upTo, fn) {
			return
		}
	} else {
		var top Item
		for len(b.heap) > 0 && b.heap[0].time <= upTo {
			b.pop(&top)
			fn(&top)
		}
	}
	if len(b.heap) == 0 {
		// Empty: give the chunks of a large backlog back, keep one.
		for i := 1; i < len(b.chunks); i++ {
			b.chunks[i] = nil
		}
		b.chunks = b.chunks[:min(len(b.chunks), 1)]
		b.slots, b.free = 0, b.free[:0]
		b.offsets, b.gone, b.head, b.unordered = b.offsets[:0], b.gone[:0], 0, false
	}
	b.released = upTo
}

// pop moves the heap's first event to top.
func (b *Buffer) pop(top *Item) {
	slot := b.heap[0].slot
	last := len(b.heap) - 1
	b.heap[0] = b.heap[last]
	b.heap = b.heap[:last]
	if last > 0 {
		b.down(0)
	}
	it := b.item(slot)
	*top = *it
	*it = Item{} // drop its strings
	b.free = append(b.free, slot)
	b.forget(top.Offset)
	b.mem -= itemBytes(&top.Event)
}

// MinOffset returns the lowest input offset among buffered events, or -1.
// It is O(1) amortized when events were added in non-decreasing offset
// order (as a partition's records are), a scan otherwise.
//
// With events on disk it may be lower than the true minimum (each run
// file keeps a minimum per block of events), never higher, so it is always
// safe to replay the input from it. After a failure (Err) it is the lowest
// offset of the events the buffer held or was given since.
func (b *Buffer) MinOffset() int64 {
	if b.sp == nil {
		return b.memMinOffset()
	}
	if b.failed {
		return b.sp.failedMin
	}
	m := b.memMinOffset()
	for _, r := range b.sp.runs {
		if o := r.minOffset(); m < 0 || o < m {
			m = o
		}
	}
	return m
}

// memMinOffset is MinOffset of the events in memory.
func (b *Buffer) memMinOffset() int64 {
	if len(b.heap) == 0 {
		return -1
	}
	if !b.unordered {
		return b.offsets[b.head]
	}
	min := int64(-1)
	for i := range b.heap {
		if o := b.heap[i].offset; min < 0 || o < min {
			min = o
		}
	}
	return min
}

func (b *Buffer) less(i, j int) bool {
	x, y := &b.heap[i], &b.heap[j]
	if x.time != y.time {
		return x.time < y.time
	}
	return before(&b.item(x.slot).Event, x.offset, &b.item(y.slot).Event, y.offset)
}

// before is the release order made total by the input offset, so that
// events Before does not order (duplicates) come out in the same order
// whether they were spilled or not.
func before(a *billing.Event, aOffset int64, b *billing.Event, bOffset int64) bool {
	if a.Time != b.Time {
		return a.Time < b.Time
	}
	if a.PhoneNumberID != b.PhoneNumberID {
		return a.PhoneNumberID < b.PhoneNumberID
	}
	if a.Customer != b.Customer {
		return a.Customer < b.Customer
	}
	if billing.Less(a, b) {
		return true
	}
	if billing.Less(b, a) {
		return false
	}
	return aOffset < bOffset
}

func (b *Buffer) up(j int) {
	for {
		i := (j - 1) / 2
		if i == j || !b.less(j, i) {
			break
		}
		b.heap[i], b.heap[j] = b.heap[j], b.heap[i]
		j = i
	}
}

func (b *Buffer) down(i int) {
	n := len(b.heap)
	for {
		l := 2*i + 1
		if l >= n || l < 0 {
			break
		}
		j := l
		if r := l + 1; r < n && b.less(r, l) {
			j = r
		}
		if !b.less(j, i) {
			break
		}
		b.heap[i], b.heap[j] = b.heap[j], b.heap[i]
		i = j
	}
}
