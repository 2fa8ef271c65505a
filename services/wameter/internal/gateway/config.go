package gateway

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/wameter/wameter/pkg/secret"
	"github.com/wameter/wameter/pkg/stream"
)

// Config is the gateway's configuration. Every field has an environment
// variable (see the package comment) and a default; build it with
// LoadConfig, check it with Validate, and read the secrets it names with
// LoadSecrets.
type Config struct {
	Kafka stream.Config `yaml:"kafka"`

	// Addr is where Meta's webhook requests arrive (behind the TLS proxy).
	Addr string `yaml:"addr" env:"WAMETER_GATEWAY_ADDR" envDefault:"127.0.0.1:8080"`
	// Path is the webhook endpoint: GET for the handshake, POST for events.
	Path string `yaml:"path" env:"WAMETER_GATEWAY_PATH" envDefault:"/webhook"`
	// MaxBody is the largest POST body accepted, in bytes; larger gets 413.
	MaxBody int64 `yaml:"max_body" env:"WAMETER_GATEWAY_MAX_BODY" envDefault:"1048576"`
	// WriteTimeout bounds the Kafka write of one request: past it the
	// request gets 503 and Meta retries it later.
	WriteTimeout time.Duration `yaml:"write_timeout" env:"WAMETER_GATEWAY_WRITE_TIMEOUT" envDefault:"10s"`
	// ShutdownTimeout is how long in-flight requests may take to finish
	// after SIGTERM; at least WriteTimeout, so none is cut mid-write.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" env:"WAMETER_GATEWAY_SHUTDOWN_TIMEOUT" envDefault:"15s"`
	// OpsAddr serves /metrics, /healthz, /readyz and /debug/pprof/; empty
	// disables it.
	OpsAddr string `yaml:"ops_addr" env:"WAMETER_OPS_ADDR" envDefault:"127.0.0.1:9464"`

	// WebhooksTopic receives one record per accepted POST body.
	WebhooksTopic string `yaml:"webhooks_topic" env:"WAMETER_WEBHOOKS_TOPIC" envDefault:"whatsapp.webhooks"`
	// Partitions and ReplicationFactor apply when the gateway creates the
	// topic; an existing topic keeps its layout.
	Partitions        int `yaml:"partitions" env:"WAMETER_PARTITIONS" envDefault:"4"`
	ReplicationFactor int `yaml:"replication_factor" env:"WAMETER_REPLICATION_FACTOR" envDefault:"1"`

	// VerifyToken is the token entered in Meta's webhook settings, echoed
	// in the subscription handshake. Without it every handshake is denied
	// (an already subscribed endpoint keeps receiving events).
	VerifyToken     secret.String `yaml:"verify_token" env:"WHATSAPP_VERIFY_TOKEN"`
	VerifyTokenFile string        `yaml:"verify_token_file" env:"WHATSAPP_VERIFY_TOKEN_FILE"`
	// AppSecret signs every POST body (X-Hub-Signature-256). Required.
	AppSecret     secret.String `yaml:"app_secret" env:"WHATSAPP_APP_SECRET"`
	AppSecretFile string        `yaml:"app_secret_file" env:"WHATSAPP_APP_SECRET_FILE"`
}

// LoadConfig reads the configuration from environ (env.ToMap(os.Environ())
// in a main, a literal map in tests).
func LoadConfig(environ map[string]string) (Config, error) {
	c := Config{Kafka: stream.Config{Brokers: []string{"127.0.0.1:9092"}}}
	if err := env.ParseWithOptions(&c, env.Options{Environment: environ}); err != nil {
		return c, fmt.Errorf("parse environment: %w", err)
	}
	if err := c.Kafka.ParseEnv(environ); err != nil {
		return c, err
	}
	return c, nil
}

