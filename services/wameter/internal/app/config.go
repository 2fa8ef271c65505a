// Package app wires the pipeline's stages into a running process: the
// configuration from the environment, the topics, the Kafka consumers of
// each role (normalize, window, account, sink, or all of them), and the ops
// server (/metrics, /healthz, /readyz, /debug/pprof).
package app

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/dustin/go-humanize"

	"github.com/wameter/wameter/pkg/sink"
	"github.com/wameter/wameter/pkg/stream"
)

// Config is the process configuration; every field has an environment
// variable (the README's contract) and a default.
type Config struct {
	Kafka stream.Config
	// Producer tunes every role's producer (KAFKA_PRODUCER_* variables).
	Producer   stream.ProducerConfig
	ClickHouse sink.Config

	// AccountsFile is the accounts YAML (spec 1.2); empty: every WABA gets the defaults.
	AccountsFile string `env:"WAMETER_ACCOUNTS"`
	// PricingDir holds markets.csv, rates.csv and tiers.csv; empty: the copy built in.
	PricingDir string `env:"WAMETER_PRICING_DIR"`
	// Lateness is how long (event time) to wait for out-of-order events.
	Lateness time.Duration `env:"WAMETER_LATENESS" envDefault:"10m"`
	// IdleFlush: a partition with no new events for this long releases what it holds.
	IdleFlush time.Duration `env:"WAMETER_IDLE_FLUSH" envDefault:"30s"`
	// MessageMemory: how long a customer's outbound messages are remembered (see billing).
	MessageMemory time.Duration `env:"WAMETER_MESSAGE_MEMORY" envDefault:"168h"`
	// BufferMemory bounds the window stage's reorder buffers in this
	// process, shared equally by the WAMETER_PARTITIONS partitions (a fixed
	// share, so one process owning every partition stays within it): past
	// its share a partition spills buffered events to SpillDir, sorted, and
	// merges them back at release. 0: unbounded. The Go heap peaks at about
	// 1.75× this; size it at about 40% of the container's memory.
	BufferMemory Bytes `env:"WAMETER_BUFFER_MEMORY" envDefault:"1GiB"`
	// SpillDir holds the spill files (a cache: replaced from Kafka after a
	// crash). On real disk, not tmpfs. Default: $TMPDIR/wameter-spill.
	SpillDir string `env:"WAMETER_SPILL_DIR"`
	// StateHotKeys bounds, per window partition, the customers whose state
	// is kept decoded; the others are kept compact (about 80 bytes each)
	// and decoded when their next event comes.
	StateHotKeys int `env:"WAMETER_STATE_HOT_KEYS" envDefault:"8192"`
	// OpsAddr is the ops server's listen address; empty disables it.
	OpsAddr string `env:"WAMETER_OPS_ADDR" envDefault:"127.0.0.1:9464"`
	// Migrate: the sink applies schemas/ to the database at start.
	Migrate bool `env:"WAMETER_MIGRATE" envDefault:"true"`

	Topics Topics
	// Partitions of the internal topics (events, units, rows and state),
	// and of the input topics when the pipeline creates them.
	Partitions int `env:"WAMETER_PARTITIONS" envDefault:"4"`
	// ReplicationFactor of the topics the pipeline creates.
	ReplicationFactor int `env:"WAMETER_REPLICATION_FACTOR" envDefault:"1"`
	// SessionTimeout: a member silent this long (a killed process) is
	// dropped from its consumer group and its partitions move.
	SessionTimeout time.Duration `env:"WAMETER_SESSION_TIMEOUT" envDefault:"30s"`
	// GroupPrefix prefixes each role's consumer group: <prefix>-<role>.
	GroupPrefix string `env:"WAMETER_GROUP_PREFIX" envDefault:"wameter"`
}

// Bytes is a size from the environment: 512MiB, 1GiB, 2GB, 1073741824.
type Bytes int64

// UnmarshalText parses a size with an optional unit (go-humanize).
func (b *Bytes) UnmarshalText(text []byte) error {
	n, err := humanize.ParseBytes(string(text))
	if err != nil {
		return fmt.Errorf("size %q: want a number of bytes with an optional unit, like 512MiB", text)
	}
	if n > math.MaxInt64 {
		return fmt.Errorf("%s: too large", text)
	}
	*b = Bytes(n)
	return nil
}

