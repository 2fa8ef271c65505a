package produce

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/stream"
	"github.com/wameter/wameter/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The records of a file reach their topics with key, headers and the exact
// bytes, including a malformed body carried as value_raw.
func TestWriteReachesTopics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := stream.Config{Brokers: []string{testenv.Broker(t)}}
	topics := Topics{"webhooks": "produce-test.webhooks", "sends": "produce-test.sends"}
	if _, err := stream.EnsureTopics(ctx, cfg, []stream.TopicSpec{
		{Name: topics["webhooks"], Partitions: 1, ReplicationFactor: 1},
		{Name: topics["sends"], Partitions: 1, ReplicationFactor: 1}}); err != nil {
		t.Fatal(err)
	}
	p, err := stream.NewProducer(cfg, stream.ProducerConfig{}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	in := `{"topic":"webhooks","key":"k1","headers":{"phone_number_id":"123"},"value":{"object":"whatsapp_business_account"}}
{"topic":"sends","value":{"message_id":"wamid.1"}}
{"topic":"webhooks","value_raw":"{\"entry\":["}
`
	n, err := Write(ctx, strings.NewReader(in), topics, p)
	if err != nil || n != 3 {
		t.Fatalf("wrote %d, %v; want 3", n, err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: topics["webhooks"], Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	m1, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m1.Key) != "k1" || string(m1.Value) != `{"object":"whatsapp_business_account"}` ||
		len(m1.Headers) != 1 || string(m1.Headers[0].Value) != "123" {
		t.Errorf("first record: key %q value %q headers %v", m1.Key, m1.Value, m1.Headers)
	}
	m2, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m2.Value) != `{"entry":[` {
		t.Errorf("malformed record: %q, want its raw bytes", m2.Value)
	}
	if _, err := Write(ctx, strings.NewReader(`{"topic":"nope","value":{}}`), topics, p); err == nil {
		t.Error("a line for an unknown topic was accepted")
	}
}
