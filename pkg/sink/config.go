package sink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/wameter/wameter/pkg/secret"
	"net"
	"os"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/caarlos0/env/v11"
	"go.uber.org/zap/zapcore"
)

// Secret is a string that never prints (see pkg/secret).
type Secret = secret.String

// Config is the sink's ClickHouse connection and batching. Load YAML and/or
// ParseEnv, then Validate, then Open and NewWriter. Zero fields take the
// defaults given on each field.
type Config struct {
	// Addr is host:port of the native protocol; a comma-separated list gives
	// replicas to fail over to. Default 127.0.0.1:9000.
	Addr string `yaml:"addr" env:"CLICKHOUSE_ADDR"`
	// Database holds the tables (schemas/*.sql applied). Default wameter.
	Database string `yaml:"database" env:"CLICKHOUSE_DATABASE"`
	// User defaults to "default".
	User string `yaml:"user" env:"CLICKHOUSE_USER"`
	// Password, or PasswordFile naming a file that holds it (a mounted
	// secret; one trailing newline is dropped). Not both.
	Password     Secret `yaml:"password" env:"CLICKHOUSE_PASSWORD"`
	PasswordFile string `yaml:"password_file" env:"CLICKHOUSE_PASSWORD_FILE"`

	// TLS enables TLS on the native port (usually 9440); CAFile adds a CA to
	// verify the server with (the system pool otherwise).
	TLS           bool   `yaml:"tls" env:"CLICKHOUSE_TLS"`
	TLSCAFile     string `yaml:"tls_ca_file" env:"CLICKHOUSE_TLS_CA_FILE"`
	TLSSkipVerify bool   `yaml:"tls_skip_verify" env:"CLICKHOUSE_TLS_SKIP_VERIFY"`

	// DialTimeout bounds connecting. Default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout" env:"CLICKHOUSE_DIAL_TIMEOUT"`
	// ReadTimeout bounds one read from the server. Default 60s.
	ReadTimeout time.Duration `yaml:"read_timeout" env:"CLICKHOUSE_READ_TIMEOUT"`
	// InsertTimeout bounds one attempt of one INSERT (or of the read-back
	// that precedes a retry). Default 2m.
	InsertTimeout time.Duration `yaml:"insert_timeout" env:"WAMETER_SINK_INSERT_TIMEOUT"`

	// BatchMaxRows is when Writer.Full reports true: the caller flushes
	// then, or after FlushInterval, whichever comes first. Default 100000.
	BatchMaxRows int `yaml:"batch_max_rows" env:"WAMETER_SINK_BATCH_MAX_ROWS"`
	// BatchMinRows is when Writer.Due reports true without waiting for
	// FlushInterval: that many rows make an insert worth its own part, so a
	// burst is stored as it comes and its last rows are not held back.
	// Default 1000.
	BatchMinRows int `yaml:"batch_min_rows" env:"WAMETER_SINK_BATCH_MIN_ROWS"`
	// FlushInterval is how often the caller flushes fewer than BatchMinRows
	// rows (ClickHouse prefers about one insert per second per table).
	// Default 1s.
	FlushInterval time.Duration `yaml:"flush_interval" env:"WAMETER_SINK_FLUSH_INTERVAL"`
	// DedupHorizon is how many rows-topic offsets back, per partition, the
	// Writer recognises a row re-emitted upstream by its id, and so the
	// most ids it keeps per partition (about 70 bytes each). Default 100000.
	DedupHorizon int `yaml:"dedup_horizon" env:"WAMETER_SINK_DEDUP_HORIZON"`
	// RetryMin and RetryMax bound the jittered exponential backoff between
	// attempts of a failing insert. Default 200ms and 30s.
	RetryMin time.Duration `yaml:"retry_min" env:"WAMETER_SINK_RETRY_MIN"`
	RetryMax time.Duration `yaml:"retry_max" env:"WAMETER_SINK_RETRY_MAX"`
}

const (
	defaultAddr          = "127.0.0.1:9000"
	defaultDatabase      = "wameter"
	defaultUser          = "default"
	defaultDialTimeout   = 5 * time.Second
	defaultReadTimeout   = 60 * time.Second
	defaultInsertTimeout = 2 * time.Minute
	defaultBatchMaxRows  = 100_000
	defaultBatchMinRows  = 1000
	defaultFlushInterval = time.Second
	defaultDedupHorizon  = 100_000
	defaultRetryMin      = 200 * time.Millisecond
	defaultRetryMax      = 30 * time.Second
)

// ParseEnv fills c from the given environment (see the field tags);
// variables that are not set leave the field as it is, so YAML can be loaded
// first and the environment override it. Pass env.ToMap(os.Environ()) in a
// main, a literal map in tests.
func (c *Config) ParseEnv(environ map[string]string) error {
	if err := env.ParseWithOptions(c, env.Options{Environment: environ}); err != nil {
		return fmt.Errorf("parse clickhouse environment: %w", err)
	}
	return nil
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	set := func(dst *time.Duration, def time.Duration) {
		if *dst == 0 {
			*dst = def
		}
	}
	if c.Addr == "" {
		c.Addr = defaultAddr
	}
	if c.Database == "" {
		c.Database = defaultDatabase
	}
	if c.User == "" {
		c.User = defaultUser
	}
	set(&c.DialTimeout, defaultDialTimeout)
	set(&c.ReadTimeout, defaultReadTimeout)
	set(&c.InsertTimeout, defaultInsertTimeout)
	set(&c.FlushInterval, defaultFlushInterval)
	set(&c.RetryMin, defaultRetryMin)
	set(&c.RetryMax, defaultRetryMax)
	if c.BatchMaxRows == 0 {
		c.BatchMaxRows = defaultBatchMaxRows
	}
	if c.BatchMinRows == 0 {
		c.BatchMinRows = defaultBatchMinRows
		if c.BatchMaxRows > 0 {
			c.BatchMinRows = min(c.BatchMinRows, c.BatchMaxRows)
		}
	}
	if c.DedupHorizon == 0 {
		c.DedupHorizon = defaultDedupHorizon
	}
	return c
}

