package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/compress/snappy"
	"go.uber.org/zap"
)

// ProducerConfig tunes a Producer. The zero value is usable: every field has
// a default chosen for throughput with full durability.
type ProducerConfig struct {
	// BatchTimeout has no effect: WriteMessages sends what it is given at
	// once (it used to wait this long for more messages from concurrent
	// callers). Accepted so that existing configurations stay valid.
	BatchTimeout time.Duration `yaml:"batch_timeout" env:"KAFKA_PRODUCER_BATCH_TIMEOUT"`
	// BatchSize is the most messages in one produce request (one
	// partition's record batch). Default 1000.
	BatchSize int `yaml:"batch_size" env:"KAFKA_PRODUCER_BATCH_SIZE"`
	// BatchBytes is the most bytes (uncompressed) in one produce request,
	// and so the largest message accepted. Default 1 MiB (the broker's default
	// message.max.bytes).
	BatchBytes int64 `yaml:"batch_bytes" env:"KAFKA_PRODUCER_BATCH_BYTES"`
	// Compression is none, snappy, lz4 or zstd. Default snappy (s2's fast
	// mode, see init): on the end-to-end bench it costs the pipeline less
	// CPU than lz4 (8.0 s against 9.3 s for a million records in s2's
	// "better" mode) for a little more broker bytes.
	Compression string `yaml:"compression" env:"KAFKA_PRODUCER_COMPRESSION"`
	// WriteTimeout bounds one produce request. Default 10s.
	WriteTimeout time.Duration `yaml:"write_timeout" env:"KAFKA_PRODUCER_WRITE_TIMEOUT"`
	// RetryBackoffMin and RetryBackoffMax bound the jittered exponential
	// backoff between attempts of the requests of WriteMessages that
	// failed. Default 100ms and 2s.
	RetryBackoffMin time.Duration `yaml:"retry_backoff_min" env:"KAFKA_PRODUCER_RETRY_BACKOFF_MIN"`
	RetryBackoffMax time.Duration `yaml:"retry_backoff_max" env:"KAFKA_PRODUCER_RETRY_BACKOFF_MAX"`
}

func (c *ProducerConfig) withDefaults() ProducerConfig {
	out := *c
	if out.BatchTimeout == 0 {
		out.BatchTimeout = 5 * time.Millisecond
	}
	if out.BatchSize == 0 {
		out.BatchSize = 1000
	}
	if out.BatchBytes == 0 {
		out.BatchBytes = 1 << 20
	}
	if out.Compression == "" {
		out.Compression = "snappy"
	}
	if out.WriteTimeout == 0 {
		out.WriteTimeout = 10 * time.Second
	}
	if out.RetryBackoffMin == 0 {
		out.RetryBackoffMin = 100 * time.Millisecond
	}
	if out.RetryBackoffMax == 0 {
		out.RetryBackoffMax = 2 * time.Second
	}
	return out
}

// Validate reports every problem of c at once.
func (c *ProducerConfig) Validate() error {
	cfg := c.withDefaults()
	var errs []error
	if cfg.BatchTimeout < 0 {
		errs = append(errs, fmt.Errorf("producer batch_timeout %s: must not be negative", cfg.BatchTimeout))
	}
	if cfg.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("producer batch_size %d: must not be negative", cfg.BatchSize))
	}
	if cfg.BatchBytes < 0 {
		errs = append(errs, fmt.Errorf("producer batch_bytes %d: must not be negative", cfg.BatchBytes))
	}
	if _, err := compressionCodec(cfg.Compression); err != nil {
		errs = append(errs, err)
	}
	if cfg.WriteTimeout < 0 {
		errs = append(errs, fmt.Errorf("producer write_timeout %s: must not be negative", cfg.WriteTimeout))
	}
	if cfg.RetryBackoffMin < 0 || cfg.RetryBackoffMax < cfg.RetryBackoffMin {
		errs = append(errs, fmt.Errorf("producer retry backoff %s..%s: want 0 <= min <= max", cfg.RetryBackoffMin, cfg.RetryBackoffMax))
	}
	return errors.Join(errs...)
}

