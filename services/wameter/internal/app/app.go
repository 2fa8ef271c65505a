package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/accounts"
	"github.com/wameter/wameter/pkg/ops"
	"github.com/wameter/wameter/pkg/pricing"
	"github.com/wameter/wameter/pkg/sink"
	"github.com/wameter/wameter/pkg/stream"
	"github.com/wameter/wameter/services/wameter/internal/account"
	"github.com/wameter/wameter/services/wameter/internal/normalize"
	"github.com/wameter/wameter/services/wameter/internal/sinkstage"
	"github.com/wameter/wameter/services/wameter/internal/stage"
	"github.com/wameter/wameter/services/wameter/internal/window"
)

// Roles are the stages a process can run.
var Roles = []string{"normalize", "window", "account", "sink"}

// Migrator applies the schemas to the database (creating it); set by main
// so that this package does not depend on the schema files' location.
type Migrator func(ctx context.Context, cfg sink.Config, logger *zap.Logger) error

// LoadData loads the rate card catalog and the accounts file, and checks
// that every account's currency has a rate card.
func LoadData(cfg *Config) (*pricing.Catalog, *accounts.Book, error) {
	var cat *pricing.Catalog
	var err error
	if cfg.PricingDir != "" {
		cat, err = pricing.LoadDir(cfg.PricingDir)
	} else {
		cat, err = pricing.Default()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("pricing data: %w", err)
	}
	book := accounts.Empty()
	if cfg.AccountsFile != "" {
		if book, err = accounts.Load(cfg.AccountsFile); err != nil {
			return nil, nil, err
		}
	}
	if err := book.Validate(cat.HasCurrency); err != nil {
		return nil, nil, err
	}
	return cat, book, nil
}