// Validate reports every problem at once (errors.Join). It checks that the
// secret files exist but does not read them: LoadSecrets does.
func (c *Config) Validate() error {
	errs := []error{c.Kafka.Validate()}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("WAMETER_GATEWAY_ADDR %q: want host:port", c.Addr))
	}
	if c.OpsAddr != "" {
		if _, _, err := net.SplitHostPort(c.OpsAddr); err != nil {
			errs = append(errs, fmt.Errorf("WAMETER_OPS_ADDR %q: want host:port", c.OpsAddr))
		}
	}
	if !strings.HasPrefix(c.Path, "/") {
		errs = append(errs, fmt.Errorf("WAMETER_GATEWAY_PATH %q: must start with /", c.Path))
	}
	if c.MaxBody <= 0 {
		errs = append(errs, fmt.Errorf("WAMETER_GATEWAY_MAX_BODY %d: must be positive", c.MaxBody))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("WAMETER_GATEWAY_WRITE_TIMEOUT %s: must be positive", c.WriteTimeout))
	}
	if c.ShutdownTimeout < c.WriteTimeout {
		errs = append(errs, fmt.Errorf("WAMETER_GATEWAY_SHUTDOWN_TIMEOUT %s: must be at least WAMETER_GATEWAY_WRITE_TIMEOUT (%s)", c.ShutdownTimeout, c.WriteTimeout))
	}
	if c.WebhooksTopic == "" {
		errs = append(errs, errors.New("WAMETER_WEBHOOKS_TOPIC: empty"))
	}
	if c.Partitions <= 0 || c.ReplicationFactor <= 0 {
		errs = append(errs, errors.New("WAMETER_PARTITIONS and WAMETER_REPLICATION_FACTOR must be positive"))
	}
	switch {
	case c.AppSecret == "" && c.AppSecretFile == "":
		errs = append(errs, errors.New("app secret: set WHATSAPP_APP_SECRET or WHATSAPP_APP_SECRET_FILE (the gateway cannot check signatures without it)"))
	case c.AppSecret != "" && c.AppSecretFile != "":
		errs = append(errs, errors.New("app secret: set WHATSAPP_APP_SECRET or WHATSAPP_APP_SECRET_FILE, not both"))
	case c.AppSecretFile != "":
		errs = append(errs, checkFile("WHATSAPP_APP_SECRET_FILE", c.AppSecretFile))
	}
	switch {
	case c.VerifyToken != "" && c.VerifyTokenFile != "":
		errs = append(errs, errors.New("verify token: set WHATSAPP_VERIFY_TOKEN or WHATSAPP_VERIFY_TOKEN_FILE, not both"))
	case c.VerifyTokenFile != "":
		errs = append(errs, checkFile("WHATSAPP_VERIFY_TOKEN_FILE", c.VerifyTokenFile))
	}
	return errors.Join(errs...)
}

func checkFile(what, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if st.IsDir() {
		return fmt.Errorf("%s %q: is a directory", what, path)
	}
	return nil
}

// Secrets are the values the handler checks requests with. They never
// print (pkg/secret).
type Secrets struct {
	AppSecret   secret.String
	VerifyToken secret.String // empty: every handshake is denied
}

// LoadSecrets returns the secrets from the environment values or the files
// that Config names. A trailing newline in a file (editors, `kubectl create
// secret --from-file`) is not part of the secret. An empty app secret is an
// error.
func (c *Config) LoadSecrets() (Secrets, error) {
	var s Secrets
	var err error
	if s.AppSecret, err = readSecret(c.AppSecret, c.AppSecretFile, "WHATSAPP_APP_SECRET_FILE"); err != nil {
		return s, err
	}
	if s.AppSecret == "" {
		return s, errors.New("app secret is empty: set WHATSAPP_APP_SECRET or WHATSAPP_APP_SECRET_FILE")
	}
	if s.VerifyToken, err = readSecret(c.VerifyToken, c.VerifyTokenFile, "WHATSAPP_VERIFY_TOKEN_FILE"); err != nil {
		return s, err
	}
	return s, nil
}

func readSecret(value secret.String, file, what string) (secret.String, error) {
	if file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	return secret.String(strings.TrimRight(string(b), "\r\n")), nil
}