func (c *Config) addrs() []string {
	var out []string
	for a := range strings.SplitSeq(c.Addr, ",") {
		out = append(out, strings.TrimSpace(a))
	}
	return out
}

// Validate reports every problem of c at once (errors.Join). It checks that
// the files it names exist but reads no secret.
func (c *Config) Validate() error {
	cfg := c.WithDefaults()
	var errs []error
	for _, a := range cfg.addrs() {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("clickhouse addr %q: want host:port", a))
		}
	}
	if strings.ContainsAny(cfg.Database, " \t\n`'\".;") {
		errs = append(errs, fmt.Errorf("clickhouse database %q: not a plain name", cfg.Database))
	}
	if cfg.Password != "" && cfg.PasswordFile != "" {
		errs = append(errs, errors.New("clickhouse: set password or password_file, not both"))
	}
	if cfg.PasswordFile != "" {
		if _, err := os.Stat(cfg.PasswordFile); err != nil {
			errs = append(errs, fmt.Errorf("clickhouse password_file: %w", err))
		}
	}
	if !cfg.TLS && (cfg.TLSCAFile != "" || cfg.TLSSkipVerify) {
		errs = append(errs, errors.New("clickhouse tls_ca_file or tls_skip_verify set but tls is off"))
	}
	if cfg.TLSCAFile != "" {
		if _, err := os.Stat(cfg.TLSCAFile); err != nil {
			errs = append(errs, fmt.Errorf("clickhouse tls_ca_file: %w", err))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"dial_timeout", cfg.DialTimeout}, {"read_timeout", cfg.ReadTimeout},
		{"insert_timeout", cfg.InsertTimeout}, {"flush_interval", cfg.FlushInterval},
		{"retry_min", cfg.RetryMin}, {"retry_max", cfg.RetryMax},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("sink %s %s: must not be negative", d.name, d.v))
		}
	}
	if cfg.RetryMax < cfg.RetryMin {
		errs = append(errs, fmt.Errorf("sink retry_max %s: less than retry_min %s", cfg.RetryMax, cfg.RetryMin))
	}
	if cfg.BatchMaxRows < 0 {
		errs = append(errs, fmt.Errorf("sink batch_max_rows %d: must not be negative", cfg.BatchMaxRows))
	}
	if cfg.BatchMinRows < 0 || (cfg.BatchMaxRows > 0 && cfg.BatchMinRows > cfg.BatchMaxRows) {
		errs = append(errs, fmt.Errorf("sink batch_min_rows %d: want 0 <= batch_min_rows <= batch_max_rows", cfg.BatchMinRows))
	}
	if cfg.DedupHorizon < 0 {
		errs = append(errs, fmt.Errorf("sink dedup_horizon %d: must not be negative", cfg.DedupHorizon))
	}
	return errors.Join(errs...)
}

// MarshalLogObject logs c without its password.
func (c Config) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("addr", c.Addr)
	enc.AddString("database", c.Database)
	enc.AddString("user", c.User)
	enc.AddBool("password_set", c.Password != "" || c.PasswordFile != "")
	enc.AddBool("tls", c.TLS)
	enc.AddDuration("dial_timeout", c.DialTimeout)
	enc.AddDuration("read_timeout", c.ReadTimeout)
	enc.AddInt("batch_max_rows", c.BatchMaxRows)
	enc.AddInt("batch_min_rows", c.BatchMinRows)
	enc.AddDuration("flush_interval", c.FlushInterval)
	enc.AddInt("dedup_horizon", c.DedupHorizon)
	return nil
}

// options turns c (defaults applied) into clickhouse-go options, reading the
// password and CA files.
func (c *Config) options() (*clickhouse.Options, error) {
	password := string(c.Password)
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("read clickhouse password_file: %w", err)
		}
		password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	}
	opts := &clickhouse.Options{
		Addr: c.addrs(),
		Auth: clickhouse.Auth{Database: c.Database, Username: c.User, Password: password},
		// LZ4 is what clickhouse-client uses and what 18.16 speaks.
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		DialTimeout: c.DialTimeout,
		ReadTimeout: c.ReadTimeout,
		ClientInfo: clickhouse.ClientInfo{Products: []struct{ Name, Version string }{
			{Name: "wameter-sink", Version: "1"},
		}},
	}
	if c.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLSSkipVerify} //nolint:gosec // opt-in, for test servers
		if c.TLSCAFile != "" {
			pem, err := os.ReadFile(c.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("read clickhouse tls_ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("clickhouse tls_ca_file %s: no PEM certificate", c.TLSCAFile)
			}
			tc.RootCAs = pool
		}
		opts.TLS = tc
	}
	return opts, nil
}

// Open validates cfg, connects to ClickHouse and pings it once. The returned
// connection is a pool, safe for concurrent use; Close it when done.
func Open(ctx context.Context, cfg Config) (clickhouse.Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	opts, err := cfg.options()
	if err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("ping clickhouse %s: %w", cfg.Addr, err)
	}
	return conn, nil
}
