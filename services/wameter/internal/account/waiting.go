package account

import "github.com/wameter/wameter/pkg/billing"

// pending is a unit waiting for the merge watermark, with the units-topic
// offset it was read at.
type pending struct {
	unit   billing.Unit
	offset int64
}

// waiting holds a partition's pending units. They stay where they arrived,
// in a queue in offset order; a heap of small entries (charged time and
// queue position) orders them by billing.UnitLess. A heap of whole units
// moved some 200 bytes per swap, and the checkpoint's replay offset (the
// lowest offset still waiting) was a scan of them all: here it is the head
// of the queue. The queue is kept in chunks: in a replay it holds hours of
// units, and a slice copied them all (under the write barrier) at every
// doubling and every drop of its popped prefix.
type waiting struct {
	chunks [][]slot // queue position i is chunks[(first+i)/queueChunk][(first+i)%queueChunk]
	first  int      // where position 0 is in chunks[0]
	n      int      // positions in the queue, popped ones included
	head   int      // positions [0, head) are all popped
	base   uint64   // the number the unit at position 0 was pushed as
	heap   []entry
	spare  [][]slot // emptied chunks
}

const queueChunk = 1024

func (w *waiting) at(i int) *slot {
	i += w.first
	return &w.chunks[i/queueChunk][i%queueChunk]
}

type slot struct {
	pending
	popped bool
}

type entry struct {
	chargedAt int64
	seq       uint64
}

func (w *waiting) len() int { return len(w.heap) }

// next is the entry pop returns next; call only when len() > 0.
func (w *waiting) next() *entry { return &w.heap[0] }

// minOffset is the lowest offset of a waiting unit; ok is false when none
// waits. Offsets must be pushed in non-decreasing order.
func (w *waiting) minOffset() (offset int64, ok bool) {
	if w.head == w.n {
		return 0, false
	}
	return w.at(w.head).offset, true
}

func (w *waiting) less(a, b *entry) bool {
	if a.chargedAt != b.chargedAt {
		return a.chargedAt < b.chargedAt
	}
	ua, ub := &w.at(int(a.seq-w.base)).unit, &w.at(int(b.seq-w.base)).unit
	if billing.UnitLess(ua, ub) {
		return true
	}
	if billing.UnitLess(ub, ua) {
		return false
	}
	return a.seq < b.seq // equal units (duplicates): arrival order, not the heap's
}

// push adds p; p.offset must not be below that of any unit pushed before.
func (w *waiting) push(p pending) {
	seq := w.base + uint64(w.n)
	if (w.first+w.n)/queueChunk == len(w.chunks) {
		var c []slot
		if k := len(w.spare); k > 0 {
			c, w.spare = w.spare[k-1], w.spare[:k-1]
		} else {
			c = make([]slot, queueChunk)
		}
		w.chunks = append(w.chunks, c)
	}
	w.n++
	*w.at(w.n - 1) = slot{pending: p}
	w.heap = append(w.heap, entry{chargedAt: p.unit.ChargedAt, seq: seq})
	j := len(w.heap) - 1
	for j > 0 {
		i := (j - 1) / 2
		if !w.less(&w.heap[j], &w.heap[i]) {
			break
		}
		w.heap[i], w.heap[j] = w.heap[j], w.heap[i]
		j = i
	}
}

// pop removes and returns the first unit in UnitLess order; call only when
// len() > 0.
func (w *waiting) pop() pending {
	top := w.heap[0]
	last := len(w.heap) - 1
	w.heap[0] = w.heap[last]
	w.heap = w.heap[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(w.heap) {
			break
		}
		j := l
		if r := l + 1; r < len(w.heap) && w.less(&w.heap[r], &w.heap[l]) {
			j = r
		}
		if !w.less(&w.heap[j], &w.heap[i]) {
			break
		}
		w.heap[i], w.heap[j] = w.heap[j], w.heap[i]
		i = j
	}

	s := w.at(int(top.seq - w.base))
	p := s.pending
	*s = slot{popped: true} // drops the unit's strings
	for w.head < w.n && w.at(w.head).popped {
		w.head++
	}
	// Drop the chunks the popped prefix fills, or all when all is popped.
	for w.head > 0 && (w.head == w.n || w.first+w.head >= queueChunk) {
		k := min(queueChunk-w.first, w.n)
		c := w.chunks[0]
		clear(c)
		if len(w.spare) < 4 {
			w.spare = append(w.spare, c)
		}
		last := copy(w.chunks, w.chunks[1:])
		w.chunks[last] = nil
		w.chunks = w.chunks[:last]
		w.base += uint64(k)
		w.n -= k
		w.head -= k
		w.first = 0
	}
	return p
}