// Run runs the given roles until ctx ends or one fails.
func Run(ctx context.Context, cfg Config, roles []string, migrate Migrator, logger *zap.Logger) error {
	for _, r := range roles {
		if !slices.Contains(Roles, r) {
			return fmt.Errorf("unknown role %q (want %v)", r, Roles)
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	cat, book, err := LoadData(&cfg)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	logger.Info("starting", zap.Strings("roles", roles), zap.Object("kafka", cfg.Kafka), zap.Object("clickhouse", cfg.ClickHouse),
		zap.Duration("lateness", cfg.Lateness), zap.Duration("idle_flush", cfg.IdleFlush),
		zap.Stringer("buffer_memory", cfg.BufferMemory), zap.String("spill_dir", cfg.SpillPath()))

	// The ops server starts first (so a stuck start-up is visible); what
	// readiness looks at is published to it as it is built.
	var ready atomic.Bool
	var sinkHealth, producerHealth atomic.Pointer[func() bool]
	var g run.Group
	if cfg.OpsAddr != "" {
		ln, err := net.Listen("tcp", cfg.OpsAddr)
		if err != nil {
			return fmt.Errorf("ops server: %w", err)
		}
		srv := &http.Server{Handler: ops.Mux(reg, func() bool {
			for _, h := range []*atomic.Pointer[func() bool]{&producerHealth, &sinkHealth} {
				if f := h.Load(); f != nil && !(*f)() {
					return false
				}
			}
			return ready.Load()
		}), ReadHeaderTimeout: 5 * time.Second}
		g.Add(func() error {
			logger.Info("ops server listening", zap.String("addr", ln.Addr().String()))
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		}, func(error) {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		})
	}

	topics, err := stream.EnsureTopics(ctx, cfg.Kafka, topicSpecs(&cfg))
	if err != nil {
		return fmt.Errorf("ensure topics: %w", err)
	}
	producer, err := stream.NewProducer(cfg.Kafka, cfg.Producer, logger, reg)
	if err != nil {
		return err
	}
	producerHealthy := producer.Healthy
	producerHealth.Store(&producerHealthy)
	defer producer.Close()

	var consumers []*stream.Consumer
	add := func(role string, topicNames []string, h stream.Handler, cc stream.ConsumerConfig) error {
		cc.GroupID = cfg.GroupPrefix + "-" + role
		cc.Topics = topicNames
		c, err := stream.NewConsumer(cfg.Kafka, cc, h, logger.Named(role), prometheus.WrapRegistererWith(prometheus.Labels{"role": role}, reg))
		if err != nil {
			return err
		}
		consumers = append(consumers, c)
		return nil
	}
	deadLetters := func(role string) (*stream.DeadLetters, error) {
		return stream.NewDeadLetters(producer, stream.DeadLetterConfig{Topic: cfg.Topics.DLQ, Stage: role},
			prometheus.WrapRegistererWith(prometheus.Labels{"role": role}, reg))
	}
	idle := min(cfg.IdleFlush/2, time.Second)
	for _, role := range roles {
		dlq, err := deadLetters(role)
		if err != nil {
			return err
		}
		var h stream.Handler
		var in []string
		cc := stream.ConsumerConfig{IdleInterval: idle, SessionTimeout: cfg.SessionTimeout,
			HeartbeatInterval: cfg.SessionTimeout / 10}
		switch role {
		case "normalize":
			in = []string{cfg.Topics.Webhooks, cfg.Topics.Sends}
			// Each Handle's events go out at once, in produce requests
			// per events partition: large batches keep them few and full.
			cc.BatchSize = 5000
			// An input partition quiet at its end for IdleFlush is marked
			// idle at the first Tick after that: tick finely.
			cc.IdleInterval = min(cfg.IdleFlush/20, 250*time.Millisecond)
			progress, perr := stream.NewProgress(cfg.Kafka)
			if perr != nil {
				return perr
			}
			h, err = normalize.New(normalize.Config{WebhooksTopic: cfg.Topics.Webhooks, SendsTopic: cfg.Topics.Sends,
				EventsTopic: cfg.Topics.Events, EventsPartitions: topics[cfg.Topics.Events],
				IdleAfter: cfg.IdleFlush, Ends: progress}, producer, dlq, logger, reg)
		case "window":
			in = []string{cfg.Topics.Events}
			// Normalize packs about wire.PackTarget bytes of events (~65)
			// per record: 100 records are a batch of thousands of events,
			// and a queue of 200 records per partition stays under 1 MiB.
			// (Records of one event, from a normalize before packing, come
			// 100 to a batch: slower, not wrong.)
			cc.BatchSize, cc.QueueCapacity = 100, 100
			// The idle flush happens at the first Tick at least IdleFlush
			// after the last batch: tick finely so that it is not up to a
			// second late. An idle or busy partition's Tick returns at once.
			cc.IdleInterval = min(cfg.IdleFlush/20, 250*time.Millisecond)
			// Before an idle flush the window waits until normalize has
			// committed every raw record produced before the flush was
			// due: a normalize partition stalled for a session timeout
			// must not make the events it holds back late.
			progress, perr := stream.NewProgress(cfg.Kafka)
			if perr != nil {
				return perr
			}
			upstream := &window.GroupUpstream{Progress: progress, Group: cfg.GroupPrefix + "-normalize",
				Topics:      map[string]int{cfg.Topics.Webhooks: topics[cfg.Topics.Webhooks], cfg.Topics.Sends: topics[cfg.Topics.Sends]},
				EventsTopic: cfg.Topics.Events}
			h, err = window.New(window.Config{EventsTopic: cfg.Topics.Events, UnitsTopic: cfg.Topics.Units,
				RowsTopic: cfg.Topics.Rows, StateTopic: cfg.Topics.WindowState, UnitsPartitions: topics[cfg.Topics.Units],
				RowsPartitions: topics[cfg.Topics.Rows], Lateness: cfg.Lateness, IdleFlush: cfg.IdleFlush, MessageMemory: cfg.MessageMemory,
				BufferBytes: cfg.BufferShare(), SpillDir: cfg.SpillPath(), Upstream: upstream,
				HotKeys: cfg.StateHotKeys, Sources: upstream.Topics},
				stage.Deps{Kafka: cfg.Kafka, Catalog: cat, Accounts: book, Producer: producer, DLQ: dlq, Logger: logger, Registry: reg})
		case "account":
			in = []string{cfg.Topics.Units}
			// The window packs about wire.PackTarget bytes of units (~40)
			// per record: 200 records are thousands of units, and a queue
			// of 400 per partition stays under 2 MiB.
			cc.BatchSize, cc.QueueCapacity = 200, 200
			h, err = account.New(account.Config{UnitsTopic: cfg.Topics.Units, RowsTopic: cfg.Topics.Rows,
				StateTopic: cfg.Topics.AccountState, Sources: topics[cfg.Topics.Events], RowsPartitions: topics[cfg.Topics.Rows]},
				stage.Deps{Kafka: cfg.Kafka, Catalog: cat, Accounts: book, Producer: producer, DLQ: dlq, Logger: logger, Registry: reg})
		case "sink":
			in = []string{cfg.Topics.Rows}
			// Batches are handed over after the default BatchWait; the
			// stage inserts when the writer says an insert is due (a
			// trickle about once per flush interval), not per batch, and
			// what is left once the rows stop coming at the next Tick:
			// a quarter of a second, not the flush interval, after the
			// last rows of a burst (the tail of a stream). The window and
			// account pack about wire.PackTarget bytes of rows (~150) per
			// record: 500 records are some 13,000 rows, and a queue of
			// 1,000 per partition stays under 4 MiB. (Records of one row,
			// from a stage before packing, come 500 to a batch: slower,
			// not wrong.)
			cc.BatchSize, cc.QueueCapacity = 500, 500
			cc.IdleInterval = min(idle, 250*time.Millisecond)
			if cfg.Migrate && migrate != nil {
				if err := migrate(ctx, cfg.ClickHouse, logger); err != nil {
					return fmt.Errorf("migrate: %w", err)
				}
			}
			var conn clickhouse.Conn
			for attempt := 1; ; attempt++ {
				if conn, err = sink.Open(ctx, cfg.ClickHouse); err == nil {
					break
				}
				if attempt == 40 || ctx.Err() != nil {
					return fmt.Errorf("clickhouse: %w", err)
				}
				logger.Warn("clickhouse unreachable at start; retrying", zap.Error(err), zap.Int("attempt", attempt))
				time.Sleep(3 * time.Second)
			}
			defer conn.Close()
			var sinkWriter *sink.Writer
			if sinkWriter, err = sink.NewWriter(conn, cfg.ClickHouse, logger, reg); err != nil {
				return err
			}
			sinkHealthy := sinkWriter.Healthy
			sinkHealth.Store(&sinkHealthy)
			h, err = sinkstage.New(sinkWriter, dlq, logger)
		}
		if err != nil {
			return err
		}
		if err := add(role, in, h, cc); err != nil {
			return err
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, c := range consumers {
		g.Add(func() error { return c.Run(ctx) }, func(error) { cancel() })
	}
	g.Add(func() error {
		ready.Store(true)
		<-ctx.Done()
		return nil
	}, func(error) { ready.Store(false); cancel() })
	return g.Run()
}

func topicSpecs(cfg *Config) []stream.TopicSpec {
	spec := func(name string, configs map[string]string) stream.TopicSpec {
		return stream.TopicSpec{Name: name, Partitions: cfg.Partitions, ReplicationFactor: cfg.ReplicationFactor, Configs: configs}
	}
	compact := map[string]string{"cleanup.policy": "compact"}
	t := cfg.Topics
	return []stream.TopicSpec{
		spec(t.Webhooks, nil), spec(t.Sends, nil), spec(t.DLQ, nil),
		spec(t.Events, nil), spec(t.Units, nil), spec(t.Rows, nil),
		spec(t.WindowState, compact), spec(t.AccountState, compact),
	}
}
