package stream

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Handler is what a service plugs into a Consumer. For one partition the
// calls come from one goroutine, in this order: Assigned, then any number of
// Handle and Tick, then Revoked. Different partitions call concurrently, so
// state shared between partitions needs its own locking; state per
// partition needs none.
//
// Offsets returned for commit are "next offset to read" (last handled
// offset + 1). The consumer commits the latest one returned, at most
// ConsumerConfig.CommitInterval later and always when the partition is
// revoked, so return an offset only once the effects of the records before
// it are durable downstream. Return -1 to commit nothing.
//
// kafka-go's group protocol is eager: at every rebalance every partition of
// every member is revoked and assigned again, the ones that stay included.
// A handler that rebuilds state in Assigned may keep a partition's state
// past Revoked and reuse it when Assigned comes back with the offset it
// committed last. Assigned and Revoked hold up the rebalance: together they
// must fit in ConsumerConfig.RebalanceTimeout.
//
// A returned error stops the whole consumer and Run returns it: return one
// only when the service cannot go on (its store is unreachable past
// retrying). A record that cannot be processed (a poison record) must be
// dead-lettered by the handler (DeadLetters) and skipped, not returned as
// an error, or the consumer would stop on it again after every restart.
type Handler interface {
	// Assigned is called when a partition is assigned, with the committed
	// offset (or the first offset of the partition when the group has
	// none); returns the offset to start fetching from (the handler may
	// choose an earlier one to rebuild state).
	Assigned(ctx context.Context, topic string, partition int, committed int64) (start int64, err error)
	// Handle receives fetched records of one partition in offset order, in
	// batches (up to ConsumerConfig.BatchSize records or BatchWait time),
	// and returns the offset to commit (next offset to read), or -1 to
	// commit nothing now. The batch slice is the handler's to keep.
	Handle(ctx context.Context, topic string, partition int, batch []kafka.Message) (commit int64, err error)
	// Tick is called for a partition when no records arrived for
	// ConsumerConfig.IdleInterval (for idle flush), and again every
	// IdleInterval while it stays idle; returns an offset to commit or -1.
	Tick(ctx context.Context, topic string, partition int) (commit int64, err error)
	// Revoked is called when the partition is taken away or the consumer
	// stops, after the last Handle; the handler finishes the partition's
	// work and returns the final offset to commit or -1. Records fetched
	// but not yet handed to Handle are dropped: the next owner reads them
	// again from the committed offset. Revoked is not called for a
	// partition whose own Assigned, Handle or Tick returned an error.
	Revoked(ctx context.Context, topic string, partition int) (commit int64, err error)
}

