package gateway

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig(map[string]string{"WHATSAPP_APP_SECRET": "s3cr3t"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:8080" || cfg.Path != "/webhook" || cfg.MaxBody != 1<<20 || cfg.WriteTimeout != 10*time.Second ||
		cfg.WebhooksTopic != "whatsapp.webhooks" || cfg.OpsAddr != "127.0.0.1:9464" ||
		len(cfg.Kafka.Brokers) != 1 || cfg.Kafka.Brokers[0] != "127.0.0.1:9092" {
		t.Errorf("defaults: %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults with an app secret: %v", err)
	}
}

// Validate reports every problem at once, and a missing app secret is one.
func TestValidateReportsEveryProblem(t *testing.T) {
	cfg, err := LoadConfig(map[string]string{
		"WAMETER_GATEWAY_ADDR":             "8080",
		"WAMETER_GATEWAY_PATH":             "webhook",
		"WAMETER_GATEWAY_MAX_BODY":         "0",
		"WAMETER_GATEWAY_WRITE_TIMEOUT":    "20s",
		"WAMETER_GATEWAY_SHUTDOWN_TIMEOUT": "5s",
		"KAFKA_BROKERS":                    "nohostport",
		"WHATSAPP_VERIFY_TOKEN":            "t",
		"WHATSAPP_VERIFY_TOKEN_FILE":       "/nonexistent/token",
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.WebhooksTopic = "" // an empty variable means the default
	err = cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"WAMETER_GATEWAY_ADDR", "WAMETER_GATEWAY_PATH", "WAMETER_GATEWAY_MAX_BODY",
		"WAMETER_GATEWAY_SHUTDOWN_TIMEOUT", "WAMETER_WEBHOOKS_TOPIC", "kafka broker", "WHATSAPP_APP_SECRET_FILE (the gateway cannot",
		"WHATSAPP_VERIFY_TOKEN_FILE, not both"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}

	cfg.AppSecretFile = "/nonexistent/secret"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "WHATSAPP_APP_SECRET_FILE: stat /nonexistent/secret") {
		t.Errorf("missing secret file: %v", err)
	}
}

// Secrets from files lose the trailing newline; an empty app secret is
// refused; secrets never print.
func TestLoadSecrets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cfg := Config{AppSecretFile: write("app", "from-file-secret\n"), VerifyTokenFile: write("token", "from-file-token\r\n")}
	s, err := cfg.LoadSecrets()
	if err != nil {
		t.Fatal(err)
	}
	if string(s.AppSecret) != "from-file-secret" || string(s.VerifyToken) != "from-file-token" {
		t.Errorf("secrets %q %q", string(s.AppSecret), string(s.VerifyToken))
	}
	for _, printed := range []string{fmt.Sprintf("%v %+v %#v %s", s, s, s, s.AppSecret),
		fmt.Sprintf("%v %+v %#v", Config{AppSecret: "env-secret", VerifyToken: "env-token"}, Config{AppSecret: "env-secret"}, Config{AppSecret: "env-secret"})} {
		if strings.Contains(printed, "secret\"") || strings.Contains(printed, "from-file") || strings.Contains(printed, "env-") {
			t.Errorf("a secret prints: %s", printed)
		}
	}

	empty := Config{AppSecretFile: write("empty", "\n")}
	if _, err := empty.LoadSecrets(); err == nil || !strings.Contains(err.Error(), "app secret is empty") {
		t.Errorf("empty app secret file: %v", err)
	}
	if _, err := (&Config{AppSecret: "x", VerifyTokenFile: filepath.Join(dir, "missing")}).LoadSecrets(); err == nil {
		t.Error("missing verify token file: no error")
	}
}
