// Package alert is `wameter alert`: spend-spike and budget alerting over
// spend_hourly. Rules come from a YAML file (Rules); every Config.Interval an
// Evaluator compares each account's spend in the current window with its
// baseline (and each budget with the spend of its period), notifies a
// webhook once when an alert fires and once when it resolves, and records
// both in spend_alerts, from which a restart recovers the open alerts.
package alert

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/ops"
	"github.com/wameter/wameter/pkg/sink"
)

// Config is the alert service's configuration, from the environment.
type Config struct {
	ClickHouse sink.Config
	// RulesFile is the rules YAML (see Rules). Required.
	RulesFile string `env:"WAMETER_ALERT_RULES"`
	// Interval between evaluations.
	Interval time.Duration `env:"WAMETER_ALERT_INTERVAL" envDefault:"1m"`
	// OpsAddr is the ops server's listen address; empty disables it. Not the
	// pipeline's 9464, so both can run on one host.
	OpsAddr string `env:"WAMETER_ALERT_OPS_ADDR" envDefault:"127.0.0.1:9465"`
	// Migrate applies schemas/ (spend_alerts among them) at start.
	Migrate bool `env:"WAMETER_MIGRATE" envDefault:"true"`
}

// LoadConfig reads the configuration from environ (env.ToMap(os.Environ())).
func LoadConfig(environ map[string]string) (Config, error) {
	c := Config{ClickHouse: sink.Config{Addr: "127.0.0.1:9000", Database: "wameter"}}
	if err := env.ParseWithOptions(&c, env.Options{Environment: environ}); err != nil {
		return c, fmt.Errorf("parse environment: %w", err)
	}
	if err := c.ClickHouse.ParseEnv(environ); err != nil {
		return c, err
	}
	c.ClickHouse = c.ClickHouse.WithDefaults()
	return c, nil
}

// Validate reports every problem of c at once. It does not read the rules.
func (c *Config) Validate() error {
	var errs []error
	if c.RulesFile == "" {
		errs = append(errs, errors.New("WAMETER_ALERT_RULES: rules file missing"))
	}
	if c.Interval <= 0 {
		errs = append(errs, fmt.Errorf("interval %s: must be positive", c.Interval))
	}
	if err := c.ClickHouse.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Migrator applies the schemas to the database; set by main.
type Migrator func(ctx context.Context, cfg sink.Config, logger *zap.Logger) error

// Run evaluates rules every cfg.Interval, at the instants clock returns,
// until ctx ends or the ops server fails. An evaluation that fails is logged
// and counted; the next one tries again. /readyz is 200 while the last
// evaluation succeeded.
func Run(ctx context.Context, cfg Config, rules *Rules, migrate Migrator, clock func() time.Time, logger *zap.Logger) error {
	if logger == nil || rules == nil || clock == nil {
		return errors.New("alert: Run needs rules, a clock and a logger")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	logger.Info("starting", zap.Object("clickhouse", cfg.ClickHouse), zap.Duration("interval", cfg.Interval),
		zap.String("rules", cfg.RulesFile))
	if cfg.Migrate && migrate != nil {
		if err := migrate(ctx, cfg.ClickHouse, logger); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	conn, err := sink.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	defer conn.Close()
	ev, err := NewEvaluator(conn, rules, logger, reg)
	if err != nil {
		return err
	}

	var ready atomic.Bool
	var g run.Group
	if cfg.OpsAddr != "" {
		ln, err := net.Listen("tcp", cfg.OpsAddr)
		if err != nil {
			return fmt.Errorf("ops server: %w", err)
		}
		srv := &http.Server{Handler: ops.Mux(reg, ready.Load), ReadHeaderTimeout: 5 * time.Second}
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g.Add(func() error {
		ticker := time.NewTicker(cfg.Interval)
		defer ticker.Stop()
		for {
			if err := ev.Evaluate(ctx, clock()); err != nil {
				ready.Store(false)
				if ctx.Err() != nil {
					return nil
				}
				logger.Warn("evaluation failed", zap.Error(err))
			} else {
				ready.Store(true)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-ticker.C:
			}
		}
	}, func(error) { ready.Store(false); cancel() })
	return g.Run()
}
