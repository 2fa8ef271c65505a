package window

import (
	"encoding/binary"
	"math"
	"reflect"
	"testing"
)

func TestCheckpointRoundTrip(t *testing.T) {
	for _, c := range []checkpoint{
		{released: math.MinInt64, maxSeen: math.MinInt64, srcReady: math.MinInt64, sources: []sourceMark{}},
		{released: 1754265600, maxSeen: 1754266200, seq: 981, next: 5000, replayFrom: 4100, lastSweep: 1754262000,
			srcReady: math.MinInt64, sources: []sourceMark{}},
		{released: 1754265600, maxSeen: 1754266200, seq: 7, next: 50, replayFrom: 41, lastSweep: 1754262000,
			srcReady: 1754265000, sources: []sourceMark{
				{topic: "whatsapp.webhooks", partition: 0, mark: 1754266000, seen: true},
				{topic: "whatsapp.webhooks", partition: 1, idle: true},
				{topic: "whatsapp.sends", partition: 3, mark: 1754265600, seen: true, idle: true},
			}},
		{released: 9, maxSeen: 10, allIdle: true, srcReady: 10, sources: []sourceMark{
			{topic: "s", partition: 0, mark: 10, seen: true, idle: true}}},
	} {
		var got checkpoint
		if err := got.unmarshal(c.marshal()); err != nil || !reflect.DeepEqual(got, c) {
			t.Errorf("round trip of %+v: %+v, %v", c, got, err)
		}
	}
	good := (&checkpoint{seq: 3, next: 9, sources: []sourceMark{{topic: "t", mark: 5, seen: true}}}).marshal()
	for _, b := range [][]byte{nil, {3}, good[:len(good)-1], good[:3], append(good[:len(good):len(good)], 0)} {
		var c checkpoint
		if err := c.unmarshal(b); err == nil {
			t.Errorf("unmarshal(%x) accepted a broken checkpoint", b)
		}
	}
	// A version 1 checkpoint (before source marks) still restores.
	v1 := []byte{1}
	for _, v := range []int64{100, 200} {
		v1 = appendVarint(v1, v)
	}
	v1 = append(v1, 5) // seq
	for _, v := range []int64{60, 50, 0} {
		v1 = appendVarint(v1, v)
	}
	var c checkpoint
	if err := c.unmarshal(v1); err != nil || c.released != 100 || c.maxSeen != 200 || c.seq != 5 || c.next != 60 ||
		c.replayFrom != 50 || len(c.sources) != 0 || c.srcReady != math.MinInt64 {
		t.Errorf("version 1 checkpoint: %+v, %v", c, err)
	}
}

// A panic in the engine becomes an error (the stage dead-letters the event)
// instead of killing the process on the same record after every restart.
func TestApplyTurnsPanicIntoError(t *testing.T) {
	if err := apply(nil, nil, nil, nil); err == nil {
		t.Fatal("a panicking engine call returned no error")
	}
}

func appendVarint(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }
