package stream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/wameter/wameter/pkg/testenv"
)

func BenchmarkBalancer(b *testing.B) {
	var bal Balancer
	partitions := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	keys := make([]kafka.Message, 1024)
	for i := range keys {
		keys[i] = kafka.Message{Key: fmt.Appendf(nil, "4479%08d", i)}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		bal.Balance(keys[i%len(keys)], partitions...)
	}
}

// countingHandler commits after every batch and does nothing else.
type countingHandler struct{ records int }

func (h *countingHandler) Assigned(_ context.Context, _ string, _ int, committed int64) (int64, error) {
	return committed, nil
}

func (h *countingHandler) Handle(_ context.Context, _ string, _ int, batch []kafka.Message) (int64, error) {
	h.records += len(batch)
	return batch[len(batch)-1].Offset + 1, nil
}

func (h *countingHandler) Tick(context.Context, string, int) (int64, error)    { return -1, nil }
func (h *countingHandler) Revoked(context.Context, string, int) (int64, error) { return -1, nil }

// BenchmarkPartitionWorker measures the per-record cost of the partition
// loop (channel hand-off, batching, metrics, commit bookkeeping) without a
// broker.
func BenchmarkPartitionWorker(b *testing.B) {
	h := &countingHandler{}
	w := testWorker(h, &recordingGen{}, ConsumerConfig{BatchSize: 500, BatchWait: time.Second, IdleInterval: time.Hour})
	src := &fakeSource{records: make(chan kafka.Message, 1024), fatal: make(chan error, 1)}
	stopCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.run(stopCtx, context.Background(), 0, src.open) }()
	m := kafka.Message{Topic: "events", Partition: 2, Value: make([]byte, 300), HighWaterMark: 1 << 40}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.Offset = int64(i)
		src.records <- m
	}
	stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkProducerWriteMessages writes batches of 500 keyed 300-byte
// records, acks=all, to a 4-partition topic on the test broker.
func BenchmarkProducerWriteMessages(b *testing.B) {
	cfg := testConfig(testenv.Broker(b))
	topic := testTopic(b, "bench")
	ensureTopic(b, cfg, topic, 4)
	p := newTestProducer(b, cfg, ProducerConfig{})
	const batch = 500
	msgs := make([]kafka.Message, batch)
	for i := range msgs {
		msgs[i] = kafka.Message{Topic: topic, Key: fmt.Appendf(nil, "4479%08d", i), Value: make([]byte, 300)}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(batch * 300)
	for b.Loop() {
		if err := p.WriteMessages(ctx, msgs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
}
