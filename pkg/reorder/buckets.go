package reorder

import (
	"fmt"
	"slices"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/webhook"
)

// The events in memory are kept in buckets of event time instead of one
// heap: each bucket holds the events of bucketSpan seconds in add order,
// with an entry per event that is sorted when Release reaches the bucket
// (or, with a memory bound, when it is spilled). A heap of millions of
// events (a backfill holds hours of event time) paid a cache miss per level
// of every pop, and events stored in arrival order were read back in time
// order from all over memory; a bucket's events are sorted and read back
// within its own few hundred, and an event added in order (as most are:
// each input partition is read in arrival order) costs one comparison.
//
// A bucket keeps its events encoded (webhook.AppendEvent) in one byte
// slice: half the memory of decoded events and their strings, and nothing
// for the garbage collector to scan (a backfill holds millions of them).
// An event is decoded when released.

// bucketShift sets the bucket span: 1<<bucketShift seconds of event time.
const bucketShift = 4

// keepBuckets bounds the emptied buckets kept for their capacity.
const keepBuckets = 64

// maxHint bounds the events a new bucket has room for.
const maxHint = 4096

// bucket holds the events of one span of event time.
type bucket struct {
	key     int64 // time >> bucketShift
	data    []byte
	entries []entry // one per event, entry.pos its encoding's place in data
	head    int     // entries[:head] were released
	sorted  int     // entries[head:sorted] are in release order; entries[sorted:] came since, in add order
}

// encoded returns the encoding of e's event.
func (bk *bucket) encoded(e *entry) []byte { return bk.data[e.pos : e.pos+int64(e.size)] }

// order returns the release order of two of bk's entries (compare): the
// events themselves are decoded (as views, allocating nothing) only for
// one key's events of one second.
func (b *Buffer) order(bk *bucket, x, y *entry) int {
	if c := compareKey(x.time, x.phone, x.customer, y.time, y.phone, y.customer); c != 0 {
		return c
	}
	return compare(b.view(bk, x, &b.tie[0]), x.offset, b.view(bk, y, &b.tie[1]), y.offset)
}

// view decodes e's event into ev, its strings referring to bk's bytes.
func (b *Buffer) view(bk *bucket, e *entry, ev *billing.Event) *billing.Event {
	mustDecode(webhook.ReadEventView(bk.encoded(e), ev))
	return ev
}

// mustDecode panics on the error of decoding a buffered event: only an
// encoding Add made or AddEncoded was given as valid is buffered.
func mustDecode(err error) {
	if err != nil {
		panic(fmt.Sprintf("reorder: a buffered event does not decode: %v", err))
	}
}

// push adds an event, encoded as enc (nil: encode ev), to its time's
// bucket.
func (b *Buffer) push(ev *billing.Event, enc []byte, offset int64, oi uint32) int {
	k := ev.Time >> bucketShift
	bk := b.last
	if bk == nil || bk.key != k {
		if bk = b.buckets[k]; bk == nil {
			bk = b.newBucket(k)
		}
		b.last = bk
	}
	pos := len(bk.data)
	if enc == nil {
		bk.data = webhook.AppendEvent(bk.data, ev)
	} else {
		bk.data = append(bk.data, enc...)
	}
	size := len(bk.data) - pos
	bk.entries = append(bk.entries, entry{time: ev.Time, phone: ev.PhoneNumberID, customer: ev.Customer,
		offset: offset, pos: int64(pos), size: uint32(size), oi: oi})
	n := len(bk.entries)
	if bk.sorted == n-1 && (bk.sorted == bk.head || b.order(bk, &bk.entries[n-2], &bk.entries[n-1]) <= 0) {
		bk.sorted = n
	}
	b.n++
	return size
}

// newBucket adds an empty bucket for key k.
func (b *Buffer) newBucket(k int64) *bucket {
	var bk *bucket
	if n := len(b.spare); n > 0 {
		bk = b.spare[n-1]
		b.spare = b.spare[:n-1]
		bk.key = k
	} else {
		// Room for as many events as the buckets hold on average: in a
		// backlog a bucket is filled to about that, so its slices do not
		// grow (and copy their events) a dozen times over.
		hint := 8
		if len(b.keys) > 0 {
			hint = min(max(hint, b.n/len(b.keys)), maxHint)
		}
		bk = &bucket{key: k, data: make([]byte, 0, hint*eventSizeHint), entries: make([]entry, 0, hint)}
	}
	if b.buckets == nil {
		b.buckets = make(map[int64]*bucket)
	}
	b.buckets[k] = bk
	b.keys = append(b.keys, k)
	keyUp(b.keys, len(b.keys)-1)
	if b.keys[0] == k {
		b.front = nil
	}
	return bk
}

// eventSizeHint is about the size of an encoded status event.
const eventSizeHint = 80

