package window

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/testenv"
	"github.com/wameter/wameter/pkg/webhook"
	"github.com/wameter/wameter/services/wameter/internal/stage/stagetest"
	"github.com/wameter/wameter/services/wameter/internal/wire"
)

// fakeUpstream reports a fixed number of pending records.
type fakeUpstream struct {
	pending int64
	asked   int
}

func (u *fakeUpstream) Mark(ctx context.Context) (UpstreamMark, error) { return UpstreamMark{}, nil }

func (u *fakeUpstream) Pending(ctx context.Context, mark UpstreamMark, p int, next int64) (int64, error) {
	u.asked++
	return u.pending, nil
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// unitRecords returns the units the stage wrote, each as the string of its
// encoding, in order: packed records unpacked, watermark records dropped
// (a partition publishes its watermark after every batch that moved it).
func (ss *spillStage) unitRecords(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, part := range stagetest.Parts(t, ss.kcfg.Brokers[0], ss.units, 0) {
		var r wire.Record
		if err := wire.Read(part, &r); err != nil {
			t.Fatal(err)
		}
		if !r.IsWatermark {
			out = append(out, string(part))
		}
	}
	return out
}

// withTimes returns msgs with each event's time moved by shift(i), renumbered
// from offset 0.
func withTimes(t *testing.T, msgs []kafka.Message, shift func(i int) int64) []kafka.Message {
	t.Helper()
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		var ev billing.Event
		if err := webhook.ReadEvent(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		ev.Time += shift(i)
		out[i] = kafka.Message{Topic: "events", Partition: 0, Offset: int64(i), Value: webhook.AppendEvent(nil, &ev)}
	}
	return out
}

// The bug TestPipelineSurvivesKills found: a process killed while its
// consumer groups joined keeps some of normalize's partitions for a session
// timeout, while a window partition has drained the rest of its input. An
// idle flush then released everything up to the highest event time seen,
// and the held-back events that arrived afterwards were dead-lettered as
// late: charges missing or with other ids. With an Upstream that still has
// records, the idle flush waits, and the partition emits what it emits when
// all its input comes at once.
func TestIdleFlushWaitsForUpstream(t *testing.T) {
	broker := testenv.Broker(t)
	all := spillEvents(2000)
	// The first part's events are the later half of the day; the held-back
	// part (a stalled normalize partition) has the earlier half.
	half := len(all) / 2
	msgs := append(slices.Clone(all[half:]), all[:half]...)
	for i := range msgs {
		msgs[i].Offset = int64(i)
	}
	ctx := context.Background()
	run := func(upstream *fakeUpstream, stall bool) (rows, units []string, late float64) {
		ss := newSpillStage(t, broker, 0, "")
		if upstream != nil {
			ss.cfg.Upstream = upstream
		}
		if _, err := ss.Assigned(ctx, "events", 0, 0); err != nil {
			t.Fatal(err)
		}
		handle := func(batch []kafka.Message) {
			if _, err := ss.Handle(ctx, "events", 0, slices.Clone(batch)); err != nil {
				t.Fatal(err)
			}
		}
		wall := time.Now()
		ss.now = func() time.Time { return wall }
		tick := func() {
			if _, err := ss.Tick(ctx, "events", 0); err != nil {
				t.Fatal(err)
			}
		}
		if stall {
			handle(msgs[:half])
			wall = wall.Add(time.Hour) // quiet far past the idle flush
			tick()
			if upstream != nil {
				upstream.pending = 0 // the stalled partition resumes
			}
		}
		if stall {
			handle(msgs[half:])
		} else {
			handle(msgs)
		}
		wall = wall.Add(time.Hour)
		tick()
		if _, err := ss.Revoked(ctx, "events", 0); err != nil {
			t.Fatal(err)
		}
		return ss.rowRecords(t), ss.unitRecords(t), counter(t, ss.m.events.WithLabelValues("late"))
	}
	wantRows, wantUnits, wantLate := run(nil, false)
	if len(wantUnits) < 100 || wantLate != 0 {
		t.Fatalf("all input at once: %d units, %v late: not a reference", len(wantUnits), wantLate)
	}

	upstream := &fakeUpstream{pending: 7}
	rows, units, late := run(upstream, true)
	if upstream.asked == 0 {
		t.Error("the idle flush never asked the upstream")
	}
	if late != 0 {
		t.Errorf("%v events late after an upstream stall", late)
	}
	if !slices.Equal(rows, wantRows) || !slices.Equal(units, wantUnits) {
		t.Errorf("after an upstream stall: %d rows, %d units; all input at once: %d rows, %d units", len(rows), len(units), len(wantRows), len(wantUnits))
	}

	// Without an Upstream the partition's quiet is all it knows: the same
	// stall makes the held-back half late. This is what the check prevents.
	_, _, late = run(nil, true)
	if late == 0 {
		t.Error("without an upstream the stall made nothing late: the test does not exercise the idle flush")
	}
}

// Which events are late, and so every unit with its sequence number, does
// not depend on where the batches end: a partition replayed after a restart
// reads its input in other batches, and the account stage drops units whose
// sequence numbers it has seen.
func TestLateDoesNotDependOnBatches(t *testing.T) {
	broker := testenv.Broker(t)
	msgs := laggingEvents(t)
	run := func(batchSize int) (rows, units []string, late float64) {
		ss := newSpillStage(t, broker, 0, "")
		ss.replay(t, msgs, batchSize)
		return ss.rowRecords(t), ss.unitRecords(t), counter(t, ss.m.events.WithLabelValues("late"))
	}
	wantRows, wantUnits, wantLate := run(1)
	if wantLate == 0 || len(wantUnits) < 100 {
		t.Fatalf("one event a batch: %v late, %d units: the test exercises nothing", wantLate, len(wantUnits))
	}
	for _, size := range []int{7, 500, len(msgs)} {
		rows, units, late := run(size)
		if late != wantLate || !slices.Equal(rows, wantRows) || !slices.Equal(units, wantUnits) {
			t.Errorf("batches of %d: %v late, %d rows, %d units; one event a batch: %v late, %d rows, %d units",
				size, late, len(rows), len(units), wantLate, len(wantRows), len(wantUnits))
		}
	}
}

// laggingEvents is spillEvents(1500) with every 37th event three days
// behind: past the 48h lateness of every event shortly before it.
func laggingEvents(t *testing.T) []kafka.Message {
	return withTimes(t, spillEvents(1500), func(i int) int64 {
		if i%37 == 36 {
			return -72 * 3600
		}
		return 0
	})
}

// replay hands msgs to partition 0 of the stage in batches of batchSize,
// releases what is left with an idle flush, and revokes the partition.
func (ss *spillStage) replay(t *testing.T, msgs []kafka.Message, batchSize int) {
	t.Helper()
	ctx := context.Background()
	if _, err := ss.Assigned(ctx, "events", 0, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(msgs); i += batchSize {
		if _, err := ss.Handle(ctx, "events", 0, slices.Clone(msgs[i:min(i+batchSize, len(msgs))])); err != nil {
			t.Fatal(err)
		}
	}
	ss.now = func() time.Time { return time.Now().Add(time.Hour) }
	if _, err := ss.Tick(ctx, "events", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Revoked(ctx, "events", 0); err != nil {
		t.Fatal(err)
	}
}
