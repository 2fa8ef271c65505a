package stream

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wameter/wameter/pkg/testenv"
)

// While the broker is down a write keeps retrying and the producer reports
// unhealthy (the service's /readyz follows it); once the broker is back the
// write lands and the producer is healthy again.
func TestProducerHealthFollowsTheBroker(t *testing.T) {
	b := testenv.NewBroker(t)
	cfg := testConfig(b.Addr)
	topic := testTopic(t, "health")
	ensureTopic(t, cfg, topic, 1)
	p := newTestProducer(t, cfg, ProducerConfig{RetryBackoffMin: 50 * time.Millisecond, RetryBackoffMax: 200 * time.Millisecond, WriteTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.WriteMessages(ctx, kafka.Message{Topic: topic, Value: []byte("before")}); err != nil || !p.Healthy() {
		t.Fatalf("write with the broker up: %v, healthy %v", err, p.Healthy())
	}
	b.Kill()
	done := make(chan error, 1)
	go func() { done <- p.WriteMessages(ctx, kafka.Message{Topic: topic, Value: []byte("during")}) }()
	waitFor(t, 30*time.Second, "the producer to report unhealthy", func() bool { return !p.Healthy() })
	b.Restart()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("write across the outage: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the write did not land after the broker came back")
	}
	if !p.Healthy() {
		t.Error("healthy is still false after a successful write")
	}
}
