package stream

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func testConfig(addr string) Config {
	return Config{Brokers: []string{addr}, ClientID: "stream-test", DialTimeout: 2 * time.Second}
}

// testLogger logs warnings and errors to the test log. Components must be
// closed before the test ends: zaptest fails a test that logs after it.
func testLogger(t testing.TB) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
}

var nonTopicChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// testTopic is a topic name of its own for t, so tests sharing one broker
// do not see each other's records.
func testTopic(t testing.TB, suffix string) string {
	name := nonTopicChars.ReplaceAllString(t.Name(), "_")
	return fmt.Sprintf("test.%s.%s.%06d", strings.ToLower(name), suffix, rand.N(1000000))
}

func ensureTopic(t testing.TB, cfg Config, name string, partitions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	counts, err := EnsureTopics(ctx, cfg, []TopicSpec{{Name: name, Partitions: partitions, ReplicationFactor: 1}})
	if err != nil {
		t.Fatalf("ensure topic %s: %v", name, err)
	}
	if counts[name] != partitions {
		t.Fatalf("topic %s has %d partitions, want %d", name, counts[name], partitions)
	}
}

func newTestProducer(t testing.TB, cfg Config, pcfg ProducerConfig) *Producer {
	t.Helper()
	p, err := NewProducer(cfg, pcfg, testLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// produceKeyed writes n records keyed wa-<first..first+n-1> to topic.
func produceKeyed(t testing.TB, p *Producer, topic string, first, n int) {
	t.Helper()
	msgs := make([]kafka.Message, 0, n)
	for i := first; i < first+n; i++ {
		msgs = append(msgs, kafka.Message{Topic: topic, Key: fmt.Appendf(nil, "wa-%d", i), Value: fmt.Appendf(nil, "record-%d", i)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// endOffsets returns the high watermark of each partition of topic.
func endOffsets(t testing.TB, cfg Config, topic string, partitions int) map[int]int64 {
	t.Helper()
	client := newTestClient(t, cfg)
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for p := range partitions {
		req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
	}
	resp, err := client.ListOffsets(context.Background(), req)
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	out := make(map[int]int64, partitions)
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("list offsets %s/%d: %v", topic, po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	return out
}

// committedOffsets returns the offsets group committed on topic.
func committedOffsets(t testing.TB, cfg Config, group, topic string, partitions int) map[int]int64 {
	t.Helper()
	client := newTestClient(t, cfg)
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	resp, err := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	if resp.Error != nil {
		t.Fatalf("offset fetch: %v", resp.Error)
	}
	out := make(map[int]int64, partitions)
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("offset fetch %s/%d: %v", topic, p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// readPartition returns every record of one partition, from its first
// offset to its high watermark at the time of the call.
func readPartition(t testing.TB, cfg Config, topic string, partition int) []kafka.Message {
	t.Helper()
	end := endOffsets(t, cfg, topic, partition+1)[partition]
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: cfg.Brokers, Topic: topic, Partition: partition,
		MaxWait: 100 * time.Millisecond, ReadLagInterval: -1, ErrorLogger: KafkaErrorLogger(testLogger(t)),
	})
	defer r.Close()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []kafka.Message
	for next := int64(0); next < end; {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read %s/%d at %d of %d: %v", topic, partition, next, end, err)
		}
		out = append(out, m)
		next = m.Offset + 1
	}
	return out
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// newTestClient returns a kafka-go Client with a Transport of its own:
// kafka-go's shared DefaultTransport answers metadata from a cache that
// does not know topics created since its last refresh.
func newTestClient(t testing.TB, cfg Config) *kafka.Client {
	tr := &kafka.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second, Transport: tr}
}
