package sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestConfigDefaultsAndEnv(t *testing.T) {
	var c Config
	if err := c.Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	d := c.WithDefaults()
	if d.Addr != "127.0.0.1:9000" || d.Database != "wameter" || d.User != "default" ||
		d.BatchMaxRows != 100_000 || d.BatchMinRows != 1000 || d.DedupHorizon != 100_000 || d.FlushInterval != time.Second {
		t.Fatalf("defaults: %+v", d)
	}

	c = Config{Database: "from_yaml", User: "yaml_user"}
	err := c.ParseEnv(map[string]string{
		"CLICKHOUSE_ADDR":             "ch1:9440, ch2:9440",
		"CLICKHOUSE_DATABASE":         "billing",
		"CLICKHOUSE_PASSWORD":         "s3cret",
		"CLICKHOUSE_TLS":              "true",
		"CLICKHOUSE_TLS_SKIP_VERIFY":  "true",
		"CLICKHOUSE_DIAL_TIMEOUT":     "2s",
		"WAMETER_SINK_BATCH_MAX_ROWS": "5000",
		"WAMETER_SINK_BATCH_MIN_ROWS": "500",
		"WAMETER_SINK_DEDUP_HORIZON":  "42",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Database != "billing" || c.User != "yaml_user" || c.Password != "s3cret" || !c.TLS ||
		c.DialTimeout != 2*time.Second || c.BatchMaxRows != 5000 || c.BatchMinRows != 500 || c.DedupHorizon != 42 {
		t.Fatalf("env not applied over yaml: %+v", c)
	}
	if got := c.addrs(); len(got) != 2 || got[0] != "ch1:9440" || got[1] != "ch2:9440" {
		t.Fatalf("addrs = %q", got)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := new(Config).ParseEnv(map[string]string{"CLICKHOUSE_TLS": "maybe"}); err == nil {
		t.Fatal("bad bool accepted")
	}
}

func TestConfigValidateReportsEverything(t *testing.T) {
	c := Config{
		Addr:          "no-port, :9000",
		Database:      "x; DROP",
		Password:      "p",
		PasswordFile:  "/nonexistent/password",
		TLSSkipVerify: true,
		DialTimeout:   -time.Second,
		RetryMin:      time.Minute,
		RetryMax:      time.Second,
		BatchMaxRows:  -1,
		BatchMinRows:  -1,
		DedupHorizon:  -1,
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`addr "no-port"`, `addr ":9000"`, "not a plain name", "not both",
		"password_file", "tls is off", "dial_timeout", "retry_max", "batch_max_rows", "batch_min_rows", "dedup_horizon",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file error not wrapped: %v", err)
	}
}

func TestConfigBatchMinRows(t *testing.T) {
	if d := (Config{BatchMaxRows: 300}).WithDefaults(); d.BatchMinRows != 300 {
		t.Errorf("batch_max_rows 300: batch_min_rows defaults to %d, want 300", d.BatchMinRows)
	}
	c := Config{BatchMaxRows: 300, BatchMinRows: 301}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "batch_min_rows 301") {
		t.Errorf("batch_min_rows above batch_max_rows: %v", err)
	}
}

func TestConfigPasswordFileAndSecrets(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Config{PasswordFile: pw}.WithDefaults()
	opts, err := c.options()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Auth.Password != "from-file" || opts.Auth.Database != "wameter" {
		t.Fatalf("auth = %+v", opts.Auth)
	}

	c = Config{Password: "hunter2"}.WithDefaults()
	var logged bytes.Buffer
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.AddSync(&logged), zap.DebugLevel))
	logger.Info("config", zap.Object("clickhouse", c), zap.Any("raw", c), zap.Stringer("pw", c.Password))
	js, _ := json.Marshal(c)
	for name, s := range map[string]string{
		"zap": logged.String(), "json": string(js),
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
	} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("%s leaks the password: %s", name, s)
		}
	}
	if !strings.Contains(logged.String(), `"password_set":true`) {
		t.Errorf("log does not say a password is set: %s", logged.String())
	}
}