func init() {
	// kafka-go's snappy codec compresses with s2's "better" mode by
	// default, which cost 8% of the pipeline's CPU on the end-to-end bench;
	// the fast mode is what other Kafka clients use. Process-wide: kafka-go
	// keeps one codec per compression type.
	compress.SnappyCodec.Compression = snappy.FasterCompression
}

func compressionCodec(name string) (kafka.Compression, error) {
	switch name {
	case "none":
		return 0, nil
	case "snappy":
		return kafka.Snappy, nil
	case "lz4":
		return kafka.Lz4, nil
	case "zstd":
		return kafka.Zstd, nil
	default:
		return 0, fmt.Errorf("producer compression %q: want none, snappy, lz4 or zstd", name)
	}
}

// explicitPartition marks, in Message.WriterData, a message whose
// Message.Partition the Balancer must honour.
type explicitPartition struct{}

// WithPartition returns m routed to the given partition instead of the hash
// of its key. Use it for records that must reach every partition (watermark
// control records) or that are already partitioned upstream. The partition
// must exist: Producer.WriteMessages fails with ErrNoSuchPartition
// otherwise. It uses Message.WriterData, which Producer does not otherwise
// need.
func WithPartition(m kafka.Message, partition int) kafka.Message {
	m.Partition = partition
	m.WriterData = explicitPartition{}
	return m
}

func isExplicit(m *kafka.Message) bool {
	_, ok := m.WriterData.(explicitPartition)
	return ok
}

// Balancer routes a message marked by WithPartition to its Message.Partition
// and any other message by kafka.Hash of its key, so a keyed record lands
// where any kafka-go producer using kafka.Hash (FNV-1a, Sarama-compatible)
// puts the same key. That is not the Java client's murmur2 partitioner: a
// non-Go producer writing to wameter topics must use a FNV-1a partitioner.
// Messages without a key go round-robin. Safe for concurrent use.
type Balancer struct {
	hash kafka.Hash
}

// Balance implements kafka.Balancer.
func (b *Balancer) Balance(m kafka.Message, partitions ...int) int {
	if isExplicit(&m) {
		return m.Partition
	}
	return b.hash.Balance(m, partitions...)
}

// ErrNoSuchPartition is returned by WriteMessages for a message sent by
// WithPartition to a partition that the topic does not have.
var ErrNoSuchPartition = errors.New("no such partition")

var errNoTopic = errors.New("message has no topic")

// Producer writes messages synchronously with acks from all in-sync
// replicas. Each WriteMessages call sends, at once and concurrently, one
// compressed produce request per partition it touches (more when a
// partition's share exceeds BatchSize or BatchBytes), through kafka-go's
// Client and Transport (which route each request to the partition's leader
// from cached metadata); it retries the requests that failed with a
// retriable error, with jittered backoff, until the caller's context ends.
// Safe for concurrent use.
//
// It does not use kafka.Writer: the writer holds a synchronous write for
// BatchTimeout to gather more messages, and looks up topic metadata once per
// message; callers here hand over whole batches already.
//
// Delivery is at least once: kafka-go has no idempotent producer, so a
// retried batch whose first attempt reached the broker is written twice.
// Consumers dedup by deterministic ids (see ARCHITECTURE.md).
type Producer struct {
	client  *kafka.Client
	codec   kafka.Compression
	cfg     ProducerConfig
	logger  *zap.Logger
	metrics *producerMetrics

	mu         sync.Mutex
	partitions map[string]int // topic -> partition count, for WithPartition checks
	// balancer is shared by every call, so that keyless messages go
	// round-robin across calls instead of starting at partition 0 each time.
	balancer Balancer

	// failing is set while a write is retrying (the brokers are not
	// taking writes) and cleared by the next successful write.
	failing atomic.Bool
}

// Healthy reports false while a write is being retried: the service is
// blocked on Kafka, and its readiness should say so.
func (p *Producer) Healthy() bool { return !p.failing.Load() }

