// Package stagetest sets up what a stage's tests need on a real broker:
// topics, a producer and dead letters.
package stagetest

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/stream"
	"github.com/wameter/wameter/pkg/testenv"
	"github.com/wameter/wameter/services/wameter/internal/wire"
)

// Kafka is a stage's Kafka side in a test.
type Kafka struct {
	Config   stream.Config
	Registry *prometheus.Registry
	Producer *stream.Producer
	DLQ      *stream.DeadLetters
}

// New creates the topics (name: partitions) and the dead-letter topic dlq
// (one partition) on broker, and returns a producer (closed when the test
// ends) and dead letters of stage to dlq, registered in a new registry.
func New(t testing.TB, broker, stage, dlq string, topics map[string]int) *Kafka {
	t.Helper()
	k := &Kafka{Config: stream.Config{Brokers: []string{broker}}, Registry: prometheus.NewRegistry()}
	specs := []stream.TopicSpec{{Name: dlq, Partitions: 1, ReplicationFactor: 1}}
	for name, n := range topics {
		specs = append(specs, stream.TopicSpec{Name: name, Partitions: n, ReplicationFactor: 1})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := stream.EnsureTopics(ctx, k.Config, specs); err != nil {
		t.Fatal(err)
	}
	var err error
	if k.Producer, err = stream.NewProducer(k.Config, stream.ProducerConfig{}, zap.NewNop(), k.Registry); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Producer.Close() })
	if k.DLQ, err = stream.NewDeadLetters(k.Producer, stream.DeadLetterConfig{Topic: dlq, Stage: stage}, k.Registry); err != nil {
		t.Fatal(err)
	}
	return k
}

// Parts returns the encoding of every record of a topic partition on
// broker, a packed record's parts one by one (wire.SplitPacked), in offset
// order.
func Parts(t testing.TB, broker, topic string, partition int) [][]byte {
	t.Helper()
	var out [][]byte
	for _, m := range testenv.ReadPartition(t, broker, topic, partition) {
		parts := [][]byte{m.Value}
		if wire.IsPacked(m.Value) {
			var err error
			if parts, err = wire.SplitPacked(m.Value, nil); err != nil {
				t.Fatalf("%s/%d offset %d: %v", topic, partition, m.Offset, err)
			}
		}
		out = append(out, parts...)
	}
	return out
}
