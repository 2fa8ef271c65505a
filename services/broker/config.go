package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap/zapcore"

	"github.com/wameter/wameter/pkg/secret"
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
	// SASLUser, if set, turns SASL authentication on: clients must log in
	// as this user (a superuser) with SASLMechanism (SCRAM-SHA-256,
	// SCRAM-SHA-512 or PLAIN) and the password, given in SASLPassword or,
	// better, SASLPasswordFile. Never logged.
	SASLUser         string        `yaml:"sasl_user"`
	SASLMechanism    string        `yaml:"sasl_mechanism"`
	SASLPassword     secret.String `yaml:"-"`
	SASLPasswordFile string        `yaml:"sasl_password_file"`
	// TLSCertFile and TLSKeyFile (PEM), if set, make the listener TLS only.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
}

// saslMechanisms are what kfake authenticates.
var saslMechanisms = []string{"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"}

// defaultConfig returns the defaults, taking the address from the first
// entry of KAFKA_BROKERS so that the broker and its clients agree by default.
func defaultConfig(getenv func(string) string) Config {
	addr := "127.0.0.1:9092"
	if first, _, _ := strings.Cut(getenv("KAFKA_BROKERS"), ","); strings.TrimSpace(first) != "" {
		addr = strings.TrimSpace(first)
	}
	return Config{
		Addr:          addr,
		Partitions:    4,
		LogLevel:      "info",
		SASLMechanism: "SCRAM-SHA-256",
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
	str("WAMETER_BROKER_SASL_USER", &c.SASLUser)
	str("WAMETER_BROKER_SASL_MECHANISM", &c.SASLMechanism)
	if v := getenv("WAMETER_BROKER_SASL_PASSWORD"); v != "" {
		c.SASLPassword = secret.String(v)
	}
	str("WAMETER_BROKER_SASL_PASSWORD_FILE", &c.SASLPasswordFile)
	str("WAMETER_BROKER_TLS_CERT_FILE", &c.TLSCertFile)
	str("WAMETER_BROKER_TLS_KEY_FILE", &c.TLSKeyFile)
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
	fs.StringVar(&c.SASLUser, "sasl-user", c.SASLUser, "require SASL; clients log in as this `user` (env WAMETER_BROKER_SASL_USER)")
	fs.StringVar(&c.SASLMechanism, "sasl-mechanism", c.SASLMechanism, "SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN (env WAMETER_BROKER_SASL_MECHANISM)")
	fs.StringVar(&c.SASLPasswordFile, "sasl-password-file", c.SASLPasswordFile, "read the SASL password from this `file` (env WAMETER_BROKER_SASL_PASSWORD_FILE; or WAMETER_BROKER_SASL_PASSWORD)")
	fs.StringVar(&c.TLSCertFile, "tls-cert-file", c.TLSCertFile, "serve TLS with this PEM certificate `file` (env WAMETER_BROKER_TLS_CERT_FILE)")
	fs.StringVar(&c.TLSKeyFile, "tls-key-file", c.TLSKeyFile, "and this PEM key `file` (env WAMETER_BROKER_TLS_KEY_FILE)")
}

// password returns the SASL password from SASLPasswordFile (trailing
// newline trimmed) or SASLPassword.
func (c *Config) password() (secret.String, error) {
	if c.SASLPasswordFile == "" {
		return c.SASLPassword, nil
	}
	b, err := os.ReadFile(c.SASLPasswordFile)
	if err != nil {
		return "", fmt.Errorf("sasl password file: %w", err)
	}
	return secret.String(strings.TrimRight(string(b), "\r\n")), nil
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
	if c.SASLUser != "" {
		if !slices.Contains(saslMechanisms, c.SASLMechanism) {
			errs = append(errs, fmt.Errorf("sasl mechanism %q: want one of %s", c.SASLMechanism, strings.Join(saslMechanisms, ", ")))
		}
		switch pw, err := c.password(); {
		case err != nil:
			errs = append(errs, err)
		case pw == "":
			errs = append(errs, errors.New("sasl user set without a password (WAMETER_BROKER_SASL_PASSWORD_FILE or WAMETER_BROKER_SASL_PASSWORD)"))
		}
	} else if c.SASLPassword != "" || c.SASLPasswordFile != "" {
		errs = append(errs, errors.New("sasl password set without a sasl user"))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("tls needs both a certificate file and a key file"))
	} else if c.TLSCertFile != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("tls key pair: %w", err))
		}
	}
	return errors.Join(errs...)
}
