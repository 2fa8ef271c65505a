package app

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The contract's variables reach the configuration, defaults included, and
// every problem is reported at once.
func TestLoadConfigFromEnvironment(t *testing.T) {
	cfg, err := LoadConfig(map[string]string{
		"KAFKA_BROKERS": "k1:9092,k2:9092", "CLICKHOUSE_DATABASE": "billing",
		"WAMETER_LATENESS": "15m", "KAFKA_PRODUCER_COMPRESSION": "zstd", "WAMETER_DLQ_TOPIC": "dead",
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Kafka.Brokers, ",") != "k1:9092,k2:9092" || cfg.ClickHouse.Database != "billing" ||
		cfg.ClickHouse.Addr != "127.0.0.1:9000" || cfg.Lateness != 15*time.Minute || cfg.IdleFlush != 30*time.Second ||
		cfg.Producer.Compression != "zstd" || cfg.Topics.DLQ != "dead" || cfg.Topics.Webhooks != "whatsapp.webhooks" {
		t.Errorf("config from the environment: %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid configuration rejected: %v", err)
	}
	if cfg.StateHotKeys != 8192 {
		t.Errorf("default WAMETER_STATE_HOT_KEYS %d, want 8192", cfg.StateHotKeys)
	}
	if cfg.BufferMemory != 1<<30 || cfg.BufferShare() != 1<<28 {
		t.Errorf("default buffer memory %d, share %d: want 1GiB over 4 partitions", cfg.BufferMemory, cfg.BufferShare())
	}
	sized, err := LoadConfig(map[string]string{"WAMETER_BUFFER_MEMORY": "512MiB", "WAMETER_PARTITIONS": "8"})
	if err != nil || sized.BufferShare() != 64<<20 {
		t.Errorf("WAMETER_BUFFER_MEMORY=512MiB over 8 partitions: share %d, %v; want 64MiB", sized.BufferShare(), err)
	}
	if _, err := LoadConfig(map[string]string{"WAMETER_BUFFER_MEMORY": "lots"}); err == nil || !strings.Contains(err.Error(), `size "lots"`) {
		t.Errorf("WAMETER_BUFFER_MEMORY=lots: %v, want an error quoting it", err)
	}
	bad, err := LoadConfig(map[string]string{"WAMETER_IDLE_FLUSH": "0s", "WAMETER_MESSAGE_MEMORY": "1h", "WAMETER_PARTITIONS": "0", "WAMETER_STATE_HOT_KEYS": "0"})
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Validate()
	small, err2 := LoadConfig(map[string]string{"WAMETER_BUFFER_MEMORY": "16MiB"})
	if err2 != nil {
		t.Fatal(err2)
	}
	err = errors.Join(err, small.Validate())
	for _, want := range []string{"WAMETER_IDLE_FLUSH", "WAMETER_MESSAGE_MEMORY", "WAMETER_PARTITIONS", "WAMETER_STATE_HOT_KEYS", "WAMETER_BUFFER_MEMORY 16 MiB gives each of the 4 partitions 4.0 MiB"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v: want a problem naming %s", err, want)
		}
	}
}
