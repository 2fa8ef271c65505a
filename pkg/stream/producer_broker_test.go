package stream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/wameter/wameter/pkg/testenv"
)

func TestProducerRoutesByKeyHashAndExplicitPartition(t *testing.T) {
	cfg := testConfig(testenv.Broker(t))
	topic := testTopic(t, "units")
	ensureTopic(t, cfg, topic, 4)
	p := newTestProducer(t, cfg, ProducerConfig{Compression: "zstd"})

	const keys = 200
	var msgs []kafka.Message
	for i := range keys {
		msgs = append(msgs, kafka.Message{Topic: topic, Key: fmt.Appendf(nil, "wa-%d", i), Value: []byte("ours")})
	}
	for part := range 4 {
		// One control record per partition, all with the same key.
		msgs = append(msgs, WithPartition(kafka.Message{Topic: topic, Key: []byte("watermark"), Value: []byte("control-" + strconv.Itoa(part))}, part))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}

	// A plain kafka-go writer with kafka.Hash, as another service would use
	// (with a Transport of its own, see newTestClient).
	plain := &kafka.Writer{Addr: kafka.TCP(cfg.Brokers...), Topic: topic, Balancer: &kafka.Hash{}, BatchTimeout: time.Millisecond, Transport: &kafka.Transport{}}
	var theirs []kafka.Message
	for i := range keys {
		theirs = append(theirs, kafka.Message{Key: fmt.Appendf(nil, "wa-%d", i), Value: []byte("theirs")})
	}
	if err := plain.WriteMessages(ctx, theirs...); err != nil {
		t.Fatal(err)
	}
	if err := plain.Close(); err != nil {
		t.Fatal(err)
	}

	partitions := []int{0, 1, 2, 3}
	ourPartition := map[string]int{}
	theirPartition := map[string]int{}
	for part := range 4 {
		var controls []string
		for _, m := range readPartition(t, cfg, topic, part) {
			key := string(m.Key)
			switch {
			case key == "watermark":
				controls = append(controls, string(m.Value))
			case string(m.Value) == "ours":
				ourPartition[key] = part
				if want := (&kafka.Hash{}).Balance(m, partitions...); part != want {
					t.Errorf("key %s on partition %d, kafka.Hash says %d", key, part, want)
				}
			default:
				theirPartition[key] = part
			}
		}
		if len(controls) != 1 || controls[0] != "control-"+strconv.Itoa(part) {
			t.Errorf("partition %d control records %q, want exactly control-%d", part, controls, part)
		}
	}
	if len(ourPartition) != keys || len(theirPartition) != keys {
		t.Fatalf("read %d of our keys and %d of theirs, want %d each", len(ourPartition), len(theirPartition), keys)
	}
	for key, part := range ourPartition {
		if theirPartition[key] != part {
			t.Errorf("key %s: ours on %d, plain kafka-go writer on %d", key, part, theirPartition[key])
		}
	}

	// A partition the topic does not have fails fast instead of retrying.
	started := time.Now()
	err := p.WriteMessages(ctx, WithPartition(kafka.Message{Topic: topic, Value: []byte("x")}, 4))
	if !errors.Is(err, ErrNoSuchPartition) {
		t.Errorf("write to partition 4 of 4: %v, want ErrNoSuchPartition", err)
	}
	if time.Since(started) > 5*time.Second {
		t.Errorf("write to a missing partition took %s", time.Since(started))
	}
}

// valueSet is a Handler that collects the values it is handed and commits
// after each batch.
type valueSet struct {
	mu     sync.Mutex
	values map[string]int
}

func (v *valueSet) Assigned(_ context.Context, _ string, _ int, committed int64) (int64, error) {
	return committed, nil
}

func (v *valueSet) Handle(_ context.Context, _ string, _ int, batch []kafka.Message) (int64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, m := range batch {
		v.values[string(m.Value)]++
	}
	return batch[len(batch)-1].Offset + 1, nil
}

func (v *valueSet) Tick(context.Context, string, int) (int64, error)    { return -1, nil }
func (v *valueSet) Revoked(context.Context, string, int) (int64, error) { return -1, nil }

func (v *valueSet) has(values []int) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, i := range values {
		if v.values[strconv.Itoa(i)] == 0 {
			return false
		}
	}
	return true
}

