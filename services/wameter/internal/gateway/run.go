package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/ops"
	"github.com/wameter/wameter/pkg/stream"
)

// probeInterval is how often Run checks, while the last write failed,
// whether Kafka answers again.
const probeInterval = 2 * time.Second

// Run serves the webhook endpoint until ctx ends or a server fails. It
// validates cfg and reads the secrets (refusing to start without an app
// secret), starts the ops server, creates the webhooks topic when missing
// (waiting for Kafka as long as ctx allows), then listens on cfg.Addr.
//
// On ctx's end it turns /readyz to 503, stops accepting connections, lets
// in-flight requests finish their writes (up to cfg.ShutdownTimeout), closes
// the producer and stops the ops server last. reg gets the gateway's and the
// producer's metrics and is what /metrics serves.
func Run(ctx context.Context, cfg Config, logger *zap.Logger, reg *prometheus.Registry) error {
	if logger == nil {
		return errors.New("gateway: nil logger")
	}
	if reg == nil {
		return errors.New("gateway: nil registry")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	secrets, err := cfg.LoadSecrets()
	if err != nil {
		return err
	}
	logger = logger.Named("gateway")
	logger.Info("starting", zap.Object("kafka", cfg.Kafka), zap.String("addr", cfg.Addr), zap.String("path", cfg.Path),
		zap.String("topic", cfg.WebhooksTopic), zap.Int64("max_body", cfg.MaxBody), zap.Duration("write_timeout", cfg.WriteTimeout),
		zap.Bool("verify_token_set", secrets.VerifyToken != ""))
	if secrets.VerifyToken == "" {
		logger.Warn("no WHATSAPP_VERIFY_TOKEN: every subscription handshake will be denied")
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var g run.Group

	var ready atomic.Bool
	var handler atomic.Pointer[Handler]
	if cfg.OpsAddr != "" {
		opsLn, err := net.Listen("tcp", cfg.OpsAddr)
		if err != nil {
			return fmt.Errorf("ops server: %w", err)
		}
		opsSrv := &http.Server{Handler: ops.Mux(reg, func() bool {
			h := handler.Load()
			return ready.Load() && h != nil && h.Healthy()
		}), ReadHeaderTimeout: 5 * time.Second}
		opsErr := make(chan error, 1)
		go func() {
			logger.Info("ops server listening", zap.String("addr", opsLn.Addr().String()))
			if err := opsSrv.Serve(opsLn); !errors.Is(err, http.ErrServerClosed) {
				opsErr <- fmt.Errorf("ops server: %w", err)
			}
		}()
		// Deferred first so it stops last: /metrics and /readyz answer
		// while the webhook server drains and the producer closes.
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = opsSrv.Shutdown(sctx)
		}()
		g.Add(func() error {
			select {
			case err := <-opsErr:
				return err
			case <-ctx.Done():
				return nil
			}
		}, func(error) { cancel() })
	}

	if _, err := stream.EnsureTopics(ctx, cfg.Kafka, []stream.TopicSpec{{
		Name: cfg.WebhooksTopic, Partitions: cfg.Partitions, ReplicationFactor: cfg.ReplicationFactor,
	}}); err != nil {
		return err
	}
	// A record is the body plus a header and the batch framing: leave room
	// so that every accepted body fits.
	pcfg := stream.ProducerConfig{}
	if limit := cfg.MaxBody + 64<<10; limit > 1<<20 {
		pcfg.BatchBytes = limit
	}
	producer, err := stream.NewProducer(cfg.Kafka, pcfg, logger, reg)
	if err != nil {
		return err
	}
	defer func() {
		if err := producer.Close(); err != nil {
			logger.Warn("close producer", zap.Error(err))
		}
	}()
	h, err := NewHandler(cfg, secrets, producer, logger, reg)
	if err != nil {
		return err
	}
	handler.Store(h)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("gateway server: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(cfg.Path, h)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Room for the Kafka write on top of reading the body.
		WriteTimeout: 30*time.Second + cfg.WriteTimeout,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     zap.NewStdLog(logger.Named("http")),
	}
	g.Add(func() error {
		logger.Info("webhook server listening", zap.String("addr", ln.Addr().String()), zap.String("path", cfg.Path))
		ready.Store(true)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("gateway server: %w", err)
		}
		return nil
	}, func(error) {
		// Called before the other actors are interrupted, and g.Run waits
		// for it: the producer is closed only after the drain.
		ready.Store(false)
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			logger.Warn("requests still in flight at shutdown timeout", zap.Error(err))
			_ = srv.Close()
		}
	})

	probe, err := newProbe(cfg)
	if err != nil {
		return err
	}
	g.Add(func() error {
		probe.run(ctx, h, logger)
		return nil
	}, func(error) { cancel() })

	g.Add(func() error {
		<-ctx.Done()
		logger.Info("stopping")
		return nil
	}, func(error) { cancel() })
	return g.Run()
}

// probe asks Kafka for the webhooks topic's metadata while the last write
// failed, and marks the handler healthy again once it answers. Without it a
// gateway taken out of rotation by /readyz would get no request that could
// prove Kafka back.
type probe struct {
	client    *kafka.Client
	transport *kafka.Transport
	topic     string
}

func newProbe(cfg Config) (*probe, error) {
	transport, err := cfg.Kafka.Transport()
	if err != nil {
		return nil, fmt.Errorf("gateway probe: %w", err)
	}
	return &probe{
		client:    &kafka.Client{Addr: kafka.TCP(cfg.Kafka.Brokers...), Timeout: probeInterval, Transport: transport},
		transport: transport,
		topic:     cfg.WebhooksTopic,
	}, nil
}

func (p *probe) run(ctx context.Context, h *Handler, logger *zap.Logger) {
	defer p.transport.CloseIdleConnections()
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if h.Healthy() {
			continue
		}
		if err := p.check(ctx); err != nil {
			logger.Debug("kafka still unavailable", zap.Error(err))
			continue
		}
		h.markWritten(true)
		logger.Info("kafka answers again, ready")
	}
}

func (p *probe) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeInterval)
	defer cancel()
	md, err := p.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{p.topic}})
	if err != nil {
		return err
	}
	for _, t := range md.Topics {
		if t.Name == p.topic {
			return t.Error
		}
	}
	return fmt.Errorf("topic %s: %w", p.topic, kafka.UnknownTopicOrPartition)
}
