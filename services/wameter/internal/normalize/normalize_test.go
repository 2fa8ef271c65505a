package normalize

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/testenv"
	"github.com/wameter/wameter/pkg/webhook"
	"github.com/wameter/wameter/services/wameter/internal/stage/stagetest"
	"github.com/wameter/wameter/services/wameter/internal/wire"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fakeEnds answers a fixed end offset, or an error.
type fakeEnds struct {
	end int64
	err error
}

func (f *fakeEnds) EndOffset(ctx context.Context, topic string, p int) (int64, error) {
	return f.end, f.err
}

func send(id string, at int64) kafka.Message {
	return kafka.Message{Value: fmt.Appendf(nil, `{"message_id":"%s","phone_number_id":"106540352242922","to":"5511987650123","timestamp":"%d","type":"text"}`, id, at)}
}

// After the events of a batch, every events partition gets the source's
// mark (its highest event time so far), after the events: a window
// partition reads the events before the mark that covers them. A source
// quiet at its end for IdleAfter is marked idle once; one that is quiet
// but not at its end (its records cannot be fetched) is not.
func TestSourceMarksFollowTheEvents(t *testing.T) {
	broker := testenv.Broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := fmt.Sprintf("normalize-test-%d", time.Now().UnixNano())
	k := stagetest.New(t, broker, "normalize", events+"-dlq", map[string]int{events: 2})
	ends := &fakeEnds{}
	s, err := New(Config{WebhooksTopic: "webhooks", SendsTopic: "sends", EventsTopic: events, EventsPartitions: 2,
		IdleAfter: 10 * time.Second, Ends: ends}, k.Producer, k.DLQ, zap.NewNop(), k.Registry)
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Now()
	s.now = func() time.Time { return wall }
	if _, err := s.Assigned(ctx, "sends", 3, 0); err != nil {
		t.Fatal(err)
	}
	batch := []kafka.Message{send("wamid.a", 1754265700), send("wamid.b", 1754265600), {Value: []byte("not json")}}
	for i := range batch {
		batch[i].Topic, batch[i].Partition, batch[i].Offset = "sends", 3, int64(i)
	}
	if next, err := s.Handle(ctx, "sends", 3, batch); err != nil || next != 3 {
		t.Fatalf("Handle: %d, %v", next, err)
	}
	tick := func() {
		t.Helper()
		if _, err := s.Tick(ctx, "sends", 3); err != nil {
			t.Fatal(err)
		}
	}
	// A second batch at once: its mark waits (at most one mark per
	// markEvery) until the source is quiet.
	later := send("wamid.c", 1754265800)
	later.Topic, later.Partition, later.Offset = "sends", 3, 3
	if next, err := s.Handle(ctx, "sends", 3, []kafka.Message{later}); err != nil || next != 4 {
		t.Fatalf("Handle: %d, %v", next, err)
	}
	if n := len(testenv.ReadPartition(t, broker, events, 0)) + len(testenv.ReadPartition(t, broker, events, 1)); n != 4 {
		t.Errorf("after two batches at once: %d records in the events partitions, want 4 (a record of the first batch's 2 events, the first mark in each, a record of the second's)", n)
	}
	// Quiet, but not long enough to be idle: the held-back mark; then long
	// enough but not at the end (and then the end cannot be read): no idle
	// mark.
	wall = wall.Add(5 * time.Second)
	tick()
	wall = wall.Add(10 * time.Second)
	ends.end = 7
	tick()
	wall = wall.Add(10 * time.Second)
	ends.err = errors.New("broker down")
	tick()
	// At its end: one idle mark, however many ticks.
	wall = wall.Add(10 * time.Second)
	ends.end, ends.err = 4, nil
	tick()
	wall = wall.Add(10 * time.Second)
	tick()

	for q := range 2 {
		got := testenv.ReadPartition(t, broker, events, q)
		var kinds []string
		for _, m := range got {
			if wire.IsSourceMark(m.Value) {
				var sm wire.SourceMark
				if err := wire.ReadSourceMark(m.Value, &sm); err != nil {
					t.Fatal(err)
				}
				if sm.Topic != "sends" || sm.Partition != 3 {
					t.Errorf("partition %d: mark %+v, want one of sends/3", q, sm)
				}
				kinds = append(kinds, fmt.Sprintf("mark(%d,idle=%v)", sm.Mark, sm.Idle))
				continue
			}
			for _, ev := range readPacked(t, m.Value) {
				if ev.Kind != billing.Send {
					t.Errorf("event %+v, want a send", ev)
				}
				kinds = append(kinds, "event")
			}
		}
		// The events have one customer: one partition has them.
		marks := []string{"mark(1754265700,idle=false)", "mark(1754265800,idle=false)", "mark(1754265800,idle=true)"}
		want := fmt.Sprint(marks)
		if len(kinds) > len(marks) {
			want = fmt.Sprint([]string{"event", "event", marks[0], "event", marks[1], marks[2]})
		}
		if fmt.Sprint(kinds) != want {
			t.Errorf("events partition %d: %v, want %s", q, kinds, want)
		}
	}

	// A source that never had an event is marked idle with no mark time.
	if _, err := s.Assigned(ctx, "webhooks", 0, 0); err != nil {
		t.Fatal(err)
	}
	wall = wall.Add(time.Minute)
	ends.end = 0
	if _, err := s.Tick(ctx, "webhooks", 0); err != nil {
		t.Fatal(err)
	}
	got := testenv.ReadPartition(t, broker, events, 0)
	var sm wire.SourceMark
	if err := wire.ReadSourceMark(got[len(got)-1].Value, &sm); err != nil || sm.Topic != "webhooks" || !sm.Idle || sm.Mark != math.MinInt64 {
		t.Errorf("empty source: last record %+v, %v; want an idle mark of webhooks/0", sm, err)
	}
}