// TestBrokerRestartLosesNothing kills the broker process for a few seconds
// under a producer and a consumer: the producer retries until the broker is
// back, every acknowledged record is in the topic, and the consumer gets
// every one of them.
func TestBrokerRestartLosesNothing(t *testing.T) {
	b := testenv.NewBroker(t)
	cfg := testConfig(b.Addr)
	topic := testTopic(t, "events")
	ensureTopic(t, cfg, topic, 2)
	p := newTestProducer(t, cfg, ProducerConfig{RetryBackoffMin: 50 * time.Millisecond, RetryBackoffMax: 300 * time.Millisecond, WriteTimeout: 2 * time.Second})
	consumed := &valueSet{values: map[string]int{}}
	consumer := startConsumer(t, cfg, testConsumerConfig(testTopic(t, "group"), topic), consumed)

	var (
		mu       sync.Mutex
		acked    []int
		writeErr error
	)
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := p.WriteMessages(ctx, kafka.Message{Topic: topic, Key: fmt.Appendf(nil, "wa-%d", i), Value: []byte(strconv.Itoa(i))})
			cancel()
			mu.Lock()
			if err != nil {
				writeErr = err
				mu.Unlock()
				return
			}
			acked = append(acked, i)
			mu.Unlock()
		}
	}()

	waitFor(t, 30*time.Second, "writes before the kill", func() bool { return ackedCount() >= 10 })
	b.Kill()
	killedAt := ackedCount()
	time.Sleep(3 * time.Second)
	if n := ackedCount(); n > killedAt+1 {
		t.Errorf("%d writes acknowledged while the broker was down", n-killedAt)
	}
	b.Restart()
	waitFor(t, 30*time.Second, "writes after the restart", func() bool { return ackedCount() >= killedAt+10 })
	close(stop)
	<-done
	if writeErr != nil {
		t.Fatalf("WriteMessages gave up: %v", writeErr)
	}

	stored := map[string]bool{}
	for part := range 2 {
		for _, m := range readPartition(t, cfg, topic, part) {
			stored[string(m.Value)] = true
		}
	}
	for _, i := range acked {
		if !stored[strconv.Itoa(i)] {
			t.Errorf("acknowledged record %d is not in the topic", i)
		}
	}
	waitFor(t, 30*time.Second, "the consumer to get every acknowledged record", func() bool { return consumed.has(acked) })
	consumer.stop(t)
	t.Logf("%d records acknowledged, %d before the kill", len(acked), killedAt)
}

// TestProducerKeepsPartitionOrder writes, in one call, more messages per
// partition than one request holds: each partition gets them in the order
// given, however the requests are split and sent.
func TestProducerKeepsPartitionOrder(t *testing.T) {
	cfg := testConfig(testenv.Broker(t))
	topic := testTopic(t, "order")
	ensureTopic(t, cfg, topic, 2)
	p := newTestProducer(t, cfg, ProducerConfig{BatchSize: 7, BatchBytes: 2000})

	const perKey = 100
	var msgs []kafka.Message
	for i := range perKey {
		for _, key := range []string{"a", "b", "c"} {
			msgs = append(msgs, kafka.Message{Topic: topic, Key: []byte(key), Value: fmt.Appendf(nil, "%s-%03d", key, i)})
		}
	}
	for part := range 2 {
		msgs = append(msgs, WithPartition(kafka.Message{Topic: topic, Value: []byte("last")}, part))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for part := range 2 {
		read := readPartition(t, cfg, topic, part)
		if n := len(read); n == 0 || string(read[n-1].Value) != "last" {
			t.Errorf("partition %d: the last record is not the last one written", part)
		}
		for _, m := range read {
			if m.Key != nil {
				got[string(m.Key)] = append(got[string(m.Key)], string(m.Value))
			}
		}
	}
	for _, key := range []string{"a", "b", "c"} {
		if len(got[key]) != perKey {
			t.Fatalf("key %s: read %d records, want %d", key, len(got[key]), perKey)
		}
		for i, v := range got[key] {
			if want := fmt.Sprintf("%s-%03d", key, i); v != want {
				t.Fatalf("key %s: record %d is %s, want %s", key, i, v, want)
			}
		}
	}
}

// Keyless messages spread over the partitions across calls, not only
// within one: each call used to start again at partition 0.
func TestProducerSpreadsKeylessMessagesAcrossCalls(t *testing.T) {
	cfg := testConfig(testenv.Broker(t))
	topic := testTopic(t, "keyless")
	ensureTopic(t, cfg, topic, 4)
	p := newTestProducer(t, cfg, ProducerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 8 {
		if err := p.WriteMessages(ctx, kafka.Message{Topic: topic, Value: fmt.Appendf(nil, "%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	ends := endOffsets(t, cfg, topic, 4)
	for part := range 4 {
		if ends[part] != 2 {
			t.Errorf("8 keyless messages, one per call: partition ends %v, want 2 in each of the 4", ends)
			break
		}
	}
}
