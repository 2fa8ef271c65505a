package window

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/testenv"
	"github.com/wameter/wameter/pkg/webhook"
	"github.com/wameter/wameter/services/wameter/internal/stage/stagetest"
	"github.com/wameter/wameter/services/wameter/internal/wire"
)

// skewedSources splits a day of events (within an hour of disorder) between
// two input partitions of "raw" and interleaves them as a replay that reads
// partition 0 twelve hours of event time ahead of partition 1: far past a
// lateness of two hours. With marks, each chunk of a source's events is
// followed by that source's mark (as normalize writes them), and the input
// ends with both sources marked idle. With packed, each chunk of a source's
// events is one packed record (as normalize writes a batch's events).
func skewedSources(t *testing.T, events []kafka.Message, marks, packed bool) []kafka.Message {
	t.Helper()
	type src struct {
		evs  []kafka.Message
		next int
		max  int64
	}
	var s [2]src
	for i, m := range events {
		s[i%2].evs = append(s[i%2].evs, m)
	}
	var out []kafka.Message
	take := func(q, n int) {
		x := &s[q]
		chunk := len(out)
		for ; n > 0 && x.next < len(x.evs); n-- {
			m := x.evs[x.next]
			x.next++
			var ev billing.Event
			if err := webhook.ReadEvent(m.Value, &ev); err != nil {
				t.Fatal(err)
			}
			x.max = max(x.max, ev.Time)
			out = append(out, m)
		}
		if packed && len(out) > chunk {
			out = append(out[:chunk], pack(out[chunk:], len(out)-chunk)...)
		}
		if marks {
			out = append(out, kafka.Message{Value: wire.AppendSourceMark(nil, &wire.SourceMark{Topic: "raw", Partition: int32(q), Mark: x.max})})
		}
	}
	half := len(s[0].evs) / 2
	take(0, half) // partition 0 reads half a day before partition 1 starts
	for s[0].next < len(s[0].evs) || s[1].next < len(s[1].evs) {
		take(0, 40)
		take(1, 40)
	}
	if marks {
		for q := range 2 {
			out = append(out, kafka.Message{Value: wire.AppendSourceMark(nil, &wire.SourceMark{Topic: "raw", Partition: int32(q), Mark: s[q].max, Idle: true})})
		}
	}
	for i := range out {
		out[i].Topic, out[i].Partition, out[i].Offset = "events", 0, int64(i)
	}
	return out
}

