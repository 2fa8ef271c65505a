package account

import (
	"math"
	"reflect"
	"testing"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/pricing"
)

func newPart(t *testing.T, sources int) *part {
	t.Helper()
	cat, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	led, err := billing.NewLedger(cat, nil)
	if err != nil {
		t.Fatal(err)
	}
	pt := &part{ledger: led, wm: make([]int64, sources), lastSeq: make([]uint64, sources), released: math.MinInt64}
	for i := range pt.wm {
		pt.wm[i] = math.MinInt64
	}
	return pt
}

// The merge positions and sequence numbers survive a checkpoint, so a
// restarted account stage neither loses nor re-prices a unit.
func TestCheckpointRoundTrip(t *testing.T) {
	pt := newPart(t, 3)
	pt.released, pt.next = 1754265600, 812
	pt.wm = []int64{1754265600, math.MaxInt64, 1754265700}
	pt.lastSeq = []uint64{10, 0, 7}
	b, err := pt.marshal(700)
	if err != nil {
		t.Fatal(err)
	}
	got := newPart(t, 3)
	replayFrom, err := got.unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if replayFrom != 700 || got.released != pt.released || got.next != 812 || got.replayUntil != 812 ||
		!reflect.DeepEqual(got.wm, pt.wm) || !reflect.DeepEqual(got.lastSeq, pt.lastSeq) {
		t.Errorf("restored %+v from %+v", got, pt)
	}
	// More window partitions than at the checkpoint: the new ones start unknown.
	wider := newPart(t, 4)
	if _, err := wider.unmarshal(b); err != nil || wider.wm[3] != math.MinInt64 || wider.wm[2] != 1754265700 {
		t.Errorf("restored into 4 sources: %v %v", wider.wm, err)
	}
	for _, bad := range [][]byte{nil, {9}, b[:len(b)-1]} {
		if _, err := newPart(t, 3).unmarshal(bad); err == nil {
			t.Errorf("unmarshal(%x) accepted a broken checkpoint", bad)
		}
	}
}

// Units come out of the merge heap in UnitLess order.
func TestHeapOrder(t *testing.T) {
	pt := newPart(t, 1)
	for _, at := range []int64{50, 10, 40, 10, 30, 20} {
		pt.waiting.push(pending{unit: billing.Unit{ChargedAt: at, PhoneNumberID: uint64(at % 7)}})
	}
	var got []int64
	for pt.waiting.len() > 0 {
		got = append(got, pt.waiting.pop().unit.ChargedAt)
	}
	if want := []int64{10, 10, 20, 30, 40, 50}; !reflect.DeepEqual(got, want) {
		t.Errorf("popped %v, want %v", got, want)
	}
}
