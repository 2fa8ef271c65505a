package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/wameter/wameter/pkg/stream"
	"github.com/wameter/wameter/pkg/testenv"
)

// Without an app secret the gateway does not start.
func TestRunRefusesToStartWithoutAppSecret(t *testing.T) {
	cfg, err := LoadConfig(map[string]string{"WAMETER_GATEWAY_ADDR": freeAddr(t), "WAMETER_OPS_ADDR": ""})
	if err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), cfg, zap.NewNop(), prometheus.NewRegistry())
	if err == nil || !strings.Contains(err.Error(), "WHATSAPP_APP_SECRET") {
		t.Fatalf("Run without an app secret: %v", err)
	}
}

// The whole command: the topic is created, the ops server answers, a signed
// body is accepted, and on shutdown a request in flight still completes
// (and is written) while /readyz says 503 and new connections are refused.
func TestRunServesAndDrainsOnShutdown(t *testing.T) {
	addr, opsAddr := freeAddr(t), freeAddr(t)
	topic := fmt.Sprintf("test.gateway-run.%06d", rand.N(1000000))
	cfg, err := LoadConfig(map[string]string{
		"KAFKA_BROKERS":          testenv.Broker(t),
		"WAMETER_GATEWAY_ADDR":   addr,
		"WAMETER_OPS_ADDR":       opsAddr,
		"WAMETER_WEBHOOKS_TOPIC": topic,
		"WAMETER_PARTITIONS":     "1",
		"WHATSAPP_APP_SECRET":    testAppSecret,
		"WHATSAPP_VERIFY_TOKEN":  testVerifyToken,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), prometheus.NewRegistry())
	}()

	client := &http.Client{Timeout: 15 * time.Second}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if status, _ := get("http://" + opsAddr + "/readyz"); status == http.StatusOK {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned before ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready after 15s")
		}
	}
	if status, body := get("http://" + addr + "/webhook?hub.mode=subscribe&hub.verify_token=" + testVerifyToken + "&hub.challenge=42"); status != http.StatusOK || body != "42" {
		t.Errorf("handshake: %d %q", status, body)
	}
	post := func(body io.Reader, signature string) (int, error) {
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/webhook", body)
		if err != nil {
			return 0, err
		}
		req.Header.Set(signatureHeader, signature)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	first := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"first"}]}`)
	if status, err := post(bytes.NewReader(first), sign(testAppSecret, first)); status != http.StatusOK {
		t.Fatalf("POST: %d %v", status, err)
	}
	if status, body := get("http://" + opsAddr + "/metrics"); status != http.StatusOK ||
		!strings.Contains(body, `wameter_gateway_requests_total{outcome="accepted"} 1`) ||
		!strings.Contains(body, `wameter_gateway_requests_total{outcome="verify_ok"} 1`) ||
		!strings.Contains(body, `wameter_gateway_write_seconds_count{result="ok"} 1`) {
		t.Errorf("metrics: %d\n%s", status, body)
	}

	// A request whose body is still arriving when the signal comes.
	second := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"second"}]}`)
	pr, pw := io.Pipe()
	inFlight := make(chan int, 1)
	go func() {
		status, err := post(pr, sign(testAppSecret, second))
		if err != nil {
			t.Errorf("in-flight POST: %v", err)
		}
		inFlight <- status
	}()
	if _, err := pw.Write(second[:10]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the server reads the headers
	stop()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if status, _ := get("http://" + opsAddr + "/readyz"); status == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz not 503 during shutdown")
		}
	}
	// /readyz turns 503 just before the listener closes: new connections
	// are refused soon after.
	fresh := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := fresh.Get("http://" + addr + "/webhook")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("new connections still accepted 5s into the shutdown")
		}
	}
	if _, err := pw.Write(second[10:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if status := <-inFlight; status != http.StatusOK {
		t.Errorf("in-flight POST: status %d, want 200", status)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after shutdown")
	}

	g := &testGateway{kafka: stream.Config{Brokers: cfg.Kafka.Brokers}, topic: topic}
	got := g.records(t)
	if len(got) != 2 || !bytes.Equal(got[0].Value, first) || !bytes.Equal(got[1].Value, second) {
		t.Errorf("topic holds %d records, want the two bodies", len(got))
	}
}

// /readyz follows Kafka: 503 once a write failed, and ready again when the
// broker is back, without waiting for a request to succeed (a gateway out of
// rotation gets none).
func TestRunReadinessFollowsKafka(t *testing.T) {
	broker := testenv.NewBroker(t)
	addr, opsAddr := freeAddr(t), freeAddr(t)
	cfg, err := LoadConfig(map[string]string{
		"KAFKA_BROKERS":                 broker.Addr,
		"KAFKA_DIAL_TIMEOUT":            "1s",
		"WAMETER_GATEWAY_ADDR":          addr,
		"WAMETER_OPS_ADDR":              opsAddr,
		"WAMETER_GATEWAY_WRITE_TIMEOUT": "1s",
		"WAMETER_PARTITIONS":            "1",
		"WHATSAPP_APP_SECRET":           testAppSecret,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)), prometheus.NewRegistry())
	}()
	ready := func() bool {
		resp, err := http.Get("http://" + opsAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	waitReady := func(want bool, within time.Duration) {
		t.Helper()
		for deadline := time.Now().Add(within); ready() != want; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("/readyz ready=%t not reached within %s", want, within)
			}
		}
	}
	waitReady(true, 15*time.Second)

	broker.Kill()
	body := []byte(`{"object":"whatsapp_business_account","entry":[]}`)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/webhook", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(signatureHeader, sign(testAppSecret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("broker down: status %d, want 503", resp.StatusCode)
	}
	if ready() {
		t.Error("ready after a failed write")
	}
	// Still down: the probe must not declare it ready.
	time.Sleep(probeInterval + 500*time.Millisecond)
	if ready() {
		t.Error("ready while the broker is down")
	}

	broker.Restart()
	waitReady(true, 3*probeInterval)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
