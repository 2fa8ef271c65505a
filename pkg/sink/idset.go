package sink

import "github.com/wameter/wameter/pkg/billing"

// idSet remembers the most recent ids added to it, up to a fixed count:
// a ring holds them in insertion order and a map answers membership. Adding
// to a full set forgets the oldest id. Not safe for concurrent use.
type idSet struct {
	ring []billing.ID
	next int // ring index the next id goes to
	full bool
	ids  map[billing.ID]struct{}
}

func newIDSet(capacity int) *idSet {
	return &idSet{ring: make([]billing.ID, capacity), ids: make(map[billing.ID]struct{})}
}

func (s *idSet) has(id billing.ID) bool {
	_, ok := s.ids[id]
	return ok
}

// add remembers id; an id already present is left where it is.
func (s *idSet) add(id billing.ID) {
	if len(s.ring) == 0 || s.has(id) {
		return
	}
	if s.full {
		delete(s.ids, s.ring[s.next])
	}
	s.ring[s.next] = id
	s.ids[id] = struct{}{}
	s.next++
	if s.next == len(s.ring) {
		s.next, s.full = 0, true
	}
}

func (s *idSet) len() int { return len(s.ids) }