// readPacked decodes a packed events record.
func readPacked(t *testing.T, value []byte) []billing.Event {
	t.Helper()
	parts, err := wire.SplitPacked(value, nil)
	if err != nil {
		t.Fatalf("events record: %v", err)
	}
	evs := make([]billing.Event, len(parts))
	for i, part := range parts {
		if err := webhook.ReadEvent(part, &evs[i]); err != nil {
			t.Fatalf("event %d of a packed record: %v", i, err)
		}
	}
	return evs
}

// A batch's events go out packed per events partition, each customer's in
// the partition a record keyed by the customer would get (kafka.Hash, as
// every wameter producer), in input order, in records closed at
// wire.PackTarget bytes.
func TestEventsArePackedByCustomerPartition(t *testing.T) {
	broker := testenv.Broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := fmt.Sprintf("normalize-pack-test-%d", time.Now().UnixNano())
	const partitions = 3
	k := stagetest.New(t, broker, "normalize", events+"-dlq", map[string]int{events: partitions})
	s, err := New(Config{WebhooksTopic: "webhooks", SendsTopic: "sends", EventsTopic: events, EventsPartitions: partitions,
		IdleAfter: time.Minute, Ends: &fakeEnds{}}, k.Producer, k.DLQ, zap.NewNop(), k.Registry)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Assigned(ctx, "sends", 0, 0); err != nil {
		t.Fatal(err)
	}
	const customers, perCustomer = 40, 30
	var batch []kafka.Message
	for i := range customers * perCustomer {
		c, n := i%customers, i/customers
		m := kafka.Message{Topic: "sends", Offset: int64(i), Value: fmt.Appendf(nil,
			`{"message_id":"wamid.%d.%d","phone_number_id":"106540352242922","to":"55119876%05d","timestamp":"%d","type":"text"}`, c, n, c, 1754265600+n)}
		batch = append(batch, m)
	}
	if next, err := s.Handle(ctx, "sends", 0, batch); err != nil || next != int64(len(batch)) {
		t.Fatalf("Handle: %d, %v", next, err)
	}
	var hash kafka.Hash
	all := make([]int, partitions)
	for i := range all {
		all[i] = i
	}
	seen := map[uint64]int{} // customer: events so far
	total := 0
	for q := range partitions {
		var sizes []int
		for _, m := range testenv.ReadPartition(t, broker, events, q) {
			if wire.IsSourceMark(m.Value) {
				continue
			}
			sizes = append(sizes, len(m.Value))
			for _, ev := range readPacked(t, m.Value) {
				if want := hash.Balance(kafka.Message{Key: fmt.Appendf(nil, "%d", ev.Customer)}, all...); want != q {
					t.Fatalf("customer %d in events partition %d, keyed records go to %d", ev.Customer, q, want)
				}
				if n := seen[ev.Customer]; ev.MessageID != fmt.Sprintf("wamid.%d.%d", ev.Customer%100000, n) {
					t.Fatalf("customer %d: event %d is %s: out of input order", ev.Customer, n, ev.MessageID)
				}
				seen[ev.Customer]++
				total++
			}
		}
		// About 24 KiB of events per partition: records closed at the
		// target (by the event that crossed it), the last one smaller.
		if len(sizes) < 2 {
			t.Fatalf("events partition %d: records of %v bytes, want several", q, sizes)
		}
		for i, n := range sizes {
			if n > wire.PackTarget+200 || (i < len(sizes)-1 && n < wire.PackTarget) {
				t.Errorf("events partition %d: records of %v bytes, want each closed at %d", q, sizes, wire.PackTarget)
				break
			}
		}
	}
	if total != customers*perCustomer || len(seen) != customers {
		t.Errorf("%d events of %d customers, want %d of %d", total, len(seen), customers*perCustomer, customers)
	}
}
