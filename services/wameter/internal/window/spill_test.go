package window

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/stream"
	"github.com/wameter/wameter/pkg/testenv"
	"github.com/wameter/wameter/pkg/webhook"
	"github.com/wameter/wameter/services/wameter/internal/stage/stagetest"
)

// spillStage is a window stage on its own topics of a real broker.
type spillStage struct {
	*Stage
	kcfg        stream.Config
	rows, units string
}

func newSpillStage(t *testing.T, broker string, bufferBytes int64, spillDir string) *spillStage {
	t.Helper()
	prefix := fmt.Sprintf("spill-test-%d-%d", bufferBytes, time.Now().UnixNano())
	rows, units := prefix+"-rows", prefix+"-units"
	k := stagetest.New(t, broker, "window", prefix+"-state-dlq", map[string]int{rows: 1, units: 1, prefix + "-state": 1})
	ss := &spillStage{kcfg: k.Config, rows: rows, units: units}
	s := newTestStage(t, k.Config, k.Producer, k.Registry, Config{EventsTopic: "events", UnitsTopic: ss.units, RowsTopic: ss.rows,
		StateTopic: prefix + "-state", UnitsPartitions: 1, RowsPartitions: 1, Lateness: 48 * time.Hour, IdleFlush: time.Second,
		MessageMemory: 168 * time.Hour, BufferBytes: bufferBytes, SpillDir: spillDir})
	ss.Stage = s
	return ss
}

// rowRecords returns the encoding of every row written, in order (each
// holds its id, the key it was packed by).
func (ss *spillStage) rowRecords(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, p := range stagetest.Parts(t, ss.kcfg.Brokers[0], ss.rows, 0) {
		out = append(out, string(p))
	}
	return out
}

// spillEvents is a day of traffic of many customers, inbound messages and
// delivered template messages, shuffled within an hour of disorder.
func spillEvents(n int) []kafka.Message {
	rng := rand.New(rand.NewPCG(7, 11))
	start := time.Date(2024, 8, 4, 0, 0, 0, 0, time.UTC).Unix() // CBP: conversations too
	type timed struct {
		at  int64
		msg []byte
	}
	var evs []timed
	kinds := []billing.MsgKind{billing.KindMarketing, billing.KindUtility, billing.KindAuthentication, billing.KindNonTemplate}
	for i := 0; i < n; i++ {
		at := start + int64(i)*86400/int64(n)
		ev := billing.Event{Time: at, WABA: 102938475610, PhoneNumberID: 106540352242922,
			Customer: 5511900000000 + uint64(rng.IntN(n/4+1)), MessageID: "wamid." + strconv.Itoa(i)}
		if rng.IntN(4) == 0 {
			ev.Kind = billing.Inbound
		} else {
			ev.Kind, ev.Status, ev.MsgKind = billing.Status, billing.StatusDelivered, kinds[rng.IntN(len(kinds))]
		}
		evs = append(evs, timed{at + rng.Int64N(3600), webhook.AppendEvent(nil, &ev)})
	}
	slices.SortStableFunc(evs, func(a, b timed) int { return int(a.at - b.at) })
	msgs := make([]kafka.Message, len(evs))
	for i, e := range evs {
		msgs[i] = kafka.Message{Topic: "events", Partition: 0, Offset: int64(i), Value: e.msg}
	}
	return msgs
}

// A window partition whose reorder buffer is bounded far below what it
// holds spills to disk and emits exactly the rows and units of an unbounded
// one, and leaves no spill file behind once revoked.
func TestWindowSpillEmitsWhatAnUnboundedBufferEmits(t *testing.T) {
	broker := testenv.Broker(t)
	msgs := spillEvents(20000)
	spillDir := t.TempDir()
	run := func(bufferBytes int64) (rows, units []string, spilled float64) {
		ss := newSpillStage(t, broker, bufferBytes, spillDir)
		ctx := context.Background()
		if _, err := ss.Assigned(ctx, "events", 0, 0); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(msgs); i += 500 {
			batch := slices.Clone(msgs[i:min(i+500, len(msgs))])
			if _, err := ss.Handle(ctx, "events", 0, batch); err != nil {
				t.Fatal(err)
			}
		}
		spilled = gauge(t, ss.m.spilled.WithLabelValues("0"))
		ss.now = func() time.Time { return time.Now().Add(time.Hour) } // idle: release the rest
		if _, err := ss.Tick(ctx, "events", 0); err != nil {
			t.Fatal(err)
		}
		if _, err := ss.Revoked(ctx, "events", 0); err != nil {
			t.Fatal(err)
		}
		return ss.rowRecords(t), ss.unitRecords(t), spilled
	}
	wantRows, wantUnits, _ := run(0)
	gotRows, gotUnits, spilled := run(64 << 10)
	if len(wantUnits) < 1000 || len(wantRows) < 100 {
		t.Fatalf("the unbounded run emitted %d units and %d rows: too few to compare", len(wantUnits), len(wantRows))
	}
	t.Logf("%d rows, %d units; %v events on disk after the last batch", len(gotRows), len(gotUnits), spilled)
	if spilled == 0 {
		t.Error("the bounded buffer never had events on disk: the test does not exercise the spill")
	}
	if !slices.Equal(gotRows, wantRows) {
		t.Errorf("rows differ: %d with spilling, %d without", len(gotRows), len(wantRows))
	}
	if !slices.Equal(gotUnits, wantUnits) {
		t.Errorf("units differ: %d with spilling, %d without", len(gotUnits), len(wantUnits))
	}
	left, _ := filepath.Glob(filepath.Join(spillDir, "*", "*"))
	if len(left) > 0 {
		t.Errorf("spill files left after revoke: %v", left)
	}
	if _, err := os.Stat(spillDir); err != nil {
		t.Error(err)
	}
}
