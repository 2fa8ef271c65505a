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
	"cmp"
	"fmt"
	"math"
	"unsafe"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/webhook"
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

// Buffer holds events until their release. Not safe for concurrent use.
//
// The events are kept encoded in buckets of event time, each sorted when
// released (see buckets.go).
//
// With a memory bound (NewWithOptions), the in-memory events are written to
// a sorted run file whenever their estimated size passes the bound; Release
// merges the memory's order with the runs. See Options and Err.
type Buffer struct {
	lateness int64
	mem      int64    // estimated bytes of the events in memory (itemBytes)
	maxBytes int64    // spill past this; math.MaxInt64 without a bound
	failed   bool     // a disk error: see Err
	sp       *spiller // nil without a bound
	maxSeen  int64
	released int64 // events with Time <= released have been released

	// offsets and live track, in add order, the distinct input offsets of
	// buffered events and how many of each are still buffered, so
	// MinOffset needs no scan while offsets come in non-decreasing order
	// (unordered otherwise). A packed record's events share one entry.
	// first is the add-order number of offsets[0]: an entry keeps the
	// number of its offset (entry.oi), so a release finds its count
	// without a search (uint32 arithmetic: numbers wrap around).
	offsets   []int64
	live      []int32
	head      int
	first     uint32
	unordered bool

	// The order of the events in memory (buckets.go): n events in the
	// buckets by key, keys a min-heap of the buckets' keys, front the
	// bucket of keys[0] and last the bucket of the last Add (nil: look
	// up), spare emptied buckets, scratch room to merge a bucket; cur
	// the event released last, tie two events compared as views.
	n       int
	buckets map[int64]*bucket
	keys    []int64
	front   *bucket
	last    *bucket
	spare   []*bucket
	scratch []entry
	cur     Item
	tie     [2]billing.Event
}

// entry points at a buffered event's encoding in its bucket, with what
// orders most events (time, phone number id, customer) and its offset, so
// that most comparisons do not decode the event.
type entry struct {
	time     int64
	phone    uint64
	customer uint64
	offset   int64
	pos      int64  // the encoding is the bucket's data[pos:pos+size]
	size     uint32 // bytes of the encoding
	oi       uint32 // add-order number of its offset: see Buffer.first
}

// New returns an empty buffer allowing lateness seconds of disorder.
func New(lateness int64) *Buffer {
	return &Buffer{lateness: lateness, maxSeen: math.MinInt64, released: math.MinInt64, maxBytes: math.MaxInt64}
}

