package window

import (
	"math"
	"testing"
)

func TestCheckpointRoundTrip(t *testing.T) {
	for _, c := range []checkpoint{
		{released: math.MinInt64, maxSeen: math.MinInt64},
		{released: 1754265600, maxSeen: 1754266200, seq: 981, next: 5000, replayFrom: 4100, lastSweep: 1754262000},
	} {
		var got checkpoint
		if err := got.unmarshal(c.marshal()); err != nil || got != c {
			t.Errorf("round trip of %+v: %+v, %v", c, got, err)
		}
	}
	good := (&checkpoint{seq: 3, next: 9}).marshal()
	for _, b := range [][]byte{nil, {2}, good[:len(good)-1], good[:3]} {
		var c checkpoint
		if err := c.unmarshal(b); err == nil {
			t.Errorf("unmarshal(%x) accepted a broken checkpoint", b)
		}
	}
}

// A panic in the engine becomes an error (the stage dead-letters the event)
// instead of killing the process on the same record after every restart.
func TestApplyTurnsPanicIntoError(t *testing.T) {
	if err := apply(nil, nil, nil, nil); err == nil {
		t.Fatal("a panicking engine call returned no error")
	}
}
