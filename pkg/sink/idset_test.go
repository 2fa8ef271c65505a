package sink

import (
	"testing"

	"github.com/wameter/wameter/pkg/billing"
)

func TestIDSetForgetsOldest(t *testing.T) {
	id := func(n byte) billing.ID { return billing.ID{n} }
	s := newIDSet(3)
	for n := range byte(3) {
		s.add(id(n))
	}
	s.add(id(1)) // already present: does not move or evict
	if s.len() != 3 || !s.has(id(0)) || !s.has(id(1)) || !s.has(id(2)) {
		t.Fatalf("after 3 adds: len %d", s.len())
	}
	s.add(id(3))
	if s.has(id(0)) || !s.has(id(1)) || !s.has(id(3)) || s.len() != 3 {
		t.Fatalf("adding a 4th did not evict exactly the oldest")
	}
	for n := byte(4); n < 10; n++ {
		s.add(id(n))
	}
	for n := range byte(10) {
		if want := n >= 7; s.has(id(n)) != want {
			t.Fatalf("has(%d) = %v, want %v", n, !want, want)
		}
	}

	empty := newIDSet(0)
	empty.add(id(1))
	if empty.has(id(1)) || empty.len() != 0 {
		t.Fatal("a zero-capacity set remembered an id")
	}
}
