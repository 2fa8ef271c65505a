package stream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/wameter/wameter/pkg/secret"
	"net"
	"os"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"go.uber.org/zap/zapcore"
)

// SASL mechanisms accepted in SASLConfig.Mechanism.
const (
	SASLNone        = "none"
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// Secret is a string that never prints (see pkg/secret).
type Secret = secret.String

// Config is how every wameter component reaches Kafka: brokers, client id,
// SASL and TLS. Build it from YAML or from the environment (ParseEnv), call
// Validate, then hand it to EnsureTopics, NewProducer or NewConsumer.
type Config struct {
	// Brokers are the bootstrap addresses, host:port. From KAFKA_BROKERS as
	// a comma-separated list.
	Brokers []string `yaml:"brokers" env:"KAFKA_BROKERS" envSeparator:","`
	// ClientID is sent to the brokers (quotas, broker logs).
	ClientID string `yaml:"client_id" env:"KAFKA_CLIENT_ID"`
	// DialTimeout bounds connecting (TCP, TLS and SASL) to one broker.
	DialTimeout time.Duration `yaml:"dial_timeout" env:"KAFKA_DIAL_TIMEOUT"`

	SASL SASLConfig `yaml:"sasl"`
	TLS  TLSConfig  `yaml:"tls"`
}

// SASLConfig selects SASL authentication. The password comes either from
// Password or from the file named by PasswordFile (a mounted secret), never
// both.
type SASLConfig struct {
	// Mechanism is one of none, plain, scram-sha-256, scram-sha-512.
	Mechanism    string `yaml:"mechanism" env:"KAFKA_SASL_MECHANISM"`
	Username     string `yaml:"username" env:"KAFKA_SASL_USERNAME"`
	Password     Secret `yaml:"password" env:"KAFKA_SASL_PASSWORD"`
	PasswordFile string `yaml:"password_file" env:"KAFKA_SASL_PASSWORD_FILE"`
}

// TLSConfig enables TLS to the brokers. CAFile adds a CA to verify the
// brokers with (the system pool otherwise); CertFile and KeyFile, set
// together, give a client certificate.
type TLSConfig struct {
	Enable             bool   `yaml:"enable" env:"KAFKA_TLS_ENABLE"`
	CAFile             string `yaml:"ca_file" env:"KAFKA_TLS_CA_FILE"`
	CertFile           string `yaml:"cert_file" env:"KAFKA_TLS_CERT_FILE"`
	KeyFile            string `yaml:"key_file" env:"KAFKA_TLS_KEY_FILE"`
	ServerName         string `yaml:"server_name" env:"KAFKA_TLS_SERVER_NAME"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" env:"KAFKA_TLS_INSECURE_SKIP_VERIFY"`
}

const (
	defaultClientID    = "wameter"
	defaultDialTimeout = 10 * time.Second
)

// ParseEnv fills c from the given environment (KAFKA_* variables, see the
// field tags); variables that are not set leave the field as it is, so YAML
// can be loaded first and the environment override it. Pass
// env.ToMap(os.Environ()) in a main, a literal map in tests.
func (c *Config) ParseEnv(environ map[string]string) error {
	if err := env.ParseWithOptions(c, env.Options{Environment: environ}); err != nil {
		return fmt.Errorf("parse kafka environment: %w", err)
	}
	return nil
}

func (c *Config) withDefaults() Config {
	out := *c
	if out.ClientID == "" {
		out.ClientID = defaultClientID
	}
	if out.DialTimeout == 0 {
		out.DialTimeout = defaultDialTimeout
	}
	if out.SASL.Mechanism == "" {
		out.SASL.Mechanism = SASLNone
	}
	return out
}

// Validate reports every problem of c at once (errors.Join). It reads no
// secret but checks that the files it names exist.
func (c *Config) Validate() error {
	cfg := c.withDefaults()
	var errs []error
	if len(cfg.Brokers) == 0 {
		errs = append(errs, errors.New("kafka brokers: none given (KAFKA_BROKERS)"))
	}
	for _, b := range cfg.Brokers {
		host, port, err := net.SplitHostPort(strings.TrimSpace(b))
		if err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("kafka broker %q: want host:port", b))
		}
	}
	if cfg.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("kafka dial_timeout %s: must not be negative", cfg.DialTimeout))
	}

	switch cfg.SASL.Mechanism {
	case SASLNone:
		if cfg.SASL.Username != "" || cfg.SASL.Password != "" || cfg.SASL.PasswordFile != "" {
			errs = append(errs, errors.New("kafka sasl: username or password set but mechanism is none"))
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if cfg.SASL.Username == "" {
			errs = append(errs, fmt.Errorf("kafka sasl %s: username is empty", cfg.SASL.Mechanism))
		}
		switch {
		case cfg.SASL.Password != "" && cfg.SASL.PasswordFile != "":
			errs = append(errs, errors.New("kafka sasl: set password or password_file, not both"))
		case cfg.SASL.Password == "" && cfg.SASL.PasswordFile == "":
			errs = append(errs, fmt.Errorf("kafka sasl %s: no password or password_file", cfg.SASL.Mechanism))
		case cfg.SASL.PasswordFile != "":
			errs = append(errs, checkFile("kafka sasl password_file", cfg.SASL.PasswordFile))
		}
	default:
		errs = append(errs, fmt.Errorf("kafka sasl mechanism %q: want one of none, plain, scram-sha-256, scram-sha-512", cfg.SASL.Mechanism))
	}

	t := cfg.TLS
	if !t.Enable && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.InsecureSkipVerify) {
		errs = append(errs, errors.New("kafka tls: options set but tls.enable is false"))
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, errors.New("kafka tls: cert_file and key_file go together"))
	}
	if t.CAFile != "" {
		errs = append(errs, checkFile("kafka tls ca_file", t.CAFile))
	}
	if t.CertFile != "" {
		errs = append(errs, checkFile("kafka tls cert_file", t.CertFile))
	}
	if t.KeyFile != "" {
		errs = append(errs, checkFile("kafka tls key_file", t.KeyFile))
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

// String describes c for logs with the password redacted.
func (c Config) String() string {
	cfg := c.withDefaults()
	var b strings.Builder
	fmt.Fprintf(&b, "brokers=%s client_id=%s sasl=%s", strings.Join(cfg.Brokers, ","), cfg.ClientID, cfg.SASL.Mechanism)
	if cfg.SASL.Mechanism != SASLNone {
		fmt.Fprintf(&b, " sasl_user=%s", cfg.SASL.Username)
		if cfg.SASL.PasswordFile != "" {
			fmt.Fprintf(&b, " sasl_password_file=%s", cfg.SASL.PasswordFile)
		} else {
			fmt.Fprintf(&b, " sasl_password=%s", cfg.SASL.Password)
		}
	}
	fmt.Fprintf(&b, " tls=%t", cfg.TLS.Enable)
	if cfg.TLS.Enable {
		fmt.Fprintf(&b, " tls_ca=%s tls_cert=%s tls_insecure=%t", cfg.TLS.CAFile, cfg.TLS.CertFile, cfg.TLS.InsecureSkipVerify)
	}
	return b.String()
}

// MarshalLogObject lets zap.Object/zap.Any log c without the password.
func (c Config) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	cfg := c.withDefaults()
	enc.AddString("brokers", strings.Join(cfg.Brokers, ","))
	enc.AddString("client_id", cfg.ClientID)
	enc.AddString("sasl_mechanism", cfg.SASL.Mechanism)
	if cfg.SASL.Mechanism != SASLNone {
		enc.AddString("sasl_username", cfg.SASL.Username)
	}
	enc.AddBool("tls", cfg.TLS.Enable)
	return nil
}

