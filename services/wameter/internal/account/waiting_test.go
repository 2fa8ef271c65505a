package account

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/wameter/wameter/pkg/billing"
)

// Against a plain list: pops come in UnitLess order, and minOffset is the
// lowest offset still waiting, through pushes and pops interleaved at
// random (so that the queue drops its popped prefix many times).
func TestWaitingMatchesAList(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var w waiting
	var ref []pending
	offset := int64(0)
	for step := range 200_000 {
		if rng.IntN(3) > 0 || len(ref) == 0 {
			offset += int64(rng.IntN(3))
			p := pending{unit: billing.Unit{ChargedAt: rng.Int64N(500), PhoneNumberID: uint64(rng.IntN(5)), MessageID: string(rune('a' + rng.IntN(26)))}, offset: offset}
			w.push(p)
			ref = append(ref, p)
		} else {
			i := 0
			for j := range ref {
				if billing.UnitLess(&ref[j].unit, &ref[i].unit) {
					i = j
				}
			}
			want := ref[i]
			ref = slices.Delete(ref, i, i+1)
			if w.next().chargedAt != want.unit.ChargedAt {
				t.Fatalf("step %d: next charged at %d, want %d", step, w.next().chargedAt, want.unit.ChargedAt)
			}
			got := w.pop()
			if billing.UnitLess(&got.unit, &want.unit) || billing.UnitLess(&want.unit, &got.unit) {
				t.Fatalf("step %d: popped %+v, want %+v", step, got.unit, want.unit)
			}
		}
		if w.len() != len(ref) {
			t.Fatalf("step %d: len %d, want %d", step, w.len(), len(ref))
		}
		got, ok := w.minOffset()
		if len(ref) == 0 {
			if ok {
				t.Fatalf("step %d: minOffset %d with nothing waiting", step, got)
			}
			continue
		}
		want := ref[0].offset
		for _, p := range ref {
			want = min(want, p.offset)
		}
		if !ok || got != want {
			t.Fatalf("step %d: minOffset %d %v, want %d", step, got, ok, want)
		}
		if len(ref) > 3000 {
			// Keep the reference's scans cheap: drain.
			for w.len() > 0 {
				w.pop()
			}
			ref = ref[:0]
		}
	}
}