// A replay that reads one input partition far ahead of another makes no
// event late when the partition follows normalize's source marks: the
// watermark waits for the slowest source, and the units and rows are those
// of the whole input handled at once. Once every source is marked idle, the
// partition releases everything without an idle flush of its own. The same
// holds across a restart from the checkpoint in the middle. Without the
// marks the same replay makes events late (the test exercises the skew).
func TestSourceMarksFollowTheSlowestSource(t *testing.T) {
	broker := testenv.Broker(t)
	all := spillEvents(3000)
	ctx := context.Background()

	// The reference: every event in one batch, released by an idle flush.
	ref := newSpillStage(t, broker, 0, "")
	if _, err := ref.Assigned(ctx, "events", 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ref.Handle(ctx, "events", 0, slices.Clone(all)); err != nil {
		t.Fatal(err)
	}
	ref.now = func() time.Time { return time.Now().Add(time.Hour) }
	if _, err := ref.Tick(ctx, "events", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ref.Revoked(ctx, "events", 0); err != nil {
		t.Fatal(err)
	}
	wantRows, wantUnits := ref.rowRecords(t), ref.unitRecords(t)
	if len(wantUnits) < 300 || counter(t, ref.m.events.WithLabelValues("late")) != 0 {
		t.Fatalf("reference: %d units: not a reference", len(wantUnits))
	}

	// run handles msgs in batches of 100 with a lateness of two hours; with
	// restartAt > 0 the partition is revoked after that many records and a
	// new stage restores it from the changelog.
	sources := map[string]int{"raw": 2}
	run := func(msgs []kafka.Message, sources map[string]int, restartAt int) (rows, units []string, late float64, wm int64) {
		ss := newSpillStage(t, broker, 0, "")
		cfg := ss.cfg
		cfg.Lateness, cfg.Sources = 2*time.Hour, sources
		stage := func() *Stage {
			k := stagetest.New(t, broker, "window", cfg.StateTopic+"-dlq", nil)
			return newTestStage(t, k.Config, k.Producer, k.Registry, cfg)
		}
		s := stage()
		from, err := s.Assigned(ctx, "events", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		end := len(msgs)
		if restartAt > 0 {
			end = restartAt
		}
		handle := func(s *Stage, from, end int) {
			for i := from; i < end; i += 100 {
				if _, err := s.Handle(ctx, "events", 0, slices.Clone(msgs[i:min(i+100, end)])); err != nil {
					t.Fatal(err)
				}
			}
		}
		handle(s, int(from), end)
		late = counter(t, s.m.events.WithLabelValues("late"))
		if restartAt > 0 {
			before := s.part(0).ready()
			if _, err := s.Revoked(ctx, "events", 0); err != nil {
				t.Fatal(err)
			}
			s = stage()
			if from, err = s.Assigned(ctx, "events", 0, int64(restartAt)); err != nil {
				t.Fatal(err)
			}
			// The watermark as of the checkpoint: a replay judges late
			// what was judged late before.
			if after := s.part(0).ready(); after != before || before <= 0 {
				t.Errorf("restored watermark %d, before the restart %d", after, before)
			}
			if from >= int64(restartAt) {
				t.Fatalf("restored partition replays from %d: it held nothing at %d", from, restartAt)
			}
			handle(s, int(from), len(msgs))
			late += counter(t, s.m.events.WithLabelValues("late"))
		}
		wm = s.part(0).buf.Released()
		if _, err := s.Revoked(ctx, "events", 0); err != nil {
			t.Fatal(err)
		}
		return ss.rowRecords(t), ss.unitRecords(t), late, wm
	}

	for _, packed := range []bool{false, true} {
		marked := skewedSources(t, all, true, packed)
		for _, restartAt := range []int{0, len(marked) / 3} {
			rows, units, late, _ := run(marked, sources, restartAt)
			if late != 0 {
				t.Errorf("packed %v, restart at %d: %v events late with source marks", packed, restartAt, late)
			}
			if !slices.Equal(rows, wantRows) || !slices.Equal(units, wantUnits) {
				t.Errorf("packed %v, restart at %d: %d rows, %d units; reference %d rows, %d units", packed, restartAt, len(rows), len(units), len(wantRows), len(wantUnits))
			}
		}
	}
	marked := skewedSources(t, all, true, false)

	// Without its last two records (the idle marks) the partition still
	// holds the last two hours of the slower source.
	_, units, _, wm := run(marked[:len(marked)-2], sources, 0)
	if len(units) >= len(wantUnits) || len(units) == 0 {
		t.Errorf("before the idle marks: %d of %d units released; want some held and some released", len(units), len(wantUnits))
	}
	if wm <= 0 {
		t.Errorf("before the idle marks: watermark %d", wm)
	}

	// Sources configured but no marks yet (a normalize that writes none):
	// nothing is released, nothing is late.
	_, units, late, _ := run(skewedSources(t, all, false, false), sources, 0)
	if late != 0 || len(units) != 0 {
		t.Errorf("sources but no marks: %d units released, %v late; want everything held", len(units), late)
	}
	// Without sources the watermark is the highest event time seen less
	// the lateness: the skew makes events late.
	if _, _, late, _ := run(skewedSources(t, all, false, false), nil, 0); late == 0 {
		t.Error("without source marks nothing was late: the replay is not skewed past the lateness")
	}
}