// NewProducer builds a Producer. logger and reg must not be nil. It does not
// connect: the first WriteMessages does.
func NewProducer(conn Config, cfg ProducerConfig, logger *zap.Logger, reg prometheus.Registerer) (*Producer, error) {
	if logger == nil {
		return nil, errors.New("new producer: nil logger")
	}
	if reg == nil {
		return nil, errors.New("new producer: nil registerer")
	}
	if err := errors.Join(conn.Validate(), cfg.Validate()); err != nil {
		return nil, fmt.Errorf("new producer: %w", err)
	}
	cfg = cfg.withDefaults()
	codec, err := compressionCodec(cfg.Compression)
	if err != nil {
		return nil, err
	}
	transport, err := conn.Transport()
	if err != nil {
		return nil, fmt.Errorf("new producer: %w", err)
	}
	metrics, err := newProducerMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("new producer: %w", err)
	}
	logger = logger.Named("producer")
	addr := kafka.TCP(conn.brokerAddrs()...)
	return &Producer{
		codec: codec,
		client: &kafka.Client{
			Addr:      addr,
			Timeout:   cfg.WriteTimeout,
			Transport: transport,
		},
		cfg:        cfg,
		logger:     logger,
		metrics:    metrics,
		partitions: make(map[string]int),
	}, nil
}

// WriteMessages writes msgs and returns once every one is acknowledged by
// all in-sync replicas. Each message names its Topic. Messages are routed by
// Balancer: WithPartition or the hash of the key; each partition receives
// its messages in the order of msgs. Retriable errors (broker restarting,
// leader moving, connection refused) are retried, only the requests that
// failed and those after them on the same partition, with jittered
// exponential backoff until ctx ends; a
// final error (authorization, message too large, no such partition) returns
// at once. On error some messages may have been written: the caller retries
// all of them, and duplicates are expected downstream.
func (p *Producer) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	for i := range msgs {
		if msgs[i].Topic == "" {
			p.metrics.failures.Inc()
			return fmt.Errorf("write message %d: %w", i, errNoTopic)
		}
	}
	if err := p.checkExplicitPartitions(ctx, msgs); err != nil {
		p.metrics.failures.Inc()
		return err
	}
	if err := p.checkSizes(msgs); err != nil {
		p.metrics.failures.Inc()
		return err
	}
	pending := msgs
	bo := backoff{min: p.cfg.RetryBackoffMin, max: p.cfg.RetryBackoffMax}
	for {
		failed, err := p.writeOnce(ctx, pending)
		if err == nil {
			p.failing.Store(false)
			return nil
		}
		pending = failed
		if ctx.Err() != nil {
			p.metrics.failures.Inc()
			return fmt.Errorf("write %d messages: %w (last error: %w)", len(pending), ctx.Err(), err)
		}
		if !retriable(err) {
			p.metrics.failures.Inc()
			return fmt.Errorf("write %d messages: %w", len(pending), err)
		}
		p.metrics.retries.Inc()
		p.failing.Store(true)
		p.logger.Warn("write failed, retrying", zap.Int("messages", len(pending)), zap.Int("attempt", bo.attempt+1), zap.Error(err))
		if !bo.wait(ctx) {
			p.metrics.failures.Inc()
			return fmt.Errorf("write %d messages: %w (last error: %w)", len(pending), ctx.Err(), err)
		}
	}
}

// checkSizes fails on a message larger than BatchBytes, as kafka.Writer
// does: no request could carry it.
func (p *Producer) checkSizes(msgs []kafka.Message) error {
	for i := range msgs {
		if messageSize(&msgs[i]) > p.cfg.BatchBytes {
			return fmt.Errorf("write message %d to %s: %w", i, msgs[i].Topic, kafka.MessageTooLargeError{Message: msgs[i], Remaining: msgs[i+1:]})
		}
	}
	return nil
}

// messageSize is about what m takes in a record batch, uncompressed.
func messageSize(m *kafka.Message) int64 {
	n := int64(len(m.Key) + len(m.Value) + 24)
	for i := range m.Headers {
		n += int64(len(m.Headers[i].Key) + len(m.Headers[i].Value) + 10)
	}
	return n
}

// partitionBatch is the messages of one produce request: msgs[i] for i in
// index (positions in the caller's slice, which is not copied).
type partitionBatch struct {
	topic     string
	partition int
	msgs      []kafka.Message
	index     []int32
}

