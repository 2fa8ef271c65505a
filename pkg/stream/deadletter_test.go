package stream

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"github.com/wameter/wameter/pkg/testenv"
)

func TestDeadLetterMessage(t *testing.T) {
	src := kafka.Message{
		Topic: "whatsapp.webhooks", Partition: 3, Offset: 1234567,
		Key: []byte("wa-123"), Value: []byte(`{"broken":`),
		Headers: []kafka.Header{{Key: "trace_id", Value: []byte("abc")}},
	}
	m, err := deadLetterMessage("whatsapp.dlq", "normalize", Letter{Source: src, Reason: "decode", Err: errors.New("unexpected end of JSON input")})
	if err != nil {
		t.Fatal(err)
	}
	if m.Topic != "whatsapp.dlq" || string(m.Key) != "wa-123" || string(m.Value) != `{"broken":` {
		t.Errorf("dead letter topic/key/value = %q/%q/%q", m.Topic, m.Key, m.Value)
	}
	want := []kafka.Header{
		{Key: "dlq_reason", Value: []byte("decode")},
		{Key: "dlq_error", Value: []byte("unexpected end of JSON input")},
		{Key: "dlq_source_topic", Value: []byte("whatsapp.webhooks")},
		{Key: "dlq_source_partition", Value: []byte("3")},
		{Key: "dlq_source_offset", Value: []byte("1234567")},
		{Key: "dlq_stage", Value: []byte("normalize")},
		{Key: "trace_id", Value: []byte("abc")},
	}
	if len(m.Headers) != len(want) {
		t.Fatalf("headers %v, want %v", m.Headers, want)
	}
	for i := range want {
		if m.Headers[i].Key != want[i].Key || string(m.Headers[i].Value) != string(want[i].Value) {
			t.Errorf("header %d = %s=%q, want %s=%q", i, m.Headers[i].Key, m.Headers[i].Value, want[i].Key, want[i].Value)
		}
	}
}

func TestDeadLetterMessageLimits(t *testing.T) {
	if _, err := deadLetterMessage("dlq", "window", Letter{Reason: "Late Event"}); err == nil {
		t.Error("reason with spaces and capitals accepted")
	}
	if _, err := deadLetterMessage("dlq", "window", Letter{Reason: ""}); err == nil {
		t.Error("empty reason accepted")
	}
	long := errors.New(strings.Repeat("é", maxDLQErrorBytes))
	m, err := deadLetterMessage("dlq", "window", Letter{Reason: "late", Err: long})
	if err != nil {
		t.Fatal(err)
	}
	human := string(m.Headers[1].Value)
	if len(human) > maxDLQErrorBytes || !strings.HasPrefix(long.Error(), human) {
		t.Errorf("dlq_error of %d bytes, want a valid prefix of at most %d", len(human), maxDLQErrorBytes)
	}
}

func TestDeadLettersWriteOriginalWithHeaders(t *testing.T) {
	cfg := testConfig(testenv.Broker(t))
	dlq := testTopic(t, "dlq")
	ensureTopic(t, cfg, dlq, 1)
	p := newTestProducer(t, cfg, ProducerConfig{})
	reg := prometheus.NewRegistry()
	d, err := NewDeadLetters(p, DeadLetterConfig{Topic: dlq, Stage: "normalize"}, reg)
	if err != nil {
		t.Fatal(err)
	}
	src := kafka.Message{
		Topic: "whatsapp.webhooks", Partition: 5, Offset: 42,
		Key: []byte("wa-9"), Value: []byte{0xff, 0x00, '{'},
		Headers: []kafka.Header{{Key: "content-type", Value: []byte("application/json")}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = d.Send(ctx,
		Letter{Source: src, Reason: "decode", Err: errors.New("invalid character 'ÿ'")},
		Letter{Source: kafka.Message{Topic: "events", Offset: 7, Value: []byte("x")}, Reason: "no_key"},
	)
	if err != nil {
		t.Fatal(err)
	}

	got := readPartition(t, cfg, dlq, 0)
	if len(got) != 2 {
		t.Fatalf("%d dead letters in %s, want 2", len(got), dlq)
	}
	m := got[0]
	if string(m.Key) != "wa-9" || !bytes.Equal(m.Value, src.Value) {
		t.Errorf("dead letter key %q value %x, want the original wa-9 %x", m.Key, m.Value, src.Value)
	}
	headers := map[string]string{}
	for _, h := range m.Headers {
		headers[h.Key] = string(h.Value)
	}
	want := map[string]string{
		"dlq_reason": "decode", "dlq_error": "invalid character 'ÿ'",
		"dlq_source_topic": "whatsapp.webhooks", "dlq_source_partition": "5", "dlq_source_offset": "42",
		"dlq_stage": "normalize", "content-type": "application/json",
	}
	for k, v := range want {
		if headers[k] != v {
			t.Errorf("header %s = %q, want %q", k, headers[k], v)
		}
	}
	if n := counterValue(t, d.counter.WithLabelValues("normalize", "decode")); n != 1 {
		t.Errorf("dead_letters_total{normalize,decode} = %v, want 1", n)
	}
	if n := counterValue(t, d.counter.WithLabelValues("normalize", "no_key")); n != 1 {
		t.Errorf("dead_letters_total{normalize,no_key} = %v, want 1", n)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
