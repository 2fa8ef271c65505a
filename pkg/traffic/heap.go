package traffic

// minHeap is a binary min-heap of items ordered by (at, seq). seq is unique
// and increasing in insertion order, so ties break the same way every run.
type heapItem struct {
	at   int64 // Unix milliseconds
	seq  uint64
	slot int32 // index into the owner's slab
}

type minHeap []heapItem

func (h heapItem) less(o heapItem) bool {
	return h.at < o.at || h.at == o.at && h.seq < o.seq
}

func (h *minHeap) push(it heapItem) {
	*h = append(*h, it)
	s := *h
	i := len(s) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !s[i].less(s[parent]) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h minHeap) top() heapItem { return h[0] }

func (h *minHeap) pop() heapItem {
	s := *h
	it := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		m := l
		if r := l + 1; r < len(s) && s[r].less(s[l]) {
			m = r
		}
		if !s[m].less(s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return it
}