// writeOnce routes msgs to their partitions and sends their produce
// requests: the partitions at once, each partition's requests one after
// the other, so that its messages land in order. It returns the messages
// not written (those of a failed request and of the requests after it on
// the same partition) and the first error, a final one if any request
// failed for good; the written messages are counted.
func (p *Producer) writeOnce(ctx context.Context, msgs []kafka.Message) (failed []kafka.Message, err error) {
	parts, err := p.route(ctx, msgs)
	if err != nil {
		return msgs, err
	}
	errs := make([]error, len(parts))
	sent := make([]int, len(parts)) // requests written per partition
	send := func(i int) {
		for _, b := range parts[i] {
			if errs[i] = p.produce(ctx, &b); errs[i] != nil {
				return
			}
			sent[i]++
		}
	}
	if len(parts) == 1 {
		send(0)
	} else {
		var wg sync.WaitGroup
		for i := range parts {
			wg.Go(func() { send(i) })
		}
		wg.Wait()
	}
	for i, batches := range parts {
		for j := range batches {
			b := &batches[j]
			if j < sent[i] {
				p.metrics.messages.WithLabelValues(b.topic).Add(float64(len(b.index)))
				continue
			}
			for _, k := range b.index {
				failed = append(failed, b.msgs[k])
			}
		}
		if e := errs[i]; e != nil {
			// A final error wins over retriable ones: retrying cannot help.
			if err == nil || (retriable(err) && !retriable(e)) {
				err = fmt.Errorf("%s/%d: %w", batches[0].topic, batches[0].partition, e)
			}
		}
	}
	return failed, err
}

// route splits msgs by partition, in the order of msgs, and each
// partition's share into requests of at most BatchSize messages and
// BatchBytes bytes.
func (p *Producer) route(ctx context.Context, msgs []kafka.Message) ([][]partitionBatch, error) {
	type group struct {
		topic     string
		partition int
		index     []int32
	}
	// A call touches a few partitions: a short list beats a map.
	var groups []group
	var partitions []int // of the topic last looked up
	lastTopic := ""
	for i := range msgs {
		m := &msgs[i]
		partition := m.Partition
		if !isExplicit(m) {
			if m.Topic != lastTopic || partitions == nil {
				n, err := p.topicPartitions(ctx, m.Topic)
				if err != nil {
					return nil, err
				}
				partitions = partitionIDs(n)
				lastTopic = m.Topic
			}
			partition = p.balancer.Balance(*m, partitions...)
		}
		g := -1
		for j := range groups {
			if groups[j].partition == partition && groups[j].topic == m.Topic {
				g = j
				break
			}
		}
		if g < 0 {
			g = len(groups)
			groups = append(groups, group{topic: m.Topic, partition: partition})
		}
		groups[g].index = append(groups[g].index, int32(i))
	}
	parts := make([][]partitionBatch, 0, len(groups))
	for _, g := range groups {
		var batches []partitionBatch
		from := 0
		var bytes int64
		for j, i := range g.index {
			size := messageSize(&msgs[i])
			if j > from && (j-from >= p.cfg.BatchSize || bytes+size > p.cfg.BatchBytes) {
				batches = append(batches, partitionBatch{topic: g.topic, partition: g.partition, msgs: msgs, index: g.index[from:j]})
				from, bytes = j, 0
			}
			bytes += size
		}
		batches = append(batches, partitionBatch{topic: g.topic, partition: g.partition, msgs: msgs, index: g.index[from:]})
		parts = append(parts, batches)
	}
	return parts, nil
}

var partitionIDCache atomic.Pointer[[]int]

// partitionIDs returns 0..n-1, shared: callers must not modify it.
func partitionIDs(n int) []int {
	if ids := partitionIDCache.Load(); ids != nil && len(*ids) >= n {
		return (*ids)[:n:n]
	}
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	partitionIDCache.Store(&ids)
	return ids
}

// topicPartitions returns the partition count of topic from the transport's
// metadata cache (which kafka-go refreshes in the background), and fails
// for a topic the brokers do not know (a retriable error: it may be being
// created).
func (p *Producer) topicPartitions(ctx context.Context, topic string) (int, error) {
	md, err := p.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return 0, fmt.Errorf("partitions of %s: %w", topic, t.Error)
		}
		if len(t.Partitions) == 0 {
			break
		}
		return len(t.Partitions), nil
	}
	return 0, fmt.Errorf("partitions of %s: %w", topic, kafka.UnknownTopicOrPartition)
}

