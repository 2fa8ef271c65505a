package window

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/testenv"
	"github.com/wameter/wameter/pkg/webhook"
)

// Keys with nothing left that can matter (every window ended, every
// remembered message older than the message memory) are evicted once the
// released event time has moved on past sweepEvery: the state gauge drops
// them and the changelog gets a tombstone for each, so a restore does not
// bring them back. Keys still active stay.
func TestIdleKeysAreEvicted(t *testing.T) {
	broker := testenv.Broker(t)
	ctx := context.Background()
	ss := newSpillStage(t, broker, 0, "")
	day1 := time.Date(2025, 8, 4, 0, 0, 0, 0, time.UTC).Unix()
	const customers = 50
	var msgs []kafka.Message
	add := func(at int64, customer uint64, id string) {
		ev := billing.Event{Kind: billing.Inbound, Time: at, WABA: 102938475610, PhoneNumberID: 106540352242922,
			Customer: customer, MessageID: id}
		msgs = append(msgs, kafka.Message{Topic: "events", Offset: int64(len(msgs)), Value: webhook.AppendEvent(nil, &ev)})
	}
	for c := range uint64(customers) {
		add(day1+int64(c)*60, 5511900000000+c, "wamid.day1."+string(rune('a'+c%26))+string(rune('a'+c/26)))
	}
	// One customer writes again 8 days later: everyone else is idle by then
	// (inbound windows last 24h; nothing outbound is remembered).
	later := day1 + 8*86400
	add(later, 5511900000000, "wamid.day9")
	if _, err := ss.Assigned(ctx, "events", 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Handle(ctx, "events", 0, msgs); err != nil {
		t.Fatal(err)
	}
	// Release everything (the idle flush), which moves the released time
	// 8 days on and sweeps.
	ss.now = func() time.Time { return time.Now().Add(time.Hour) }
	if _, err := ss.Tick(ctx, "events", 0); err != nil {
		t.Fatal(err)
	}
	if got := ss.part(0).buf.Released(); got < later {
		t.Fatalf("released up to %d, want past %d", got, later)
	}
	if got := gauge(t, ss.m.keys.WithLabelValues("0")); got != 1 {
		t.Errorf("wameter_window_state_keys = %v after 8 idle days, want 1 (the customer active again)", got)
	}
	latest := map[uint64][]byte{}
	for _, m := range testenv.ReadPartition(t, broker, ss.cfg.StateTopic, 0) {
		if len(m.Key) == 17 && m.Key[0] == 's' {
			latest[binary.BigEndian.Uint64(m.Key[9:])] = m.Value
		}
	}
	if len(latest) != customers {
		t.Fatalf("the changelog has %d keys, want %d", len(latest), customers)
	}
	for c, v := range latest {
		if active := c == 5511900000000; active != (v != nil) {
			t.Errorf("customer %d: latest changelog value %d bytes (nil is a tombstone), active %v", c, len(v), active)
		}
	}
}

// A busy partition checkpoints at most once per checkpointEvery: the
// batches in between commit nothing (-1) and a key they all changed is
// written once, by the next checkpoint; once the partition is quiet, Tick
// writes the checkpoint they left out and commits.
func TestCheckpointsAreCoalesced(t *testing.T) {
	broker := testenv.Broker(t)
	ctx := context.Background()
	ss := newSpillStage(t, broker, 0, "")
	wall := time.Now()
	ss.now = func() time.Time { return wall }
	day := time.Date(2025, 8, 4, 0, 0, 0, 0, time.UTC).Unix()
	batch := func(i int) []kafka.Message {
		// One customer, an inbound message per batch three days after the
		// last: each batch releases the one before (48h lateness), so the
		// key changes in every batch but the first.
		ev := billing.Event{Kind: billing.Inbound, Time: day + int64(i)*72*3600, WABA: 102938475610, PhoneNumberID: 106540352242922,
			Customer: 5511900000000, MessageID: "wamid." + string(rune('a'+i))}
		return []kafka.Message{{Topic: "events", Offset: int64(i), Value: webhook.AppendEvent(nil, &ev)}}
	}
	keyWrites := func() (keys, metas int) {
		for _, m := range testenv.ReadPartition(t, broker, ss.cfg.StateTopic, 0) {
			switch {
			case len(m.Key) == 17 && m.Key[0] == 's':
				keys++
			case len(m.Key) == 1 && m.Key[0] == 'm':
				metas++
			}
		}
		return keys, metas
	}
	if _, err := ss.Assigned(ctx, "events", 0, 0); err != nil {
		t.Fatal(err)
	}
	var commits []int64
	for i := range 6 {
		c, err := ss.Handle(ctx, "events", 0, batch(i))
		if err != nil {
			t.Fatal(err)
		}
		commits = append(commits, c)
		wall = wall.Add(checkpointEvery / 4)
	}
	// Batches 0 and 4 checkpoint (0 is the first; 4 is a checkpointEvery
	// after it) and commit the offset of the event they hold; the rest
	// commit nothing.
	want := []int64{0, -1, -1, -1, 4, -1}
	if fmt.Sprint(commits) != fmt.Sprint(want) {
		t.Errorf("commits %v, want %v", commits, want)
	}
	// The key changed in batches 1 to 4: written once, by batch 4's
	// checkpoint.
	if keys, metas := keyWrites(); metas != 2 || keys != 1 {
		t.Errorf("after 6 batches: %d key writes, %d checkpoints; want 1 and 2", keys, metas)
	}
	// Quiet (not yet the 1s idle flush): Tick writes the checkpoint batch
	// 5 left out, once.
	wall = wall.Add(checkpointEvery)
	if c, err := ss.Tick(ctx, "events", 0); err != nil || c != 5 {
		t.Fatalf("Tick: commit %d, %v; want 5", c, err)
	}
	if c, err := ss.Tick(ctx, "events", 0); err != nil || c != -1 {
		t.Errorf("a second Tick: commit %d, %v; want nothing to do", c, err)
	}
	if keys, metas := keyWrites(); metas != 3 || keys != 2 {
		t.Errorf("after Tick: %d key writes, %d checkpoints; want 2 and 3", keys, metas)
	}
}
