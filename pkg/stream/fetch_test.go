package stream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/wameter/wameter/pkg/testenv"
)

// openReader starts inside a compressed record batch at the offset asked
// for, and hands over keys, values, headers, offsets and the high
// watermark as written, across fetch responses smaller than the partition.
func TestOpenReaderFromTheMiddleOfABatch(t *testing.T) {
	cfg := testConfig(testenv.Broker(t))
	topic := testTopic(t, "fetch")
	ensureTopic(t, cfg, topic, 1)
	// Record batches of 50, so that fetches of 2000 bytes take several.
	p := newTestProducer(t, cfg, ProducerConfig{Compression: "lz4", BatchSize: 50})
	const n = 300
	var msgs []kafka.Message
	for i := range n {
		m := kafka.Message{Topic: topic, Value: fmt.Appendf(nil, "value-%03d", i)}
		if i%2 == 0 {
			m.Key = fmt.Appendf(nil, "key-%03d", i)
			m.Headers = []kafka.Header{{Key: "h", Value: fmt.Appendf(nil, "%d", i)}}
		}
		msgs = append(msgs, WithPartition(m, 0))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}

	c, err := NewConsumer(cfg, ConsumerConfig{GroupID: "fetch-test", Topics: []string{topic}, MaxBytes: 2000, BatchSize: 7},
		&valueSet{values: map[string]int{}}, testLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	const start = 17
	records, fatal, stop := c.openReader(topic, 0, start, testLogger(t))
	defer stop()
	for i := start; i < n; i++ {
		var m kafka.Message
		select {
		case m = <-records:
		case err := <-fatal:
			t.Fatalf("record %d: %v", i, err)
		case <-ctx.Done():
			t.Fatalf("record %d: %v", i, ctx.Err())
		}
		if m.Offset != int64(i) || string(m.Value) != fmt.Sprintf("value-%03d", i) || m.HighWaterMark != n || m.Topic != topic {
			t.Fatalf("record %d: offset %d value %q high watermark %d topic %q", i, m.Offset, m.Value, m.HighWaterMark, m.Topic)
		}
		wantKey, wantHeaders := "", 0
		if i%2 == 0 {
			wantKey, wantHeaders = fmt.Sprintf("key-%03d", i), 1
		}
		if string(m.Key) != wantKey || len(m.Headers) != wantHeaders ||
			(wantHeaders == 1 && (m.Headers[0].Key != "h" || string(m.Headers[0].Value) != fmt.Sprint(i))) {
			t.Fatalf("record %d: key %q headers %v", i, m.Key, m.Headers)
		}
	}
}