func (b Bytes) String() string { return humanize.IBytes(uint64(b)) }

// minBufferShare is the smallest per-partition reorder buffer share: below
// it a busy partition would spill every few batches.
const minBufferShare = 8 << 20

// BufferShare is each partition's share of BufferMemory (0: unbounded).
func (c *Config) BufferShare() int64 {
	if c.BufferMemory <= 0 || c.Partitions <= 0 {
		return 0
	}
	return int64(c.BufferMemory) / int64(c.Partitions)
}

// SpillPath is SpillDir or its default.
func (c *Config) SpillPath() string {
	if c.SpillDir != "" {
		return c.SpillDir
	}
	return filepath.Join(os.TempDir(), "wameter-spill")
}

// Topics are the topic names; the first three are the public contract.
type Topics struct {
	Webhooks     string `env:"WAMETER_WEBHOOKS_TOPIC" envDefault:"whatsapp.webhooks"`
	Sends        string `env:"WAMETER_SENDS_TOPIC" envDefault:"whatsapp.sends"`
	DLQ          string `env:"WAMETER_DLQ_TOPIC" envDefault:"whatsapp.dlq"`
	Events       string `env:"WAMETER_EVENTS_TOPIC" envDefault:"wameter.events"`
	Units        string `env:"WAMETER_UNITS_TOPIC" envDefault:"wameter.units"`
	Rows         string `env:"WAMETER_ROWS_TOPIC" envDefault:"wameter.rows"`
	WindowState  string `env:"WAMETER_WINDOW_STATE_TOPIC" envDefault:"wameter.window-state"`
	AccountState string `env:"WAMETER_ACCOUNT_STATE_TOPIC" envDefault:"wameter.account-state"`
}

// LoadConfig reads the configuration from environ (env.ToMap(os.Environ())).
func LoadConfig(environ map[string]string) (Config, error) {
	c := Config{Kafka: stream.Config{Brokers: []string{"127.0.0.1:9092"}},
		ClickHouse: sink.Config{Addr: "127.0.0.1:9000", Database: "wameter"}}
	if err := env.ParseWithOptions(&c, env.Options{Environment: environ}); err != nil {
		return c, fmt.Errorf("parse environment: %w", err)
	}
	if err := c.Kafka.ParseEnv(environ); err != nil {
		return c, err
	}
	if err := c.ClickHouse.ParseEnv(environ); err != nil {
		return c, err
	}
	c.ClickHouse = c.ClickHouse.WithDefaults()
	return c, nil
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	errs = append(errs, c.Kafka.Validate(), c.ClickHouse.Validate())
	if c.Lateness < 0 {
		errs = append(errs, errors.New("WAMETER_LATENESS must not be negative"))
	}
	if c.IdleFlush <= 0 {
		errs = append(errs, errors.New("WAMETER_IDLE_FLUSH must be positive"))
	}
	if c.MessageMemory < 72*time.Hour {
		errs = append(errs, errors.New("WAMETER_MESSAGE_MEMORY must be at least 72h (the longest window)"))
	}
	if c.SessionTimeout < 2*time.Second {
		errs = append(errs, errors.New("WAMETER_SESSION_TIMEOUT must be at least 2s"))
	}
	if c.Partitions <= 0 || c.ReplicationFactor <= 0 {
		errs = append(errs, errors.New("WAMETER_PARTITIONS and WAMETER_REPLICATION_FACTOR must be positive"))
	}
	if c.StateHotKeys < 1 {
		errs = append(errs, errors.New("WAMETER_STATE_HOT_KEYS must be at least 1"))
	}
	if c.BufferMemory < 0 {
		errs = append(errs, errors.New("WAMETER_BUFFER_MEMORY must not be negative"))
	} else if share := c.BufferShare(); c.BufferMemory > 0 && share < minBufferShare {
		errs = append(errs, fmt.Errorf("WAMETER_BUFFER_MEMORY %s gives each of the %d partitions %s: at least %s each (or 0 for unbounded)",
			c.BufferMemory, c.Partitions, Bytes(share), Bytes(minBufferShare)))
	}
	return errors.Join(errs...)
}
