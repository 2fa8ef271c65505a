// Command broker runs kfake, franz-go's in-process Kafka-protocol broker, as a
// single-node broker over TCP for local stacks and integration tests. With
// -data-dir it keeps its log, topics, committed offsets and producer state on
// disk and reloads them on start, so it survives kill -9.
//
// It is not Kafka: one node, no replication, no retention enforcement beyond
// what kfake implements. It speaks the protocol well enough for kafka-go and
// franz-go clients, consumer groups included.
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "broker: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg := defaultConfig(os.Getenv)
	if err := cfg.bindEnv(os.Getenv); err != nil {
		return fmt.Errorf("environment: %w", err)
	}
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	cfg.registerFlags(fs)
	validateOnly := fs.Bool("validate", false, "check the configuration and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	if *validateOnly {
		return nil
	}

	logger, err := newLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()

	// Signals are caught before the cluster starts so that a SIGTERM sent
	// while loading a large data dir still goes through the clean path.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)

	if cfg.AddrFile != "" {
		if err := os.Remove(cfg.AddrFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale addr file: %w", err)
		}
	}

	var ops *opsServer
	if cfg.OpsAddr != "" {
		if ops, err = newOpsServer(cfg.OpsAddr); err != nil {
			return err
		}
		go ops.serve(logger)
		// Stopped last: it answers (503 on /readyz) while the log is saved.
		defer ops.stop()
	}

	started := time.Now()
	opts, err := clusterOpts(cfg, logger)
	if err != nil {
		return err
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("start cluster: %w", err)
	}
	if cfg.AutoCreateTopics {
		persistAutoCreatedTopics(cluster, logger)
	}
	addr := cluster.ListenAddrs()[0]
	// Gives consumer groups Kafka's session timeouts, which kfake does not
	// enforce for every member (see memberSessions).
	sessionOpts, err := sessionClientOpts(cfg)
	if err != nil {
		cluster.Close()
		return fmt.Errorf("member sessions: %w", err)
	}
	sessions, err := startMemberSessions(cluster, addr, logger, sessionOpts...)
	if err != nil {
		cluster.Close()
		return fmt.Errorf("member sessions: %w", err)
	}
	if cfg.AddrFile != "" {
		if err := writeFileAtomic(cfg.AddrFile, []byte(addr+"\n")); err != nil {
			sessions.stop()
			cluster.Close()
			return fmt.Errorf("write addr file: %w", err)
		}
	}
	if ops != nil {
		ops.ready.Store(true)
	}
	logger.Info("serving",
		zap.String("addr", addr),
		zap.String("data_dir", cfg.DataDir),
		zap.Bool("auto_create_topics", cfg.AutoCreateTopics),
		zap.Int("default_partitions", cfg.Partitions),
		zap.String("sasl_user", cfg.SASLUser),
		zap.Bool("tls", cfg.TLSCertFile != ""),
		zap.Duration("startup", time.Since(started)))
	if cfg.DataDir == "" {
		logger.Warn("no data dir: everything is lost when the process stops")
	}

	sig := <-sigs
	logger.Info("stopping; a second signal exits at once", zap.Stringer("signal", sig))
	if ops != nil {
		ops.ready.Store(false)
	}
	done := make(chan struct{})
	go func() {
		// Close persists the final state (offsets in flight, sequence
		// windows) into the data dir before returning.
		sessions.stop()
		cluster.Close()
		close(done)
	}()
	select {
	case <-done:
		logger.Info("stopped")
		return nil
	case sig := <-sigs:
		logger.Warn("second signal: exiting without a clean shutdown", zap.Stringer("signal", sig))
		_ = logger.Sync()
		os.Exit(1)
		return nil
	}
}

func clusterOpts(cfg Config, logger *zap.Logger) ([]kfake.Opt, error) {
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("wameter-broker"),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.WithLogger(kfakeLogger{logger.Named("kfake").Sugar()}),
		// kfake always listens on 127.0.0.1:port; this binds the configured
		// host instead, which is also what metadata then advertises.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, cfg.Addr)
		}),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	if cfg.SASLUser != "" {
		pw, err := cfg.password()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(cfg.SASLMechanism, cfg.SASLUser, string(pw)))
	}
	if cfg.TLSCertFile != "" {
		pair, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls key pair: %w", err)
		}
		opts = append(opts, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}))
	}
	return opts, nil
}

func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	zcfg := zap.NewProductionConfig() // JSON to stderr
	zcfg.Level = zap.NewAtomicLevelAt(lvl)
	zcfg.Sampling = nil
	zcfg.EncoderConfig.TimeKey = "ts"
	zcfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	logger, err := zcfg.Build()
	if err != nil {
		return nil, fmt.Errorf("build logger: %w", err)
	}
	return logger.Named("broker"), nil
}

// writeFileAtomic writes data so that a reader polling for name never sees
// it half-written.
func writeFileAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".addr-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), name)
}
