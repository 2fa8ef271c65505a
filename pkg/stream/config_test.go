package stream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go/sasl/plain"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	passFile := filepath.Join(dir, "pass")
	if err := os.WriteFile(passFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := func(name string, cfg Config, wantErrs ...string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			err := cfg.Validate()
			if len(wantErrs) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors %q", wantErrs)
			}
			for _, want := range wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate() = %q, want it to mention %q", err, want)
				}
			}
		})
	}
	f("minimal", Config{Brokers: []string{"127.0.0.1:9092"}})
	f("scram with password file", Config{
		Brokers: []string{"k1:9092", "k2:9092"},
		SASL:    SASLConfig{Mechanism: SASLScramSHA512, Username: "u", PasswordFile: passFile},
	})
	f("no brokers", Config{}, "none given")
	f("every problem at once", Config{
		Brokers: []string{"no-port"},
		SASL:    SASLConfig{Mechanism: "kerberos"},
		TLS:     TLSConfig{CertFile: "/nonexistent/cert.pem"},
	}, `"no-port": want host:port`, `mechanism "kerberos"`, "tls.enable is false", "cert_file and key_file go together", "cert_file: stat")
	f("sasl without credentials", Config{
		Brokers: []string{"k:9092"},
		SASL:    SASLConfig{Mechanism: SASLPlain},
	}, "username is empty", "no password")
	f("password twice", Config{
		Brokers: []string{"k:9092"},
		SASL:    SASLConfig{Mechanism: SASLPlain, Username: "u", Password: "p", PasswordFile: passFile},
	}, "not both")
	f("missing password file", Config{
		Brokers: []string{"k:9092"},
		SASL:    SASLConfig{Mechanism: SASLScramSHA256, Username: "u", PasswordFile: filepath.Join(dir, "nope")},
	}, "password_file: stat")
	f("credentials without mechanism", Config{
		Brokers: []string{"k:9092"},
		SASL:    SASLConfig{Username: "u", Password: "p"},
	}, "mechanism is none")
}

func TestConfigParseEnv(t *testing.T) {
	dir := t.TempDir()
	passFile := filepath.Join(dir, "pass")
	if err := os.WriteFile(passFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{ClientID: "from-yaml"}
	err := cfg.ParseEnv(map[string]string{
		"KAFKA_BROKERS":            "k1:9092,k2:9093",
		"KAFKA_SASL_MECHANISM":     "plain",
		"KAFKA_SASL_USERNAME":      "meter",
		"KAFKA_SASL_PASSWORD_FILE": passFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Brokers, "|"); got != "k1:9092|k2:9093" {
		t.Errorf("brokers = %q", got)
	}
	if cfg.ClientID != "from-yaml" {
		t.Errorf("client id = %q, want the value set before ParseEnv kept", cfg.ClientID)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d, err := cfg.Dialer()
	if err != nil {
		t.Fatal(err)
	}
	m, ok := d.SASLMechanism.(plain.Mechanism)
	if !ok {
		t.Fatalf("mechanism %T, want plain", d.SASLMechanism)
	}
	if m.Username != "meter" || m.Password != "s3cret" {
		t.Errorf("plain credentials %q/%q, want meter/s3cret (file's trailing newline dropped)", m.Username, m.Password)
	}
	if d.ClientID != "from-yaml" {
		t.Errorf("dialer client id %q", d.ClientID)
	}
	tr, err := cfg.Transport()
	if err != nil {
		t.Fatal(err)
	}
	if tr.SASL == nil || tr.TLS != nil {
		t.Errorf("transport sasl %v tls %v, want sasl and no tls", tr.SASL, tr.TLS)
	}
}

func TestConfigNeverPrintsPassword(t *testing.T) {
	const password = "hunter2-very-secret"
	cfg := Config{
		Brokers: []string{"k:9092"},
		SASL:    SASLConfig{Mechanism: SASLScramSHA256, Username: "u", Password: password},
	}
	var logged bytes.Buffer
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&logged), zap.DebugLevel))
	logger.Info("config", zap.Any("kafka", cfg), zap.Stringer("kafka_str", cfg), zap.Any("sasl", cfg.SASL))
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"String": cfg.String(),
		"%v":     fmt.Sprintf("%v", cfg),
		"%+v":    fmt.Sprintf("%+v", cfg),
		"%#v":    fmt.Sprintf("%#v", cfg),
		"sasl":   fmt.Sprintf("%+v", cfg.SASL),
		"json":   string(js),
		"zap":    logged.String(),
	}
	for how, out := range outputs {
		if strings.Contains(out, password) {
			t.Errorf("%s output contains the password: %s", how, out)
		}
	}
	if !strings.Contains(cfg.String(), "sasl_password=***") {
		t.Errorf("String() = %q, want the password shown as ***", cfg.String())
	}
}
