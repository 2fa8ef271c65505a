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
// of the queue.
type waiting struct {
	queue []slot // queue[i] is the unit pushed as number base+i
	head  int    // queue[:head] are all popped
	base  uint64
	heap  []entry
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
	if w.head == len(w.queue) {
		return 0, false
	}
	return w.queue[w.head].offset, true
}

func (w *waiting) less(a, b *entry) bool {
	if a.chargedAt != b.chargedAt {
		return a.chargedAt < b.chargedAt
	}
	ua, ub := &w.queue[a.seq-w.base].unit, &w.queue[b.seq-w.base].unit
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
	seq := w.base + uint64(len(w.queue))
	w.queue = append(w.queue, slot{pending: p})
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

	s := &w.queue[top.seq-w.base]
	p := s.pending
	*s = slot{popped: true} // drops the unit's strings
	for w.head < len(w.queue) && w.queue[w.head].popped {
		w.head++
	}
	// Drop the popped prefix once it is at least half the queue: amortized
	// O(1) per unit.
	if w.head == len(w.queue) || (w.head >= 1024 && 2*w.head >= len(w.queue)) {
		n := copy(w.queue, w.queue[w.head:])
		clear(w.queue[n:])
		w.queue = w.queue[:n]
		w.base += uint64(w.head)
		w.head = 0
	}
	return p
}
