package alert

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

var (
	t0       = time.Date(2026, 3, 9, 11, 0, 0, 0, time.UTC)
	keySpike = Key{Rule: RuleSpike, WABAID: "102", Currency: "USD"}
)

func obsAt(breached bool) []Observation {
	return []Observation{{Key: keySpike, Breached: breached, Value: decimal.NewFromInt(50), Threshold: decimal.NewFromInt(10)}}
}

// deliverAll plays a caller whose webhook and store always succeed, and
// returns the states it delivered.
func deliverAll(tr *Tracker) []string {
	var states []string
	for _, p := range tr.Pending() {
		tr.MarkNotified(p)
		tr.MarkRecorded(p)
		states = append(states, p.State)
	}
	return states
}

func TestTrackerFiresOnceAndResolvesOnce(t *testing.T) {
	tr := NewTracker()
	steps := []struct {
		breached bool
		want     []string
	}{
		{false, nil},
		{true, []string{StateFiring}},
		{true, nil},
		{true, nil},
		{false, []string{StateResolved}},
		{false, nil},
		{true, []string{StateFiring}},
	}
	var ids []string
	for i, s := range steps {
		now := t0.Add(time.Duration(i) * time.Minute)
		tr.Observe(now, obsAt(s.breached))
		for _, p := range tr.Pending() {
			ids = append(ids, p.ID)
		}
		if got := deliverAll(tr); !equal(got, s.want) {
			t.Errorf("step %d: delivered %v, want %v", i, got, s.want)
		}
	}
	if len(ids) != 3 || ids[0] != ids[1] || ids[1] == ids[2] {
		t.Errorf("ids %v: want firing and resolved to share one, the next episode another", ids)
	}
}

func TestTrackerKeepsFailedNotification(t *testing.T) {
	tr := NewTracker()
	tr.Observe(t0, obsAt(true))
	// The webhook fails: nothing is marked.
	tr.Observe(t0.Add(time.Minute), obsAt(true))
	if p := tr.Pending(); len(p) != 1 || p[0].State != StateFiring || p[0].Notified {
		t.Fatalf("pending %+v: want the one firing, not notified", p)
	}
	// Notified, but the record fails: only the record is tried again.
	p := tr.Pending()[0]
	tr.MarkNotified(p)
	tr.Observe(t0.Add(2*time.Minute), obsAt(true))
	if q := tr.Pending(); len(q) != 1 || q[0] != p || !q[0].Notified {
		t.Fatalf("pending %+v: want the firing, notified", q)
	}
	tr.MarkRecorded(p)
	if tr.Firing() != 1 || len(tr.Pending()) != 0 {
		t.Fatalf("firing %d pending %d", tr.Firing(), len(tr.Pending()))
	}
}

// A firing nobody heard of is dropped when it clears: no resolution.
func TestTrackerDropsUnnotifiedFiring(t *testing.T) {
	tr := NewTracker()
	tr.Observe(t0, obsAt(true))
	tr.Observe(t0.Add(time.Minute), obsAt(false))
	if p := tr.Pending(); len(p) != 0 || tr.Firing() != 0 {
		t.Fatalf("pending %+v firing %d: want nothing", p, tr.Firing())
	}
}

// Restored alerts do not fire again; an unobserved key resolves.
func TestTrackerRestore(t *testing.T) {
	tr := NewTracker()
	tr.Restore([]Alert{{ID: "a1", Key: keySpike, State: StateFiring, At: t0}})
	tr.Observe(t0.Add(time.Minute), obsAt(true))
	if p := tr.Pending(); len(p) != 0 {
		t.Fatalf("pending %+v after restore: want none", p)
	}
	tr.Observe(t0.Add(2*time.Minute), nil)
	p := tr.Pending()
	if len(p) != 1 || p[0].State != StateResolved || p[0].ID != "a1" || !p[0].Value.IsZero() {
		t.Fatalf("pending %+v: want the resolution of a1 with value 0", p)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
