package changelog

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/stream"
	"github.com/wameter/wameter/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// typicalState is a state with a service window, one open conversation and
// three remembered messages, as State.AppendBinary writes it.
var typicalState = func() []byte {
	b := []byte{1}
	b = binary.AppendUvarint(b, 102938475610)
	for _, v := range []int64{1754352000, 0, 0, 1754350000, 0, 0, 0, 0} {
		b = binary.AppendVarint(b, v)
	}
	b = binary.AppendUvarint(b, 3)
	for i := 0; i < 3; i++ {
		b = binary.LittleEndian.AppendUint64(b, uint64(0x9e3779b97f4a7c15)*uint64(i+1))
		b = binary.AppendVarint(b, 1754300000+int64(i)*600)
		b = binary.AppendVarint(b, 1754300002+int64(i)*600)
		b = append(b, 2, 2)
	}
	return b
}()

// fill writes n per-key states (as the window stage checkpoints them) and a
// few tombstones and rewrites to partition 0 of a fresh compacted topic.
func fill(t testing.TB, n int) (stream.Config, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := stream.Config{Brokers: []string{testenv.Broker(t)}}
	topic := fmt.Sprintf("changelog-test-%d-%d", n, time.Now().UnixNano())
	if _, err := stream.EnsureTopics(ctx, cfg, []stream.TopicSpec{{Name: topic, Partitions: 1, ReplicationFactor: 1,
		Configs: map[string]string{"cleanup.policy": "compact"}}}); err != nil {
		t.Fatal(err)
	}
	p, err := stream.NewProducer(cfg, stream.ProducerConfig{BatchSize: 10000}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// A typical active customer: windows open and a few remembered messages.
	var st billing.State
	if err := st.UnmarshalBinary(typicalState); err != nil {
		t.Fatal(err)
	}
	value, _ := st.AppendBinary(nil)
	batch := make([]kafka.Message, 0, 10000)
	for i := 0; i < n; i++ {
		key := make([]byte, 17)
		key[0] = 's'
		binary.BigEndian.PutUint64(key[1:9], 106540352242922)
		binary.BigEndian.PutUint64(key[9:17], uint64(5511900000000+i))
		v := value
		if i%100 == 99 {
			v = nil // evicted
		}
		batch = append(batch, stream.WithPartition(kafka.Message{Topic: topic, Key: key, Value: v}, 0))
		if len(batch) == cap(batch) || i == n-1 {
			if err := p.WriteMessages(ctx, batch...); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return cfg, topic
}

func TestRestoreReadsToTheEnd(t *testing.T) {
	cfg, topic := fill(t, 2500)
	keys := map[string]bool{}
	n, err := Restore(context.Background(), cfg, topic, 0, func(key, value []byte) error {
		if value == nil {
			delete(keys, string(key))
		} else {
			keys[string(key)] = true
		}
		return nil
	})
	if err != nil || n != 2500 {
		t.Fatalf("restored %d records, %v; want 2500", n, err)
	}
	if len(keys) != 2500-25 {
		t.Errorf("%d live keys, want %d", len(keys), 2500-25)
	}
}

// BenchmarkRestoreMillionKeys measures how long a window partition holding
// a million customers takes to come back after a restart or a partition
// move: reading its changelog and decoding every state. Set
// WAMETER_BENCH_KEYS to change the count.
func BenchmarkRestoreMillionKeys(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("WAMETER_BENCH_KEYS")); err == nil && v > 0 {
		n = v
	}
	cfg, topic := fill(b, n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		states := make(map[billing.Key]*billing.State, n)
		start := time.Now()
		got, err := Restore(context.Background(), cfg, topic, 0, func(key, value []byte) error {
			k := billing.Key{PhoneNumberID: binary.BigEndian.Uint64(key[1:9]), Customer: binary.BigEndian.Uint64(key[9:17])}
			if value == nil {
				delete(states, k)
				return nil
			}
			st := &billing.State{}
			if err := st.UnmarshalBinary(value); err != nil {
				return err
			}
			states[k] = st
			return nil
		})
		if err != nil || got != n {
			b.Fatalf("restored %d of %d: %v", got, n, err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/restore")
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "keys/s")
	}
}