// peek returns the entry of the first event in release order, or nil when
// no event is in memory. It stays valid until take.
func (b *Buffer) peek() *entry {
	if b.n == 0 {
		return nil
	}
	bk := b.front
	if bk == nil {
		bk = b.buckets[b.keys[0]]
		b.front = bk
	}
	if bk.sorted < len(bk.entries) {
		b.sortBucket(bk)
	}
	return &bk.entries[bk.head]
}

// frontView decodes the event of e, which peek returned, as a view.
func (b *Buffer) frontView(e *entry) *billing.Event { return b.view(b.front, e, &b.tie[0]) }

// decode returns the event of e, which peek returned, decoded (its strings
// its own) with its offset, valid until the next decode.
func (b *Buffer) decode(e *entry) *Item {
	mustDecode(webhook.ReadEvent(b.front.encoded(e), &b.cur.Event))
	b.cur.Offset = e.offset
	return &b.cur
}

// take removes the event peek returned.
func (b *Buffer) take() {
	bk := b.front
	e := &bk.entries[bk.head]
	b.forget(e)
	b.mem -= itemBytes(int(e.size))
	bk.head++
	b.n--
	if bk.head == len(bk.entries) {
		b.dropFront()
	}
}

// dropFront removes the first bucket, empty now.
func (b *Buffer) dropFront() {
	bk := b.front
	delete(b.buckets, bk.key)
	last := len(b.keys) - 1
	b.keys[0] = b.keys[last]
	b.keys = b.keys[:last]
	if last > 0 {
		keyDown(b.keys, 0)
	}
	b.front = nil
	if b.last == bk {
		b.last = nil
	}
	b.recycle(bk)
}

// recycle keeps an emptied bucket's capacity for a new bucket.
func (b *Buffer) recycle(bk *bucket) {
	bk.data, bk.entries, bk.head, bk.sorted = bk.data[:0], bk.entries[:0], 0, 0
	if len(b.spare) < keepBuckets {
		b.spare = append(b.spare, bk)
	}
}

// sortBucket puts bk's unreleased entries in release order: it sorts those
// added since the last sort and merges them with the sorted ones.
func (b *Buffer) sortBucket(bk *bucket) {
	order := func(x, y entry) int { return b.order(bk, &x, &y) }
	tail := bk.entries[bk.sorted:]
	slices.SortFunc(tail, order)
	if bk.sorted > bk.head && b.order(bk, &bk.entries[bk.sorted-1], &tail[0]) > 0 {
		// Merge: the sorted part goes aside, and both are merged back in
		// place (the write position never passes the tail's read position).
		b.scratch = append(b.scratch[:0], bk.entries[bk.head:bk.sorted]...)
		a, w := b.scratch, bk.head
		for len(a) > 0 && len(tail) > 0 {
			if order(tail[0], a[0]) < 0 {
				bk.entries[w] = tail[0]
				tail = tail[1:]
			} else {
				bk.entries[w] = a[0]
				a = a[1:]
			}
			w++
		}
		copy(bk.entries[w:], a)
		if cap(b.scratch) > 1<<16 {
			b.scratch = nil // a backlog's bucket: do not keep its size
		}
	}
	bk.sorted = len(bk.entries)
}

// eachInOrder calls fn with the encoding and offset of every event in
// memory in release order (sorting the buckets), without removing them.
func (b *Buffer) eachInOrder(fn func(enc []byte, offset int64)) {
	keys := slices.Clone(b.keys)
	slices.Sort(keys)
	for _, k := range keys {
		bk := b.buckets[k]
		if bk.sorted < len(bk.entries) {
			b.sortBucket(bk)
		}
		for i := bk.head; i < len(bk.entries); i++ {
			e := &bk.entries[i]
			fn(bk.encoded(e), e.offset)
		}
	}
}

// each calls fn for the entry of every event in memory, in no particular
// order.
func (b *Buffer) each(fn func(e *entry)) {
	for _, bk := range b.buckets {
		for i := bk.head; i < len(bk.entries); i++ {
			fn(&bk.entries[i])
		}
	}
}

// dropEntries drops every event in memory, keeping some buckets' capacity.
func (b *Buffer) dropEntries() {
	for _, bk := range b.buckets {
		b.recycle(bk)
	}
	clear(b.buckets)
	b.keys, b.front, b.last, b.n = b.keys[:0], nil, nil, 0
}

func keyUp(h []int64, j int) {
	for j > 0 {
		i := (j - 1) / 2
		if h[i] <= h[j] {
			break
		}
		h[i], h[j] = h[j], h[i]
		j = i
	}
}

func keyDown(h []int64, i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h[r] < h[l] {
			j = r
		}
		if h[i] <= h[j] {
			break
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}
