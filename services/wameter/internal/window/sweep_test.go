package window

import (
	"context"
	"encoding/binary"
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