// ConsumerConfig tunes a Consumer. GroupID and Topics are required; every
// other field has a default.
type ConsumerConfig struct {
	GroupID string   `yaml:"group_id"`
	Topics  []string `yaml:"topics"`

	// MinBytes, MaxBytes and MaxWait shape each fetch request: the broker
	// answers once MinBytes are there or MaxWait has passed, with at most
	// MaxBytes, which each partition then holds in memory (decompressed)
	// while it hands the records over. Defaults 1 byte, 4 MiB, 500ms.
	MinBytes int           `yaml:"min_bytes"`
	MaxBytes int           `yaml:"max_bytes"`
	MaxWait  time.Duration `yaml:"max_wait"`
	// QueueCapacity is how many fetched records each partition buffers
	// ahead of the handler, besides the BatchSize of the hand-off to the
	// partition's goroutine. Default BatchSize.
	QueueCapacity int `yaml:"queue_capacity"`

	// BatchSize and BatchWait bound a Handle batch: it is handed over when
	// it holds BatchSize records or BatchWait after its first record.
	// Defaults 500 and 100ms.
	BatchSize int           `yaml:"batch_size"`
	BatchWait time.Duration `yaml:"batch_wait"`
	// IdleInterval is the quiet time after which Tick is called. Default 1s.
	IdleInterval time.Duration `yaml:"idle_interval"`
	// CommitInterval is how often the offsets returned by the handler are
	// committed. Default 1s.
	CommitInterval time.Duration `yaml:"commit_interval"`

	// Group membership timing, passed to kafka-go's ConsumerGroup. A
	// rebalance is noticed within HeartbeatInterval; Revoked of every
	// partition must finish within RebalanceTimeout. Defaults 3s, 30s,
	// 30s, 2s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	SessionTimeout    time.Duration `yaml:"session_timeout"`
	RebalanceTimeout  time.Duration `yaml:"rebalance_timeout"`
	JoinGroupBackoff  time.Duration `yaml:"join_group_backoff"`

	// ShutdownTimeout is how long handler calls may go on once Run's
	// context is cancelled: their context is cancelled only then, so that
	// Revoked can flush. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

func (c *ConsumerConfig) withDefaults() ConsumerConfig {
	out := *c
	setDefault(&out.MinBytes, 1)
	setDefault(&out.MaxBytes, 4<<20)
	setDefault(&out.MaxWait, 500*time.Millisecond)
	setDefault(&out.BatchSize, 500)
	setDefault(&out.QueueCapacity, out.BatchSize)
	setDefault(&out.BatchWait, 100*time.Millisecond)
	setDefault(&out.IdleInterval, time.Second)
	setDefault(&out.CommitInterval, time.Second)
	setDefault(&out.HeartbeatInterval, 3*time.Second)
	setDefault(&out.SessionTimeout, 30*time.Second)
	setDefault(&out.RebalanceTimeout, 30*time.Second)
	setDefault(&out.JoinGroupBackoff, 2*time.Second)
	setDefault(&out.ShutdownTimeout, 30*time.Second)
	return out
}

func setDefault[T comparable](field *T, value T) {
	var zero T
	if *field == zero {
		*field = value
	}
}

// Validate reports every problem of c at once.
func (c *ConsumerConfig) Validate() error {
	cfg := c.withDefaults()
	var errs []error
	if cfg.GroupID == "" {
		errs = append(errs, errors.New("consumer group_id is empty"))
	}
	if len(cfg.Topics) == 0 {
		errs = append(errs, errors.New("consumer topics: none given"))
	}
	seen := make(map[string]bool, len(cfg.Topics))
	for _, t := range cfg.Topics {
		if t == "" {
			errs = append(errs, errors.New("consumer topics: empty name"))
		}
		if seen[t] {
			errs = append(errs, fmt.Errorf("consumer topics: %q twice", t))
		}
		seen[t] = true
	}
	positive := []struct {
		name  string
		value int64
	}{
		{"min_bytes", int64(cfg.MinBytes)},
		{"max_bytes", int64(cfg.MaxBytes)},
		{"queue_capacity", int64(cfg.QueueCapacity)},
		{"batch_size", int64(cfg.BatchSize)},
		{"max_wait", int64(cfg.MaxWait)},
		{"batch_wait", int64(cfg.BatchWait)},
		{"idle_interval", int64(cfg.IdleInterval)},
		{"commit_interval", int64(cfg.CommitInterval)},
		{"heartbeat_interval", int64(cfg.HeartbeatInterval)},
		{"session_timeout", int64(cfg.SessionTimeout)},
		{"rebalance_timeout", int64(cfg.RebalanceTimeout)},
		{"join_group_backoff", int64(cfg.JoinGroupBackoff)},
		{"shutdown_timeout", int64(cfg.ShutdownTimeout)},
	}
	for _, p := range positive {
		if p.value <= 0 {
			errs = append(errs, fmt.Errorf("consumer %s: must be positive", p.name))
		}
	}
	if cfg.MinBytes > cfg.MaxBytes {
		errs = append(errs, fmt.Errorf("consumer min_bytes %d above max_bytes %d", cfg.MinBytes, cfg.MaxBytes))
	}
	if cfg.MaxWait < time.Millisecond {
		errs = append(errs, fmt.Errorf("consumer max_wait %s: want at least 1ms", cfg.MaxWait))
	}
	if cfg.HeartbeatInterval >= cfg.SessionTimeout {
		errs = append(errs, fmt.Errorf("consumer heartbeat_interval %s: must be below session_timeout %s", cfg.HeartbeatInterval, cfg.SessionTimeout))
	}
	return errors.Join(errs...)
}

// Consumer is a partition-aware consumer group member built on kafka-go's
// ConsumerGroup/Generation API: each generation's partitions get a goroutine
// of their own that fetches from the offset the Handler chose and calls the
// Handler; when the generation ends (rebalance, stop, error) every partition
// stops fetching, is revoked, and the offsets are committed before the
// member joins the next generation.
type Consumer struct {
	conn    Config
	cfg     ConsumerConfig
	handler Handler
	logger  *zap.Logger
	metrics *consumerMetrics
	dialer  *kafka.Dialer
	client  *kafka.Client
	ran     atomic.Bool
}

// NewConsumer builds a Consumer. h, logger and reg must not be nil. It does
// not connect: Run does.
func NewConsumer(conn Config, cfg ConsumerConfig, h Handler, logger *zap.Logger, reg prometheus.Registerer) (*Consumer, error) {
	if h == nil {
		return nil, errors.New("new consumer: nil handler")
	}
	if logger == nil {
		return nil, errors.New("new consumer: nil logger")
	}
	if reg == nil {
		return nil, errors.New("new consumer: nil registerer")
	}
	if err := errors.Join(conn.Validate(), cfg.Validate()); err != nil {
		return nil, fmt.Errorf("new consumer: %w", err)
	}
	dialer, err := conn.Dialer()
	if err != nil {
		return nil, fmt.Errorf("new consumer: %w", err)
	}
	transport, err := conn.Transport()
	if err != nil {
		return nil, fmt.Errorf("new consumer: %w", err)
	}
	metrics, err := newConsumerMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("new consumer: %w", err)
	}
	cfg = cfg.withDefaults()
	return &Consumer{
		conn:    conn,
		cfg:     cfg,
		handler: h,
		logger:  logger.Named("consumer").With(zap.String("group", cfg.GroupID)),
		metrics: metrics,
		dialer:  dialer,
		client: &kafka.Client{
			Addr:      kafka.TCP(conn.brokerAddrs()...),
			Timeout:   10 * time.Second,
			Transport: transport,
		},
	}, nil
}

