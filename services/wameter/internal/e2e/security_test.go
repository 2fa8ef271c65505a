package e2e

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/wameter/wameter/pkg/testenv"
)

// TestPipelineOverSASLAndTLS runs the pipeline against a broker that
// requires SASL/SCRAM-SHA-512 over TLS and a ClickHouse server reached over
// TLS as a user with a password, with every secret read from a file, as a
// Kubernetes secret mount would give them. The tables must equal the
// reference derivation, and no secret may appear in the services' logs. A
// wrong ClickHouse password must fail clearly, without printing it.
func TestPipelineOverSASLAndTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	certs := testenv.NewCerts(t)
	dir := t.TempDir()
	kafkaPassword, chPassword := randomSecret(t), randomSecret(t)
	secretFile := func(name, value string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	kafkaPasswordFile, chPasswordFile := secretFile("kafka-password", kafkaPassword), secretFile("clickhouse-password", chPassword)

	broker := testenv.NewBroker(t, "-sasl-user", "wameter", "-sasl-mechanism", "SCRAM-SHA-512",
		"-sasl-password-file", kafkaPasswordFile, "-tls-cert-file", certs.CertFile, "-tls-key-file", certs.KeyFile)
	ch := testenv.NewSecureClickHouse(t, certs, "wameter_app", chPassword)

	// The test itself reads the tables through the server's plain port.
	s := newStackOn(t, broker.Addr, ch.Addr)
	pem, err := os.ReadFile(certs.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	mech, err := scram.Mechanism(scram.SHA512, "wameter", kafkaPassword)
	if err != nil {
		t.Fatal(err)
	}
	s.transport = &kafka.Transport{SASL: mech, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	s.env = slices.DeleteFunc(s.env, func(kv string) bool { return strings.HasPrefix(kv, "CLICKHOUSE_ADDR=") })
	s.env = append(s.env,
		"CLICKHOUSE_ADDR="+ch.SecureAddr,
		"CLICKHOUSE_USER=wameter_app",
		"CLICKHOUSE_TLS=true",
		"CLICKHOUSE_TLS_CA_FILE="+certs.CAFile,
		"KAFKA_SASL_MECHANISM=scram-sha-512",
		"KAFKA_SASL_USERNAME=wameter",
		"KAFKA_SASL_PASSWORD_FILE="+kafkaPasswordFile,
		"KAFKA_TLS_ENABLE=true",
		"KAFKA_TLS_CA_FILE="+certs.CAFile,
	)

	// A wrong ClickHouse password: the schema step fails and says why.
	bin := testenv.BuildBinary(t, "./services/wameter")
	wrong := testenv.StartProcess(t, bin, []string{"migrate"},
		append(slices.Clone(s.env), "CLICKHOUSE_PASSWORD_FILE="+secretFile("wrong-password", "not-"+chPassword)))
	select {
	case <-wrong.Exited():
	case <-time.After(2 * time.Minute):
		t.Fatal("wameter migrate with a wrong password did not exit")
	}
	if err := wrong.Wait(); err == nil {
		t.Errorf("wameter migrate with a wrong ClickHouse password exited 0:\n%s", wrong.LogTail(4<<10))
	}
	if log := wrong.Log(); !strings.Contains(log, "refused user") || !strings.Contains(log, "CLICKHOUSE_PASSWORD") || strings.Contains(log, chPassword) {
		t.Errorf("wrong password: the log should say which credentials were refused and never print them:\n%s", wrong.LogTail(4<<10))
	}
	// The broker really requires SASL: TLS alone gets no metadata.
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	if conn, err := (&kafka.Dialer{TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}).DialContext(dctx, "tcp", broker.Addr); err == nil {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.ReadPartitions(); err == nil {
			t.Error("the broker answered a client that did not authenticate")
		}
		conn.Close()
	}

	s.env = append(s.env, "CLICKHOUSE_PASSWORD_FILE="+chPasswordFile)
	proc := s.start()
	c := buildCorpus()
	want, _ := expected(t, c.records)
	cbp, pmp := splitEras(c.records)
	firstEra, _ := expected(t, cbp)
	s.produce(ctx, cbp, 1)
	waitFor(t, "the CBP era's charges in ClickHouse", 3*time.Minute, func() bool {
		return s.count(ctx, "SELECT count() FROM charges") >= uint64(len(firstEra.Charges))
	})
	s.produce(ctx, pmp, 1)
	waitFor(t, "all charges in ClickHouse", 3*time.Minute, func() bool {
		return s.count(ctx, "SELECT count() FROM charges") >= uint64(len(want.Charges))
	})
	time.Sleep(2 * time.Second)
	s.checkTables(ctx, want)
	for _, p := range []*testenv.Proc{proc, broker.Proc()} {
		if log := p.Log(); strings.Contains(log, kafkaPassword) || strings.Contains(log, chPassword) {
			t.Errorf("a secret appears in the log %s", p.LogPath())
		}
	}
}

func randomSecret(t *testing.T) string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "s3cr3t-" + hex.EncodeToString(b[:])
}