// password returns the SASL password, reading PasswordFile when set. A
// trailing newline (as left by editors and `kubectl create secret
// --from-file`) is not part of the password.
func (s SASLConfig) password() (string, error) {
	if s.PasswordFile == "" {
		return string(s.Password), nil
	}
	b, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("read kafka sasl password file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func (c *Config) saslMechanism() (sasl.Mechanism, error) {
	cfg := c.withDefaults()
	if cfg.SASL.Mechanism == SASLNone {
		return nil, nil
	}
	pass, err := cfg.SASL.password()
	if err != nil {
		return nil, err
	}
	switch cfg.SASL.Mechanism {
	case SASLPlain:
		return plain.Mechanism{Username: cfg.SASL.Username, Password: pass}, nil
	case SASLScramSHA256:
		m, err := scram.Mechanism(scram.SHA256, cfg.SASL.Username, pass)
		if err != nil {
			return nil, fmt.Errorf("kafka sasl scram-sha-256: %w", err)
		}
		return m, nil
	case SASLScramSHA512:
		m, err := scram.Mechanism(scram.SHA512, cfg.SASL.Username, pass)
		if err != nil {
			return nil, fmt.Errorf("kafka sasl scram-sha-512: %w", err)
		}
		return m, nil
	default:
		return nil, fmt.Errorf("kafka sasl mechanism %q: unknown", cfg.SASL.Mechanism)
	}
}

func (c *Config) tlsConfig() (*tls.Config, error) {
	t := c.TLS
	if !t.Enable {
		return nil, nil
	}
	out := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in for test clusters
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read kafka tls ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka tls ca file %q: no PEM certificate", t.CAFile)
		}
		out.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load kafka tls client certificate: %w", err)
		}
		out.Certificates = []tls.Certificate{cert}
	}
	return out, nil
}

// Dialer returns a kafka-go Dialer with the client id, SASL and TLS of c,
// for the Conn-based APIs (ConsumerGroup, Reader, Conn). It reads the
// password and certificate files, so call it once per component.
func (c *Config) Dialer() (*kafka.Dialer, error) {
	cfg := c.withDefaults()
	mech, err := cfg.saslMechanism()
	if err != nil {
		return nil, err
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	return &kafka.Dialer{
		ClientID:      cfg.ClientID,
		Timeout:       cfg.DialTimeout,
		DualStack:     true,
		KeepAlive:     30 * time.Second,
		SASLMechanism: mech,
		TLS:           tlsCfg,
	}, nil
}

// Transport returns a kafka-go Transport with the client id, SASL and TLS of
// c, for the request-based APIs (Writer, Client). Share one Transport per
// component: it pools connections and caches metadata.
func (c *Config) Transport() (*kafka.Transport, error) {
	cfg := c.withDefaults()
	mech, err := cfg.saslMechanism()
	if err != nil {
		return nil, err
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	return &kafka.Transport{
		ClientID:    cfg.ClientID,
		DialTimeout: cfg.DialTimeout,
		IdleTimeout: 30 * time.Second,
		MetadataTTL: 5 * time.Second,
		SASL:        mech,
		TLS:         tlsCfg,
	}, nil
}

// brokerAddrs returns the trimmed bootstrap addresses.
func (c *Config) brokerAddrs() []string {
	out := make([]string, 0, len(c.Brokers))
	for _, b := range c.Brokers {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}
