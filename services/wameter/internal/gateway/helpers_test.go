package gateway

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/wameter/wameter/pkg/stream"
)

const (
	testAppSecret   = "app-secret-for-tests"
	testVerifyToken = "verify-token-for-tests"
)

// testGateway is a Handler writing to a topic of its own on a real broker,
// served over HTTP by httptest.
type testGateway struct {
	handler *Handler
	server  *httptest.Server
	reg     *prometheus.Registry
	kafka   stream.Config
	topic   string
}

var nonTopicChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// newTestGateway creates a one-partition topic on the broker at addr and a
// gateway writing to it with the given write timeout and body limit.
func newTestGateway(t *testing.T, addr string, writeTimeout time.Duration, maxBody int64) *testGateway {
	t.Helper()
	kcfg := stream.Config{Brokers: []string{addr}, ClientID: "gateway-test", DialTimeout: 2 * time.Second}
	topic := fmt.Sprintf("test.%s.%06d", strings.ToLower(nonTopicChars.ReplaceAllString(t.Name(), "_")), rand.N(1000000))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := stream.EnsureTopics(ctx, kcfg, []stream.TopicSpec{{Name: topic, Partitions: 1, ReplicationFactor: 1}}); err != nil {
		t.Fatal(err)
	}
	// Warnings and errors go to the test log; everything logging is closed
	// before the test ends (zaptest fails a test that logs after it).
	logger := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	reg := prometheus.NewRegistry()
	producer, err := stream.NewProducer(kcfg, stream.ProducerConfig{}, logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{WebhooksTopic: topic, MaxBody: maxBody, WriteTimeout: writeTimeout}
	h, err := NewHandler(cfg, Secrets{AppSecret: testAppSecret, VerifyToken: testVerifyToken}, producer, logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		if err := producer.Close(); err != nil {
			t.Error(err)
		}
	})
	return &testGateway{handler: h, server: srv, reg: reg, kafka: kcfg, topic: topic}
}

// sign returns the X-Hub-Signature-256 value of body under secret.
func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// post sends body to the gateway with the given signature header (none
// when empty) and returns the status and how long the answer took.
func (g *testGateway) post(t *testing.T, body []byte, signature string) (int, time.Duration) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.server.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set(signatureHeader, signature)
	}
	started := time.Now()
	resp, err := g.server.Client().Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode, time.Since(started)
}

// outcome returns wameter_gateway_requests_total{outcome=name}.
func (g *testGateway) outcome(name string) float64 {
	var m dto.Metric
	if err := g.handler.metrics.requests.WithLabelValues(name).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// records returns every record of the test topic, from its first offset to
// its high watermark at the time of the call.
func (g *testGateway) records(t *testing.T) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// A transport of its own: the shared default one caches metadata from
	// before the topic existed.
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(g.kafka.Brokers...), Timeout: 10 * time.Second, Transport: tr}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{g.topic: {kafka.LastOffsetOf(0)}}})
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	parts := resp.Topics[g.topic]
	if len(parts) != 1 || parts[0].Error != nil {
		t.Fatalf("list offsets of %s: %+v", g.topic, parts)
	}
	end := parts[0].LastOffset
	if end == 0 {
		return nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: g.kafka.Brokers, Topic: g.topic, Partition: 0,
		MaxWait: 100 * time.Millisecond, ReadLagInterval: -1})
	defer r.Close()
	var out []kafka.Message
	for next := int64(0); next < end; {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read %s at %d of %d: %v", g.topic, next, end, err)
		}
		out = append(out, m)
		next = m.Offset + 1
	}
	return out
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
