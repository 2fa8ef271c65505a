package window

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/accounts"
	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/pricing"
	"github.com/wameter/wameter/pkg/stream"
	"github.com/wameter/wameter/pkg/testenv"
	"github.com/wameter/wameter/services/wameter/internal/stage"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// v1State is a typical customer's state (a service window, one open
// conversation, three remembered messages) as changelogs written before
// state version 2 hold it.
func v1State(i int) []byte {
	b := []byte{1}
	b = binary.AppendUvarint(b, 102938475610)
	for _, v := range []int64{1754352000 + int64(i%1000), 0, 0, 1754350000, 0, 0, 0, 0} {
		b = binary.AppendVarint(b, v)
	}
	b = binary.AppendUvarint(b, 3)
	for m := 0; m < 3; m++ {
		b = binary.LittleEndian.AppendUint64(b, uint64(0x9e3779b97f4a7c15)*uint64(i*3+m+1))
		b = binary.AppendVarint(b, 1754300000+int64(m)*600)
		b = binary.AppendVarint(b, 1754300002+int64(m)*600)
		b = append(b, 2, 2)
	}
	return b
}

func gauge(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

func restoreKey(i int) billing.Key {
	return billing.Key{PhoneNumberID: 106540352242922, Customer: uint64(5511900000000 + i)}
}

// fillChangelog writes n per-key states (every hundredth deleted again by
// a tombstone) and a checkpoint to partition 0 of a fresh compacted topic,
// and returns a window stage whose changelog it is.
func fillChangelog(t testing.TB, n int) *Stage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kcfg := stream.Config{Brokers: []string{testenv.Broker(t)}}
	topic := fmt.Sprintf("window-state-test-%d-%d", n, time.Now().UnixNano())
	if _, err := stream.EnsureTopics(ctx, kcfg, []stream.TopicSpec{{Name: topic, Partitions: 1, ReplicationFactor: 1,
		Configs: map[string]string{"cleanup.policy": "compact"}}}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	p, err := stream.NewProducer(kcfg, stream.ProducerConfig{BatchSize: 10000}, zap.NewNop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	batch := make([]kafka.Message, 0, 10000)
	write := func(key, value []byte, last bool) {
		batch = append(batch, stream.WithPartition(kafka.Message{Topic: topic, Key: key, Value: value}, 0))
		if len(batch) == cap(batch) || last {
			if err := p.WriteMessages(ctx, batch...); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	stateKey := func(i int) []byte {
		k := restoreKey(i)
		key := []byte{'s'}
		key = binary.BigEndian.AppendUint64(key, k.PhoneNumberID)
		return binary.BigEndian.AppendUint64(key, k.Customer)
	}
	for i := 0; i < n; i++ {
		write(stateKey(i), v1State(i), false)
		if i%100 == 99 {
			write(stateKey(i), nil, false)
		}
	}
	c := checkpoint{released: 1754300000, maxSeen: 1754300100, seq: 77, next: 1000, replayFrom: 900, lastSweep: 1754298000}
	write([]byte{'m'}, c.marshal(), true)

	return newTestStage(t, kcfg, p, reg, Config{EventsTopic: "events", UnitsTopic: "units", RowsTopic: "rows",
		StateTopic: topic, UnitsPartitions: 1, RowsPartitions: 1, IdleFlush: time.Second})
}

// newTestStage returns a window stage with cfg writing through p, with the
// built-in prices, no accounts file, and dead letters to <state topic>-dlq.
func newTestStage(t testing.TB, kcfg stream.Config, p *stream.Producer, reg *prometheus.Registry, cfg Config) *Stage {
	t.Helper()
	cat, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	dlq, err := stream.NewDeadLetters(p, stream.DeadLetterConfig{Topic: cfg.StateTopic + "-dlq", Stage: "window"}, reg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, stage.Deps{Kafka: kcfg, Catalog: cat, Accounts: accounts.Empty(), Producer: p, DLQ: dlq,
		Logger: zap.NewNop(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A partition restored from a changelog written by the previous state
// version holds every live key with its state, and resumes where the
// checkpoint says.
func TestAssignedRestoresVersion1Changelog(t *testing.T) {
	const n = 3000
	s := fillChangelog(t, n)
	start, err := s.Assigned(context.Background(), "events", 0, 950)
	if err != nil {
		t.Fatal(err)
	}
	if start != 900 {
		t.Errorf("replay from %d, want the checkpoint's 900", start)
	}
	pt := s.part(0)
	if got, want := pt.states.Len(), n-n/100; got != want {
		t.Fatalf("%d keys restored, want %d", got, want)
	}
	if pt.states.Hot() != 0 {
		t.Errorf("%d keys decoded by the restore, want none", pt.states.Hot())
	}
	if got := gauge(t, s.m.keys.WithLabelValues("0")); got != n-n/100 {
		t.Errorf("wameter_window_state_keys = %v", got)
	}
	if got := gauge(t, s.m.stateBytes.WithLabelValues("0")); got < 50*(n-n/100) || got > 1000*n {
		t.Errorf("wameter_window_state_bytes = %v for %d keys", got, n-n/100)
	}
	for _, i := range []int{0, 98, 99, 1234, n - 1} {
		st, err := pt.states.Get(restoreKey(i))
		if err != nil {
			t.Fatal(err)
		}
		var want billing.State
		if i%100 != 99 {
			want.UnmarshalBinary(v1State(i))
		}
		got, _ := st.MarshalBinary()
		if w, _ := want.MarshalBinary(); string(got) != string(w) {
			t.Errorf("key %d restored as %x, want %x", i, got, w)
		}
	}
}

// BenchmarkRestoreMillionKeys measures how long a window partition holding
// a million customers (WAMETER_BENCH_KEYS to change it) takes to come back
// after a restart or a partition move (Stage.Assigned: reading the
// changelog and filling the state store), and the memory the restored
// states hold per key.
func BenchmarkRestoreMillionKeys(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("WAMETER_BENCH_KEYS")); err == nil && v > 0 {
		n = v
	}
	s := fillChangelog(b, n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.parts.Delete(0)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		if _, err := s.Assigned(context.Background(), "events", 0, 0); err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(elapsed.Seconds(), "s/restore")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "keys/s")
		b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/float64(n), "B/key")
	}
}
