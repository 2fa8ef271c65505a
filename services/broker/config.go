package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"go.uber.org/zap/zapcore"
)

// Config is the broker's whole configuration. Flags win over environment
// variables, which win over the defaults.
type Config struct {
	// Addr is the host:port the broker listens on and advertises in metadata,
	// so it must be an address clients can dial (not 0.0.0.0). Port 0 picks a
	// free port; AddrFile then tells which.
	Addr string `yaml:"addr"`
	// AddrFile, if set, receives the bound address once the broker accepts
	// connections. Tests use it both as the readiness signal and to learn a
	// port picked with port 0.
	AddrFile string `yaml:"addr_file"`
	// DataDir keeps the log, topics, committed offsets and producer ids so
	// they survive a restart (kfake's on-disk persistence). Empty keeps
	// everything in memory.
	DataDir string `yaml:"data_dir"`
	// SyncWrites fsyncs every produced batch. Without it a killed process
	// loses nothing (the page cache keeps the writes) but a machine crash can.
	SyncWrites bool `yaml:"sync_writes"`
	// AutoCreateTopics lets metadata requests create unknown topics. Off by
	// default: the pipeline creates its topics with explicit partition
	// counts, and auto-creation turns a misspelled topic into a silent one.
	AutoCreateTopics bool `yaml:"auto_create_topics"`
	// Partitions is the partition count of topics created without one
	// (CreateTopics with -1, or auto-created).
	Partitions int `yaml:"partitions"`
	// OpsAddr, if set, serves /metrics, /healthz, /readyz and /debug/pprof.
	// Off by default so that brokers run side by side without a port clash.
	OpsAddr string `yaml:"ops_addr"`
	// LogLevel is debug, info, warn or error. kfake's request-level chatter
	// only shows at debug.
	LogLevel string `yaml:"log_level"`
}

// defaultConfig returns the defaults, taking the address from the first
// entry of KAFKA_BROKERS so that the broker and its clients agree by default.
func defaultConfig(getenv func(string) string) Config {
	addr := "127.0.0.1:9092"
	if first, _, _ := strings.Cut(getenv("KAFKA_BROKERS"), ","); strings.TrimSpace(first) != "" {
		addr = strings.TrimSpace(first)
	}
	return Config{
		Addr:       addr,
		Partitions: 4,
		LogLevel:   "info",
	}
}

// bindEnv overlays the WAMETER_BROKER_* environment variables on c.
func (c *Config) bindEnv(getenv func(string) string) error {
	var errs []error
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	boolean := func(name string, dst *bool) {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				return
			}
			*dst = b
		}
	}
	str("WAMETER_BROKER_ADDR", &c.Addr)
	str("WAMETER_BROKER_ADDR_FILE", &c.AddrFile)
	str("WAMETER_BROKER_DATA_DIR", &c.DataDir)
	boolean("WAMETER_BROKER_SYNC_WRITES", &c.SyncWrites)
	boolean("WAMETER_BROKER_AUTO_CREATE_TOPICS", &c.AutoCreateTopics)
	if v := getenv("WAMETER_BROKER_PARTITIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("WAMETER_BROKER_PARTITIONS: %w", err))
		} else {
			c.Partitions = n
		}
	}
	str("WAMETER_BROKER_OPS_ADDR", &c.OpsAddr)
	str("WAMETER_BROKER_LOG_LEVEL", &c.LogLevel)
	return errors.Join(errs...)
}

// registerFlags binds c's fields to flags of fs; call after bindEnv so the
// environment shows up as the flag defaults.
func (c *Config) registerFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen and advertised `host:port` (env WAMETER_BROKER_ADDR, else KAFKA_BROKERS' first address)")
	fs.StringVar(&c.AddrFile, "addr-file", c.AddrFile, "write the bound address to this `file` once serving (env WAMETER_BROKER_ADDR_FILE)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "persist the log and state in this `dir`; empty keeps them in memory (env WAMETER_BROKER_DATA_DIR)")
	fs.BoolVar(&c.SyncWrites, "sync-writes", c.SyncWrites, "fsync every produced batch (env WAMETER_BROKER_SYNC_WRITES)")
	fs.BoolVar(&c.AutoCreateTopics, "auto-create-topics", c.AutoCreateTopics, "create unknown topics on metadata requests (env WAMETER_BROKER_AUTO_CREATE_TOPICS)")
	fs.IntVar(&c.Partitions, "partitions", c.Partitions, "partitions of topics created without a count (env WAMETER_BROKER_PARTITIONS)")
	fs.StringVar(&c.OpsAddr, "ops-addr", c.OpsAddr, "serve /metrics, /healthz, /readyz and /debug/pprof on this `host:port`; empty for none (env WAMETER_BROKER_OPS_ADDR)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (env WAMETER_BROKER_LOG_LEVEL)")
}

// Validate reports every problem of c at once.
func (c *Config) Validate() error {
	var errs []error
	host, port, err := net.SplitHostPort(c.Addr)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("addr %q: %w", c.Addr, err))
	case host == "":
		errs = append(errs, fmt.Errorf("addr %q: host is empty; the broker advertises it, so name a dialable host", c.Addr))
	default:
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			errs = append(errs, fmt.Errorf("addr %q: unspecified address cannot be advertised to clients", c.Addr))
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			errs = append(errs, fmt.Errorf("addr %q: port: %w", c.Addr, err))
		}
	}
	if c.OpsAddr != "" {
		if _, _, err := net.SplitHostPort(c.OpsAddr); err != nil {
			errs = append(errs, fmt.Errorf("ops addr %q: %w", c.OpsAddr, err))
		}
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("partitions %d: must be at least 1", c.Partitions))
	}
	if _, err := zapcore.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("log level: %w", err))
	}
	if c.DataDir != "" {
		if fi, err := os.Stat(c.DataDir); err == nil && !fi.IsDir() {
			errs = append(errs, fmt.Errorf("data dir %q is not a directory", c.DataDir))
		}
	}
	return errors.Join(errs...)
}