// Len returns how many events are buffered, in memory and on disk.
func (b *Buffer) Len() int {
	if b.sp == nil {
		return b.n
	}
	if b.failed {
		return b.sp.failedLen
	}
	return b.n + int(b.sp.events)
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
// that fails, Err reports it. The buffer keeps a copy of the event, encoded
// (webhook.AppendEvent): ev must be an event as the decoders produce them,
// with a Kind and in-range enums, or Add panics.
func (b *Buffer) Add(ev *billing.Event, offset int64) bool {
	if !webhook.Encodable(ev) {
		panic(fmt.Sprintf("reorder: Add of an event webhook.ReadEvent would refuse: %+v", *ev))
	}
	return b.add(ev, nil, offset)
}

// AddEncoded is Add of an event enc encodes, ev being enc as decoded by
// webhook.ReadEvent or ReadEventView (it must have accepted enc): the
// buffer copies enc instead of encoding ev.
func (b *Buffer) AddEncoded(ev *billing.Event, enc []byte, offset int64) bool {
	return b.add(ev, enc, offset)
}

func (b *Buffer) add(ev *billing.Event, enc []byte, offset int64) bool {
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
	if n := len(b.offsets); n > b.head && offset < b.offsets[n-1] {
		b.unordered = true
	}
	var oi uint32
	if !b.unordered {
		n := len(b.offsets)
		if n == b.head || offset != b.offsets[n-1] {
			b.offsets = append(b.offsets, offset)
			b.live = append(b.live, 0)
			n++
		}
		b.live[n-1]++
		oi = b.first + uint32(n-1)
	}
	b.mem += itemBytes(b.push(ev, enc, offset, oi))
	if b.mem > b.maxBytes {
		b.spillMemory()
	}
	return true
}

// itemOverhead is what an event takes in memory besides its encoding: its
// entry and add-order index, counted twice as append leaves up to as much
// spare capacity.
const itemOverhead = int64(2*unsafe.Sizeof(entry{}) + 2*(8+4))

// itemBytes estimates the memory an event of an encoding of size bytes
// takes in the buffer (the encoding counted twice too).
func itemBytes(size int) int64 { return itemOverhead + 2*int64(size) }

// forget counts a released entry's event in the add-order index.
func (b *Buffer) forget(e *entry) {
	if b.unordered {
		return
	}
	b.live[int(e.oi-b.first)]--
	for b.head < len(b.offsets) && b.live[b.head] == 0 {
		b.head++
	}
	if b.head == len(b.offsets) {
		b.resetOffsets()
	} else if b.head > 1024 && b.head > len(b.offsets)/2 {
		n := copy(b.offsets, b.offsets[b.head:])
		copy(b.live, b.live[b.head:])
		b.first += uint32(b.head)
		b.offsets, b.live, b.head = b.offsets[:n], b.live[:n], 0
	}
}

// resetOffsets empties the add-order index (no event in memory refers to it).
func (b *Buffer) resetOffsets() {
	b.first += uint32(len(b.offsets))
	b.offsets, b.live, b.head, b.unordered = b.offsets[:0], b.live[:0], 0, false
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
		for e := b.peek(); e != nil && e.time <= upTo; e = b.peek() {
			fn(b.decode(e))
			b.take()
		}
	}
	if b.n == 0 {
		// Empty: give the buckets of a large backlog back.
		b.resetOffsets()
		b.spare, b.scratch = nil, nil
	}
	b.released = upTo
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
	if b.n == 0 {
		return -1
	}
	if !b.unordered {
		return b.offsets[b.head]
	}
	min := int64(-1)
	b.each(func(e *entry) {
		if min < 0 || e.offset < min {
			min = e.offset
		}
	})
	return min
}

// before is the release order made total: see compare.
func before(a *billing.Event, aOffset int64, b *billing.Event, bOffset int64) bool {
	return compare(a, aOffset, b, bOffset) < 0
}

// compare is the release order (Before) made total, so that events come
// out in the same order whether they were spilled or not, and whatever
// order they were added in: events Before does not order (duplicates) by
// input offset, then by the rest of their fields. Only events equal in
// every field compare 0, and their order does not matter.
func compare(a *billing.Event, aOffset int64, b *billing.Event, bOffset int64) int {
	if c := compareKey(a.Time, a.PhoneNumberID, a.Customer, b.Time, b.PhoneNumberID, b.Customer); c != 0 {
		return c
	}
	switch {
	case billing.Less(a, b):
		return -1
	case billing.Less(b, a):
		return 1
	case aOffset != bOffset:
		return cmp.Compare(aOffset, bOffset)
	}
	return cmp.Or(
		cmp.Compare(a.Kind, b.Kind),
		cmp.Compare(a.Status, b.Status),
		cmp.Compare(a.MsgKind, b.MsgKind),
		cmp.Compare(boolInt(a.Referral), boolInt(b.Referral)),
		cmp.Compare(a.WABA, b.WABA),
		cmp.Compare(a.MetaConversationID, b.MetaConversationID),
		cmp.Compare(a.MetaCategory, b.MetaCategory),
		cmp.Compare(a.MetaPricingModel, b.MetaPricingModel),
	)
}

// compareKey is the first part of the release order: time, phone number
// id, customer (what a bucket's entries hold).
func compareKey(aTime int64, aPhone, aCustomer uint64, bTime int64, bPhone, bCustomer uint64) int {
	switch {
	case aTime != bTime:
		return cmp.Compare(aTime, bTime)
	case aPhone != bPhone:
		return cmp.Compare(aPhone, bPhone)
	}
	return cmp.Compare(aCustomer, bCustomer)
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}
