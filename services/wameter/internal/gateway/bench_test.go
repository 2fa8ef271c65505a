package gateway

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// discard is a Writer that keeps nothing: the benchmark measures the
// gateway's own work per request (body read, HMAC, record), not Kafka's.
type discard struct{}

func (discard) WriteMessages(context.Context, ...kafka.Message) error { return nil }

func BenchmarkReceive(b *testing.B) {
	body := bytes.Repeat([]byte(`{"object":"whatsapp_business_account","entry":[{"id":"102938475610","changes":[]}]}`), 40) // ~3.5 KB
	h, err := NewHandler(Config{WebhooksTopic: "bench", MaxBody: 1 << 20, WriteTimeout: time.Second},
		Secrets{AppSecret: testAppSecret}, discard{}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	signature := sign(testAppSecret, body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
		req.Header.Set(signatureHeader, signature)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