// produce sends one partition batch and waits for the acknowledgement of
// all in-sync replicas.
func (p *Producer) produce(parent context.Context, b *partitionBatch) error {
	ctx, cancel := context.WithTimeout(parent, p.cfg.WriteTimeout)
	defer cancel()
	res, err := p.client.Produce(ctx, &kafka.ProduceRequest{
		Topic:        b.topic,
		Partition:    b.partition,
		RequiredAcks: kafka.RequireAll,
		Compression:  p.codec,
		Records:      &messageRecords{msgs: b.msgs, index: b.index},
	})
	if err != nil {
		return timedOut(parent, err)
	}
	if res.Error != nil {
		return res.Error
	}
	for _, e := range res.RecordErrors {
		return e
	}
	return nil
}

// messageRecords reads messages as records, as kafka.Writer does: a zero
// Time is sent as is, and the broker's append time applies.
type messageRecords struct {
	msgs   []kafka.Message
	index  []int32 // the messages to read, in order
	next   int
	record kafka.Record
	key    bytesReader
	value  bytesReader
}

func (r *messageRecords) ReadRecord() (*kafka.Record, error) {
	if r.next >= len(r.index) {
		return nil, io.EOF
	}
	m := &r.msgs[r.index[r.next]]
	r.next++
	r.record = kafka.Record{Time: m.Time, Headers: m.Headers}
	if m.Key != nil {
		r.key.Reset(m.Key)
		r.record.Key = &r.key
	}
	if m.Value != nil {
		r.value.Reset(m.Value)
		r.record.Value = &r.value
	}
	return &r.record, nil
}

// bytesReader is a kafka.Bytes over a slice, reusable by Reset.
type bytesReader struct{ bytes.Reader }

func (b *bytesReader) Close() error { return nil }

// checkExplicitPartitions fails fast on a WithPartition message to a
// partition the topic does not have: the writer would retry such a produce
// as UnknownTopicOrPartition (a temporary error) until the context ends.
// Partition counts only grow, so a cached count is refreshed only when a
// message is beyond it.
func (p *Producer) checkExplicitPartitions(ctx context.Context, msgs []kafka.Message) error {
	for i := range msgs {
		m := &msgs[i]
		if !isExplicit(m) {
			continue
		}
		if m.Partition < 0 {
			return fmt.Errorf("write to %s partition %d: %w", m.Topic, m.Partition, ErrNoSuchPartition)
		}
		p.mu.Lock()
		n := p.partitions[m.Topic]
		p.mu.Unlock()
		if m.Partition < n {
			continue
		}
		n, err := p.partitionCount(ctx, m.Topic)
		if err != nil {
			return err
		}
		if m.Partition >= n {
			return fmt.Errorf("write to %s partition %d of %d: %w", m.Topic, m.Partition, n, ErrNoSuchPartition)
		}
	}
	return nil
}

func (p *Producer) partitionCount(ctx context.Context, topic string) (int, error) {
	bo := backoff{min: p.cfg.RetryBackoffMin, max: p.cfg.RetryBackoffMax}
	for {
		md, err := p.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil {
			for _, t := range md.Topics {
				if t.Name != topic {
					continue
				}
				if t.Error != nil {
					err = t.Error
					break
				}
				p.mu.Lock()
				p.partitions[topic] = len(t.Partitions)
				p.mu.Unlock()
				return len(t.Partitions), nil
			}
			if err == nil {
				err = kafka.UnknownTopicOrPartition
			}
		}
		if !retriable(err) {
			return 0, fmt.Errorf("partitions of %s: %w", topic, err)
		}
		if !bo.wait(ctx) {
			return 0, fmt.Errorf("partitions of %s: %w (last error: %w)", topic, ctx.Err(), err)
		}
	}
}

// Close flushes nothing (writes are synchronous) and releases idle
// connections.
func (p *Producer) Close() error {
	if t, ok := p.client.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
	return nil
}

var _ kafka.Balancer = (*Balancer)(nil)