// Run joins the group and consumes until ctx is cancelled or a Handler call
// fails. On cancellation it stops fetching, calls Revoked for every
// partition, commits, leaves the group and returns nil; the handler's
// context stays live for ShutdownTimeout after ctx ends so that Revoked can
// flush. On a handler error it does the same for the other partitions and
// returns the error. Broker outages are retried, not returned. Run may be
// called once.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.ran.CompareAndSwap(false, true) {
		return errors.New("consumer run: already ran")
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                c.cfg.GroupID,
		Brokers:           c.conn.brokerAddrs(),
		Dialer:            c.dialer,
		Topics:            c.cfg.Topics,
		HeartbeatInterval: c.cfg.HeartbeatInterval,
		SessionTimeout:    c.cfg.SessionTimeout,
		RebalanceTimeout:  c.cfg.RebalanceTimeout,
		JoinGroupBackoff:  c.cfg.JoinGroupBackoff,
		StartOffset:       kafka.FirstOffset,
		Logger:            KafkaLogger(c.logger),
		ErrorLogger:       KafkaErrorLogger(c.logger),
	})
	if err != nil {
		return fmt.Errorf("consumer run: %w", err)
	}

	// Handler calls get a context that outlives ctx by ShutdownTimeout.
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	stopGrace := context.AfterFunc(ctx, func() {
		time.AfterFunc(c.cfg.ShutdownTimeout, cancelHandlers)
	})
	defer stopGrace()

	s := &stopper{done: make(chan struct{})}
	// Closing the group while a generation is live makes kafka-go end that
	// generation and wait for our partition goroutines (revoke, final
	// commit on the still open coordinator connection) before it leaves
	// the group; so the close runs beside the loop, not after it.
	groupClosed := make(chan struct{})
	go func() {
		defer close(groupClosed)
		select {
		case <-ctx.Done():
		case <-s.done:
		}
		if err := group.Close(); err != nil {
			c.logger.Warn("close consumer group", zap.Error(err))
		}
	}()

	for !s.stopped() && ctx.Err() == nil {
		gen, err := group.Next(ctx)
		if err != nil {
			if errors.Is(err, kafka.ErrGroupClosed) || ctx.Err() != nil || s.stopped() {
				break
			}
			// kafka-go has logged it at warn and backs off
			// (JoinGroupBackoff) before it tries again.
			c.logger.Debug("join consumer group", zap.Error(err))
			continue
		}
		c.metrics.generations.WithLabelValues(c.cfg.GroupID).Inc()
		c.runGeneration(ctx, handlerCtx, gen, s)
	}
	s.stop(nil)
	<-groupClosed
	return s.err()
}

// stopper records the first fatal error and tells everyone to stop.
type stopper struct {
	once  sync.Once
	done  chan struct{}
	mu    sync.Mutex
	cause error
}

func (s *stopper) stop(err error) {
	if err != nil {
		s.mu.Lock()
		if s.cause == nil {
			s.cause = err
		}
		s.mu.Unlock()
	}
	s.once.Do(func() { close(s.done) })
}

func (s *stopper) stopped() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *stopper) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cause
}

type assignment struct {
	topic     string
	partition int
	committed int64
}

