package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// ProducerConfig tunes a Producer. The zero value is usable: every field has
// a default chosen for throughput with full durability.
type ProducerConfig struct {
	// BatchTimeout is how long the writer waits to fill a partition batch
	// before sending it. WriteMessages is synchronous, so this is added to
	// the latency of a lone message. Default 5ms.
	BatchTimeout time.Duration `yaml:"batch_timeout" env:"KAFKA_PRODUCER_BATCH_TIMEOUT"`
	// BatchSize is the most messages in one partition batch. Default 1000.
	BatchSize int `yaml:"batch_size" env:"KAFKA_PRODUCER_BATCH_SIZE"`
	// BatchBytes is the most bytes in one partition batch, and so the
	// largest message accepted. Default 1 MiB (the broker's default
	// message.max.bytes).
	BatchBytes int64 `yaml:"batch_bytes" env:"KAFKA_PRODUCER_BATCH_BYTES"`
	// Compression is none, snappy, lz4 or zstd. Default lz4.
	Compression string `yaml:"compression" env:"KAFKA_PRODUCER_COMPRESSION"`
	// WriteTimeout bounds one produce request. Default 10s.
	WriteTimeout time.Duration `yaml:"write_timeout" env:"KAFKA_PRODUCER_WRITE_TIMEOUT"`
	// RetryBackoffMin and RetryBackoffMax bound the jittered exponential
	// backoff between attempts of WriteMessages. Default 100ms and 2s.
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
		out.Compression = "lz4"
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
// replicas. It wraps one kafka.Writer (batching across concurrent callers,
// compression) and retries retriable errors with jittered backoff until the
// caller's context ends. Safe for concurrent use.
//
// Delivery is at least once: kafka-go has no idempotent producer, so a
// retried batch whose first attempt reached the broker is written twice.
// Consumers dedup by deterministic ids (see ARCHITECTURE.md).
type Producer struct {
	writer  *kafka.Writer
	client  *kafka.Client
	cfg     ProducerConfig
	logger  *zap.Logger
	metrics *producerMetrics

	mu         sync.Mutex
	partitions map[string]int // topic -> partition count, for WithPartition checks

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
		writer: &kafka.Writer{
			Addr:         addr,
			Balancer:     &Balancer{},
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: cfg.BatchTimeout,
			BatchSize:    cfg.BatchSize,
			BatchBytes:   cfg.BatchBytes,
			Compression:  codec,
			WriteTimeout: cfg.WriteTimeout,
			ReadTimeout:  cfg.WriteTimeout,
			// The writer sleeps between its own attempts without looking at
			// the caller's context; keep those few and short and let
			// WriteMessages do the long retrying, which honours ctx.
			MaxAttempts:     3,
			WriteBackoffMin: 50 * time.Millisecond,
			WriteBackoffMax: 250 * time.Millisecond,
			Transport:       transport,
			Logger:          KafkaLogger(logger),
			// Every writer error ends in a retry that WriteMessages logs at
			// warn, or in the error it returns; per-attempt lines would
			// triple the noise during a broker restart.
			ErrorLogger: KafkaLogger(logger),
		},
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
// Balancer: WithPartition or the hash of the key. Retriable errors (broker
// restarting, leader moving, connection refused) are retried, only the
// messages that failed, with jittered exponential backoff until ctx ends; a
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
	pending := msgs
	bo := backoff{min: p.cfg.RetryBackoffMin, max: p.cfg.RetryBackoffMax}
	for {
		err := p.writer.WriteMessages(ctx, pending...)
		if err == nil {
			p.countWritten(pending)
			p.failing.Store(false)
			return nil
		}
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == len(pending) {
			failed := make([]kafka.Message, 0, werrs.Count())
			written := make([]kafka.Message, 0, len(pending)-werrs.Count())
			for i, e := range werrs {
				if e != nil {
					failed = append(failed, pending[i])
				} else {
					written = append(written, pending[i])
				}
			}
			p.countWritten(written)
			pending = failed
		}
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

func (p *Producer) countWritten(msgs []kafka.Message) {
	if len(msgs) == 0 {
		return
	}
	// Most calls write to one topic; count runs of the same topic.
	topic, n := msgs[0].Topic, 0
	for i := range msgs {
		if msgs[i].Topic != topic {
			p.metrics.messages.WithLabelValues(topic).Add(float64(n))
			topic, n = msgs[i].Topic, 0
		}
		n++
	}
	p.metrics.messages.WithLabelValues(topic).Add(float64(n))
}

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

// Close flushes nothing (writes are synchronous) and releases connections.
func (p *Producer) Close() error {
	if err := p.writer.Close(); err != nil {
		return fmt.Errorf("close producer: %w", err)
	}
	if t, ok := p.client.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
	return nil
}

var _ kafka.Balancer = (*Balancer)(nil)
