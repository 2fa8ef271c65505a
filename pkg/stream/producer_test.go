package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestBalancerMatchesKafkaHash(t *testing.T) {
	var ours Balancer
	for n := 1; n <= 16; n++ {
		partitions := make([]int, n)
		for i := range partitions {
			partitions[i] = i
		}
		for i := range 2000 {
			m := kafka.Message{Key: fmt.Appendf(nil, "wa-%d", i*7919)}
			want := (&kafka.Hash{}).Balance(m, partitions...)
			if got := ours.Balance(m, partitions...); got != want {
				t.Fatalf("key %q over %d partitions: Balancer %d, kafka.Hash %d", m.Key, n, got, want)
			}
		}
	}
}

func TestBalancerExplicitPartition(t *testing.T) {
	var b Balancer
	partitions := []int{0, 1, 2, 3, 4, 5, 6, 7}
	for p := range partitions {
		m := WithPartition(kafka.Message{Key: []byte("same-key")}, p)
		if got := b.Balance(m, partitions...); got != p {
			t.Errorf("WithPartition(%d) routed to %d", p, got)
		}
	}
	// Partition set without WithPartition is ignored, as by kafka.Writer.
	m := kafka.Message{Key: []byte("same-key"), Partition: 5}
	want := (&kafka.Hash{}).Balance(m, partitions...)
	if got := b.Balance(m, partitions...); got != want {
		t.Errorf("plain Partition field routed to %d, want hash %d", got, want)
	}
}

func TestProducerConfigValidate(t *testing.T) {
	f := func(cfg ProducerConfig, want string) {
		t.Helper()
		err := cfg.Validate()
		switch {
		case want == "" && err != nil:
			t.Errorf("Validate(%+v) = %v, want nil", cfg, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("Validate(%+v) = %v, want %q", cfg, err, want)
		}
	}
	f(ProducerConfig{}, "")
	f(ProducerConfig{Compression: "zstd", BatchSize: 10, BatchTimeout: time.Millisecond}, "")
	f(ProducerConfig{Compression: "gzip"}, `compression "gzip"`)
	f(ProducerConfig{BatchSize: -1}, "batch_size")
	f(ProducerConfig{RetryBackoffMin: time.Second, RetryBackoffMax: time.Millisecond}, "retry backoff")
}

func TestRetriable(t *testing.T) {
	f := func(err error, want bool) {
		t.Helper()
		if got := retriable(err); got != want {
			t.Errorf("retriable(%v) = %t, want %t", err, got, want)
		}
	}
	f(nil, false)
	f(context.Canceled, false)
	f(fmt.Errorf("write: %w", context.DeadlineExceeded), false)
	f(kafka.NotLeaderForPartition, true)
	f(kafka.LeaderNotAvailable, true)
	f(kafka.BrokerNotAvailable, true)
	f(fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true)
	f(io.ErrUnexpectedEOF, true)
	f(kafka.TopicAuthorizationFailed, false)
	f(kafka.InvalidReplicationFactor, false)
	f(kafka.MessageTooLargeError{}, false)
	f(kafka.WriteErrors{nil, kafka.NotLeaderForPartition}, true)
	f(kafka.WriteErrors{kafka.NotLeaderForPartition, kafka.TopicAuthorizationFailed}, false)
	f(errors.New("kafka.(*Client).Metadata: connection reset"), true)
	// A request's own deadline (a slow broker) is retried; the caller's is final.
	live, expired := context.Background(), func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 0)
		defer cancel()
		<-ctx.Done()
		return ctx
	}()
	f(timedOut(live, fmt.Errorf("produce: %w", context.DeadlineExceeded)), true)
	f(timedOut(expired, fmt.Errorf("produce: %w", context.DeadlineExceeded)), false)
	f(timedOut(live, kafka.TopicAuthorizationFailed), false)
}

func TestBackoffStaysWithinBounds(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: 2 * time.Second}
	for i := range 50 {
		d := b.next()
		if d < 50*time.Millisecond || d > 2*time.Second {
			t.Fatalf("attempt %d: wait %s outside [50ms, 2s]", i, d)
		}
	}
}