// runGeneration serves one generation and returns once all its partitions
// are revoked and their offsets committed. The work runs under
// gen.Start so that kafka-go waits for it before closing the coordinator
// connection that commits go through.
func (c *Consumer) runGeneration(runCtx, handlerCtx context.Context, gen *kafka.Generation, s *stopper) {
	finished := make(chan struct{})
	gen.Start(func(genCtx context.Context) {
		defer close(finished)
		c.serveGeneration(runCtx, genCtx, handlerCtx, gen, s)
	})
	<-finished
}

func (c *Consumer) serveGeneration(runCtx, genCtx, handlerCtx context.Context, gen *kafka.Generation, s *stopper) {
	// stopCtx ends when this generation must wind down: rebalance (genCtx),
	// shutdown (runCtx) or a fatal error anywhere (s.done).
	stopCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-genCtx.Done():
		case <-runCtx.Done():
		case <-s.done:
		case <-stopCtx.Done():
		}
		cancel()
	}()

	logger := c.logger.With(zap.Int32("generation", gen.ID))
	var assigned []assignment
	topics := make([]string, 0, len(gen.Assignments))
	for t := range gen.Assignments {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		for _, pa := range gen.Assignments[t] {
			assigned = append(assigned, assignment{topic: t, partition: pa.ID, committed: pa.Offset})
		}
	}
	logger.Info("generation started", zap.String("member", gen.MemberID), zap.Int("partitions", len(assigned)))
	if len(assigned) == 0 {
		<-stopCtx.Done()
		return
	}
	if err := c.resolveStartOffsets(stopCtx, assigned); err != nil {
		// The generation ended (or the consumer stopped) before the
		// partitions started: nothing was assigned to the handler.
		logger.Info("generation ended before partitions started", zap.Error(err))
		return
	}

	commits := newCommitter(gen, c.cfg.CommitInterval, logger, c.metrics.commitErrors.WithLabelValues(c.cfg.GroupID))
	go commits.loop()

	var wg sync.WaitGroup
	for _, a := range assigned {
		w := c.newPartitionWorker(a.topic, a.partition, commits, logger)
		wg.Go(func() {
			if err := w.run(stopCtx, handlerCtx, a.committed, c.openReader); err != nil {
				s.stop(err)
			}
		})
	}
	wg.Wait()
	commits.close()
	logger.Info("generation ended")
}

// resolveStartOffsets replaces the "no committed offset" marker kafka-go
// puts in an assignment by the partition's first offset, so that Assigned
// always gets an absolute offset.
func (c *Consumer) resolveStartOffsets(ctx context.Context, assigned []assignment) error {
	req := &kafka.ListOffsetsRequest{Topics: make(map[string][]kafka.OffsetRequest)}
	for _, a := range assigned {
		if a.committed < 0 {
			req.Topics[a.topic] = append(req.Topics[a.topic], kafka.FirstOffsetOf(a.partition))
		}
	}
	if len(req.Topics) == 0 {
		return nil
	}
	bo := backoff{min: 100 * time.Millisecond, max: 2 * time.Second}
	for {
		first, err := c.listFirstOffsets(ctx, req)
		if err == nil {
			for i := range assigned {
				a := &assigned[i]
				if a.committed < 0 {
					a.committed = first[a.topic][a.partition]
				}
			}
			return nil
		}
		c.logger.Warn("list first offsets", zap.Error(err))
		if !bo.wait(ctx) {
			return fmt.Errorf("list first offsets: %w (last error: %w)", ctx.Err(), err)
		}
	}
}

func (c *Consumer) listFirstOffsets(ctx context.Context, req *kafka.ListOffsetsRequest) (map[string]map[int]int64, error) {
	resp, err := c.client.ListOffsets(ctx, req)
	if err != nil {
		return nil, err
	}
	first := make(map[string]map[int]int64, len(req.Topics))
	for topic, want := range req.Topics {
		first[topic] = make(map[int]int64, len(want))
		got := make(map[int]kafka.PartitionOffsets, len(resp.Topics[topic]))
		for _, po := range resp.Topics[topic] {
			got[po.Partition] = po
		}
		for _, w := range want {
			po, ok := got[w.Partition]
			switch {
			case !ok:
				return nil, fmt.Errorf("%s/%d: no offsets in answer", topic, w.Partition)
			case po.Error != nil:
				return nil, fmt.Errorf("%s/%d: %w", topic, w.Partition, po.Error)
			}
			first[topic][w.Partition] = po.FirstOffset
		}
	}
	return first, nil
}
