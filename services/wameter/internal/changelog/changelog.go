// Package changelog checkpoints a stage's per-partition state to a
// compacted Kafka topic (key → latest state; a nil value deletes the key)
// and restores it when the partition is assigned: the state follows the
// partition to whichever instance owns it.
package changelog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/wameter/wameter/pkg/stream"
)

// Restore reads partition of topic from its first offset to its end as of
// the call and calls fn for each record in offset order (a later record of a
// key replaces an earlier one; nil value = deleted). It returns how many
// records it read.
func Restore(ctx context.Context, cfg stream.Config, topic string, partition int, fn func(key, value []byte) error) (int, error) {
	dialer, err := cfg.Dialer()
	if err != nil {
		return 0, err
	}
	var conn *kafka.Conn
	for attempt := 0; ; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err = dialer.DialLeader(dctx, "tcp", cfg.Brokers[attempt%len(cfg.Brokers)], topic, partition)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("changelog %s/%d: dial leader: %w", topic, partition, err)
		}
		select { // the broker may be restarting: wait for it as long as ctx allows
		case <-ctx.Done():
		case <-time.After(min(200*time.Millisecond*time.Duration(attempt+1), 2*time.Second)):
		}
	}
	first, last, err := conn.ReadOffsets()
	conn.Close()
	if err != nil {
		return 0, fmt.Errorf("changelog %s/%d: read offsets: %w", topic, partition, err)
	}
	if last <= first {
		return 0, nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: cfg.Brokers, Topic: topic, Partition: partition, Dialer: dialer,
		MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 250 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return 0, err
	}
	n := 0
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return n, err
			}
			return n, fmt.Errorf("changelog %s/%d: read at %d: %w", topic, partition, r.Offset(), err)
		}
		n++
		if err := fn(m.Key, m.Value); err != nil {
			return n, fmt.Errorf("changelog %s/%d offset %d: %w", topic, partition, m.Offset, err)
		}
		if m.Offset >= last-1 {
			return n, nil
		}
	}
}

// RestoreRetrying is Restore that starts over (calling reset first, so the
// caller drops what a failed attempt gave it) until it succeeds or ctx ends:
// a broker outage during a partition assignment delays the partition, it
// does not stop the process.
func RestoreRetrying(ctx context.Context, cfg stream.Config, topic string, partition int, reset func(), fn func(key, value []byte) error, onRetry func(error)) (int, error) {
	for attempt := 0; ; attempt++ {
		reset()
		n, err := Restore(ctx, cfg, topic, partition, fn)
		if err == nil || ctx.Err() != nil {
			return n, err
		}
		onRetry(err)
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(min(500*time.Millisecond*time.Duration(attempt+1), 5*time.Second)):
		}
	}
}
