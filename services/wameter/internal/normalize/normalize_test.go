package normalize

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
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

// A new owner marks its partition active (with no mark of its own: the
// windows keep the last one). After the events of a batch, every events
// partition gets the source's mark (its highest event time so far), after
// the events: a window
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
	if n := len(readAll(t, broker, events, 0)) + len(readAll(t, broker, events, 1)); n != 7 {
		t.Errorf("after two batches at once: %d records in the events partitions, want 7 (3 events, the assignment's and the first batch's mark in each)", n)
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
		got := readAll(t, broker, events, q)
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
		// First the assignment's: active, no mark of its own.
		assigned := fmt.Sprintf("mark(%d,idle=false)", int64(math.MinInt64))
		marks := []string{assigned, "mark(1754265700,idle=false)", "mark(1754265800,idle=false)", "mark(1754265800,idle=true)"}
		want := fmt.Sprint(marks)
		if len(kinds) > len(marks) {
			want = fmt.Sprint([]string{assigned, "event", "event", marks[1], "event", marks[2], marks[3]})
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
	got := readAll(t, broker, events, 0)
	var sm wire.SourceMark
	if err := wire.ReadSourceMark(got[len(got)-1].Value, &sm); err != nil || sm.Topic != "webhooks" || !sm.Idle || sm.Mark != math.MinInt64 {
		t.Errorf("empty source: last record %+v, %v; want an idle mark of webhooks/0", sm, err)
	}
}

func readAll(t *testing.T, broker, topic string, p int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", broker, topic, p)
	if err != nil {
		t.Fatal(err)
	}
	last, err := conn.ReadLastOffset()
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var out []kafka.Message
	for int64(len(out)) < last {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s/%d: %v", topic, p, err)
		}
		out = append(out, m)
	}
	return out
}

// After a pause in which every input partition was marked idle, the first
// one to get records marks the others active again (with their marks)
// before its events: the windows then wait for the others' records instead
// of letting the first partition advance the watermark alone. While any
// partition is busy nothing is woken.
func TestRecordsAfterAPauseWakeTheIdleSources(t *testing.T) {
	broker := testenv.Broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kcfg := stream.Config{Brokers: []string{broker}}
	events := fmt.Sprintf("normalize-wake-%d", time.Now().UnixNano())
	if _, err := stream.EnsureTopics(ctx, kcfg, []stream.TopicSpec{
		{Name: events, Partitions: 1, ReplicationFactor: 1}, {Name: events + "-dlq", Partitions: 1, ReplicationFactor: 1}}); err != nil {
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
	s, err := New(Config{WebhooksTopic: "webhooks", SendsTopic: "sends", EventsTopic: events, EventsPartitions: 1,
		IdleAfter: 10 * time.Second, Ends: ends}, p, dlq, zap.NewNop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Now()
	s.now = func() time.Time { return wall }
	offsets := map[int]int64{}
	handle := func(q int, at int64) {
		t.Helper()
		m := send(fmt.Sprintf("wamid.%d-%d", q, offsets[q]), at)
		m.Topic, m.Partition, m.Offset = "sends", q, offsets[q]
		offsets[q]++
		if _, err := s.Handle(ctx, "sends", q, []kafka.Message{m}); err != nil {
			t.Fatal(err)
		}
	}
	tickAll := func() {
		t.Helper()
		for q := range 3 {
			ends.end = offsets[q]
			if _, err := s.Tick(ctx, "sends", q); err != nil {
				t.Fatal(err)
			}
		}
	}
	for q := range 3 {
		if _, err := s.Assigned(ctx, "sends", q, 0); err != nil {
			t.Fatal(err)
		}
	}
	handle(0, 1754265600)
	handle(1, 1754265660) // partition 2 never gets a record
	wall = wall.Add(time.Minute)
	tickAll() // the pause: all three idle
	before := len(readAll(t, broker, events, 0))

	wall = wall.Add(time.Minute)
	handle(0, 1754269200) // records again, in partition 0 only
	var got []string
	for _, m := range readAll(t, broker, events, 0)[before:] {
		var sm wire.SourceMark
		if err := wire.ReadSourceMark(m.Value, &sm); err != nil {
			got = append(got, "event")
			continue
		}
		got = append(got, fmt.Sprintf("%d:%d,idle=%v", sm.Partition, sm.Mark, sm.Idle))
	}
	slices.Sort(got[:2]) // the woken ones come in map order
	want := []string{fmt.Sprintf("1:%d,idle=false", 1754265660), fmt.Sprintf("2:%d,idle=false", int64(math.MinInt64)),
		"event", fmt.Sprintf("0:%d,idle=false", 1754269200)}
	if !slices.Equal(got, want) {
		t.Errorf("after the pause: %v, want %v", got, want)
	}
	if w := counter(t, s.woken); w != 2 {
		t.Errorf("%v sources woken, want 2", w)
	}

	// Partition 1 and 2 are quiet at their end for IdleAfter again: idle
	// again; partition 0 stays busy. Records in partition 1 now wake
	// nothing (partition 0 is busy).
	wall = wall.Add(5 * time.Second)
	handle(0, 1754269260)
	wall = wall.Add(6 * time.Second)
	ends.end = offsets[1]
	if _, err := s.Tick(ctx, "sends", 1); err != nil {
		t.Fatal(err)
	}
	ends.end = offsets[2]
	if _, err := s.Tick(ctx, "sends", 2); err != nil {
		t.Fatal(err)
	}
	handle(1, 1754269300)
	if w := counter(t, s.woken); w != 2 {
		t.Errorf("%v sources woken while partition 0 was busy, want still 2", w)
	}
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
