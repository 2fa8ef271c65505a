package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestDefaultConfigAddr(t *testing.T) {
	f := func(kafkaBrokers, want string) {
		t.Helper()
		got := defaultConfig(func(name string) string {
			if name == "KAFKA_BROKERS" {
				return kafkaBrokers
			}
			return ""
		}).Addr
		if got != want {
			t.Errorf("KAFKA_BROKERS=%q: addr %q, want %q", kafkaBrokers, got, want)
		}
	}
	f("", "127.0.0.1:9092")
	f("127.0.0.1:19092", "127.0.0.1:19092")
	f(" 127.0.0.1:19092 ,127.0.0.1:19093", "127.0.0.1:19092")
}

func TestConfigValidate(t *testing.T) {
	f := func(mutate func(*Config), wantErrs ...string) {
		t.Helper()
		cfg := defaultConfig(func(string) string { return "" })
		mutate(&cfg)
		err := cfg.Validate()
		if len(wantErrs) == 0 {
			if err != nil {
				t.Errorf("unexpected error: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("no error, want %q", wantErrs)
		}
		for _, want := range wantErrs {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	}
	f(func(*Config) {})
	f(func(c *Config) { c.Addr = "127.0.0.1:0" })
	f(func(c *Config) { c.Addr = "0.0.0.0:9092" }, "unspecified")
	f(func(c *Config) { c.Addr = ":9092" }, "host is empty")
	f(func(c *Config) { c.Addr = "127.0.0.1" }, "missing port")
	f(func(c *Config) { c.Addr = "127.0.0.1:99999" }, "port")
	// Every problem is reported, not just the first.
	f(func(c *Config) { c.Partitions = 0; c.LogLevel = "loud" }, "partitions 0", "log level")
	// SASL and TLS.
	f(func(c *Config) { c.SASLUser = "wameter"; c.SASLPassword = "pw" })
	f(func(c *Config) { c.SASLUser = "wameter" }, "without a password")
	f(func(c *Config) { c.SASLUser = "wameter"; c.SASLPassword = "pw"; c.SASLMechanism = "GSSAPI" }, `sasl mechanism "GSSAPI"`)
	f(func(c *Config) { c.SASLUser = "wameter"; c.SASLPasswordFile = "/nonexistent/pw" }, "sasl password file")
	f(func(c *Config) { c.SASLPassword = "pw" }, "without a sasl user")
	f(func(c *Config) { c.TLSCertFile = "cert.pem" }, "both a certificate file and a key file")
	f(func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "/nonexistent/cert.pem", "/nonexistent/key.pem" }, "tls key pair")
}

// The password never shows when the configuration is printed.
func TestConfigRedactsPassword(t *testing.T) {
	cfg := defaultConfig(func(string) string { return "" })
	cfg.SASLUser, cfg.SASLPassword = "wameter", "hunter2-secret"
	if s := fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg); strings.Contains(s, "hunter2-secret") {
		t.Errorf("the password shows: %s", s)
	}
}

func TestBindEnv(t *testing.T) {
	env := map[string]string{
		"WAMETER_BROKER_DATA_DIR":           "/data",
		"WAMETER_BROKER_PARTITIONS":         "8",
		"WAMETER_BROKER_AUTO_CREATE_TOPICS": "true",
		"WAMETER_BROKER_SYNC_WRITES":        "maybe",
	}
	cfg := defaultConfig(func(string) string { return "" })
	err := cfg.bindEnv(func(name string) string { return env[name] })
	if err == nil || !strings.Contains(err.Error(), "WAMETER_BROKER_SYNC_WRITES") {
		t.Errorf("error %v, want one naming WAMETER_BROKER_SYNC_WRITES", err)
	}
	if cfg.DataDir != "/data" || cfg.Partitions != 8 || !cfg.AutoCreateTopics {
		t.Errorf("config %+v does not reflect the environment", cfg)
	}
}
