package normalize

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/stream"
	"github.com/wameter/wameter/pkg/testenv"
	"github.com/wameter/wameter/pkg/webhook"
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
	kcfg := stream.Config{Brokers: []string{broker}}
	events := fmt.Sprintf("normalize-test-%d", time.Now().UnixNano())
	if _, err := stream.EnsureTopics(ctx, kcfg, []stream.TopicSpec{
		{Name: events, Partitions: 2, ReplicationFactor: 1}, {Name: events + "-dlq", Partitions: 1, ReplicationFactor: 1}}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	p, err := stream.NewProducer(kcfg, stream.ProducerConfig{}, zap.NewNop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dlq, err := stream.NewDeadLetters(p, stream.DeadLetterConfig{Topic: events + "-dlq", Stage: "normalize"}, reg)
	if err != nil {
		t.Fatal(err)
	}
	ends := &fakeEnds{}
	s, err := New(Config{WebhooksTopic: "webhooks", SendsTopic: "sends", EventsTopic: events, EventsPartitions: 2,
		IdleAfter: 10 * time.Second, Ends: ends}, p, dlq, zap.NewNop(), reg)
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
	if n := len(testenv.ReadPartition(t, broker, events, 0)) + len(testenv.ReadPartition(t, broker, events, 1)); n != 5 {
		t.Errorf("after two batches at once: %d records in the events partitions, want 5 (3 events, the first mark in each)", n)
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
			var ev billing.Event
			if err := webhook.ReadEvent(m.Value, &ev); err != nil {
				t.Fatal(err)
			}
			kinds = append(kinds, "event")
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
