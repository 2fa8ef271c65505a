package window

import (
	"slices"
	"strconv"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/wameter/wameter/pkg/stream"
	"github.com/wameter/wameter/pkg/testenv"
	"github.com/wameter/wameter/services/wameter/internal/wire"
)

// pack packs single-event records into packed records of sizes[i%len(sizes)]
// events each, renumbered from offset 0.
func pack(msgs []kafka.Message, sizes ...int) []kafka.Message {
	var out []kafka.Message
	for i, k := 0, 0; i < len(msgs); k++ {
		n := min(sizes[k%len(sizes)], len(msgs)-i)
		v := wire.BeginPacked(nil)
		for _, m := range msgs[i : i+n] {
			v = wire.AppendPacked(v, m.Value)
		}
		out = append(out, kafka.Message{Topic: "events", Partition: 0, Offset: int64(len(out)), Value: v})
		i += n
	}
	return out
}

// Packed records (normalize packs a batch's events per events partition)
// derive exactly the rows, units and late events of the same events one to
// a record, in any batches; an undecodable event in a packed record is
// dead-lettered alone, with the record's coordinates and its own bytes, and
// a malformed packed record whole; the other events go on.
func TestPackedRecordsAreTheirEvents(t *testing.T) {
	broker := testenv.Broker(t)
	single := laggingEvents(t)
	run := func(msgs []kafka.Message, batchSize int) (ss *spillStage, rows, units []string, late, bad float64) {
		ss = newSpillStage(t, broker, 0, "")
		ss.replay(t, msgs, batchSize)
		return ss, ss.rowRecords(t), ss.unitRecords(t),
			counter(t, ss.m.events.WithLabelValues("late")), counter(t, ss.m.events.WithLabelValues("bad"))
	}
	_, wantRows, wantUnits, wantLate, _ := run(single, 500)
	if wantLate == 0 || len(wantUnits) < 100 {
		t.Fatalf("reference: %v late, %d units: the test exercises nothing", wantLate, len(wantUnits))
	}
	packed := pack(single, 1, 64, 7, 200)
	for _, size := range []int{1, 3, len(packed)} {
		_, rows, units, late, bad := run(packed, size)
		if late != wantLate || bad != 0 || !slices.Equal(rows, wantRows) || !slices.Equal(units, wantUnits) {
			t.Errorf("packed, batches of %d records: %v late, %v bad, %d rows, %d units; one event a record: %v late, %d rows, %d units",
				size, late, bad, len(rows), len(units), wantLate, len(wantRows), len(wantUnits))
		}
	}

	// A packed record with a garbage event between two good ones, and a
	// malformed packed record (a length past its end), appended after the
	// input.
	garbage := []byte{0x01, 0xff, 0xff}
	mixed := wire.AppendPacked(wire.AppendPacked(wire.AppendPacked(wire.BeginPacked(nil), single[0].Value), garbage), single[1].Value)
	broken := append(wire.BeginPacked(nil), 0x7f, 0x01)
	withBad := append(slices.Clone(packed),
		kafka.Message{Topic: "events", Offset: int64(len(packed)), Value: mixed},
		kafka.Message{Topic: "events", Offset: int64(len(packed) + 1), Value: broken})
	ss, rows, units, late, bad := run(withBad, 10)
	// The good events of the mixed record are duplicates (same message
	// ids, same times) of events handled before: they change nothing.
	if bad != 2 || late != wantLate || !slices.Equal(rows, wantRows) || !slices.Equal(units, wantUnits) {
		t.Errorf("with bad records: %v bad (want 2), %v late, %d rows, %d units", bad, late, len(rows), len(units))
	}
	var letters []string
	for _, m := range testenv.ReadPartition(t, broker, ss.cfg.StateTopic+"-dlq", 0) {
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		if h[stream.HeaderDLQReason] != "bad_event" {
			continue
		}
		letters = append(letters, h[stream.HeaderDLQSourceOffset]+":"+strconv.Quote(string(m.Value)))
	}
	want := []string{strconv.Itoa(len(packed)) + ":" + strconv.Quote(string(garbage)),
		strconv.Itoa(len(packed)+1) + ":" + strconv.Quote(string(broken))}
	if !slices.Equal(letters, want) {
		t.Errorf("bad_event dead letters %v, want %v", letters, want)
	}
}
