package testenv_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/shopspring/decimal"

	"github.com/wameter/wameter/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestClickHouseTypes checks what the pipeline relies on against the real
// server: DDL, a batch INSERT with named columns (some left to their
// DEFAULT), and reading Decimal(18,6), DateTime, String and UInt64 back.
func TestClickHouseTypes(t *testing.T) {
	addr := testenv.ClickHouse(t)
	db := testenv.Database(t, addr)
	conn := testenv.ClickHouseConn(t, addr, db)
	ctx := t.Context()

	err := conn.Exec(ctx, `CREATE TABLE charges (
		charge_id String,
		amount Decimal(18, 6),
		charged_at DateTime('UTC'),
		units UInt64,
		inserted_at DateTime DEFAULT now()
	) ENGINE = MergeTree() PARTITION BY toYYYYMM(charged_at) ORDER BY (charged_at, charge_id)`)
	if err != nil {
		t.Fatalf("create table: %v", err)
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO charges (charge_id, amount, charged_at, units)")
	if err != nil {
		t.Fatalf("prepare batch: %v", err)
	}
	chargedAt := time.Date(2026, 3, 31, 23, 59, 59, 0, time.UTC)
	amounts := []string{"0.0125", "0.000001", "123456789012.123456"}
	for i, a := range amounts {
		if err := batch.Append(fmt.Sprintf("c%d", i), decimal.RequireFromString(a), chargedAt, uint64(i)); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send: %v", err)
	}

	rows, err := conn.Query(ctx, "SELECT charge_id, amount, charged_at, units FROM charges ORDER BY charge_id")
	if err != nil {
		t.Fatalf("select: %v", err)
	}
	defer rows.Close()
	var got int
	for rows.Next() {
		var (
			id     string
			amount decimal.Decimal
			at     time.Time
			units  uint64
		)
		if err := rows.Scan(&id, &amount, &at, &units); err != nil {
			t.Fatalf("scan: %v", err)
		}
		if want := decimal.RequireFromString(amounts[got]); !amount.Equal(want) {
			t.Errorf("%s: amount %s, want %s", id, amount, want)
		}
		if !at.Equal(chargedAt) || units != uint64(got) {
			t.Errorf("%s: at %s units %d, want %s %d", id, at, units, chargedAt, got)
		}
		got++
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("rows: %v", err)
	}
	if got != len(amounts) {
		t.Fatalf("read %d rows, want %d", got, len(amounts))
	}

	// A Decimal(18,6) sum is Decimal(38,6) on 18.16; it scans all the same.
	var sum decimal.Decimal
	if err := conn.QueryRow(ctx, "SELECT sum(amount) FROM charges").Scan(&sum); err != nil {
		t.Fatalf("sum: %v", err)
	}
	if want := decimal.RequireFromString("123456789012.135957"); !sum.Equal(want) {
		t.Errorf("sum %s, want %s", sum, want)
	}
}

func TestDatabaseIsFresh(t *testing.T) {
	addr := testenv.ClickHouse(t)
	a, b := testenv.Database(t, addr), testenv.Database(t, addr)
	if a == b {
		t.Fatalf("two calls returned the same database %q", a)
	}
	conn := testenv.ClickHouseConn(t, addr, a)
	var tables uint64
	if err := conn.QueryRow(t.Context(), "SELECT count() FROM system.tables WHERE database = ?", a).Scan(&tables); err != nil {
		t.Fatalf("count tables: %v", err)
	}
	if tables != 0 {
		t.Errorf("fresh database %s has %d tables", a, tables)
	}
}

func createTopic(t *testing.T, addr, topic string, partitions int) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}
	resp, err := client.CreateTopics(t.Context(), &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}},
	})
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

func produce(t *testing.T, addr, topic string, from, to int) {
	t.Helper()
	w := &kafka.Writer{
		Addr:         kafka.TCP(addr),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 10 * time.Millisecond,
	}
	defer w.Close()
	var msgs []kafka.Message
	for i := from; i < to; i++ {
		msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	if err := w.WriteMessages(t.Context(), msgs...); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// consume reads n messages as member of group, committing each, and returns
// their values.
func consume(t *testing.T, addr, topic, group string, n int) map[string]bool {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        []string{addr},
		GroupID:        group,
		Topic:          topic,
		StartOffset:    kafka.FirstOffset,
		MaxWait:        100 * time.Millisecond,
		CommitInterval: 0, // synchronous commits
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	got := make(map[string]bool)
	for len(got) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("consume %s after %d of %d messages: %v", topic, len(got), n, err)
		}
		got[string(m.Value)] = true
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	return got
}

func TestBrokerProduceConsume(t *testing.T) {
	addr := testenv.Broker(t)
	topic := "testenv-" + strings.ToLower(t.Name())
	createTopic(t, addr, topic, 4)
	produce(t, addr, topic, 0, 100)
	got := consume(t, addr, topic, "g-"+topic, 100)
	for i := range 100 {
		if !got[fmt.Sprintf("v%d", i)] {
			t.Errorf("message v%d not consumed", i)
		}
	}
}

// TestBrokerSurvivesKill checks what a crash test relies on: after SIGKILL
// and a restart on the same address, topics, records and committed group
// offsets are all still there.
func TestBrokerSurvivesKill(t *testing.T) {
	b := testenv.NewBroker(t)
	const topic, group = "crash", "crash-group"
	createTopic(t, b.Addr, topic, 4)
	produce(t, b.Addr, topic, 0, 50)
	consume(t, b.Addr, topic, group, 50)

	b.Kill()
	b.Restart()

	produce(t, b.Addr, topic, 50, 60)
	// The group resumes after its committed offsets: only the new ten.
	got := consume(t, b.Addr, topic, group, 10)
	for i := 50; i < 60; i++ {
		if !got[fmt.Sprintf("v%d", i)] {
			t.Errorf("message v%d not consumed after restart (got %v)", i, got)
		}
	}
	// And a new group sees all sixty records, the pre-crash ones included.
	if got := consume(t, b.Addr, topic, "fresh-group", 60); len(got) != 60 {
		t.Errorf("fresh group read %d distinct records, want 60", len(got))
	}
}

func TestBrokerAutoCreateSurvivesKill(t *testing.T) {
	b := testenv.NewBroker(t, "-auto-create-topics", "-partitions=2")
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr), Topic: "auto", AllowAutoTopicCreation: true, RequiredAcks: kafka.RequireAll, BatchTimeout: 10 * time.Millisecond}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		err := w.WriteMessages(ctx, kafka.Message{Value: []byte("v0")})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("produce to auto-created topic: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // first metadata answer may race the creation
	}
	w.Close()
	b.Kill()
	b.Restart()
	if got := consume(t, b.Addr, "auto", "g", 1); !got["v0"] {
		t.Errorf("record of auto-created topic lost across kill: got %v", got)
	}
}

func TestStartProcess(t *testing.T) {
	p := testenv.StartProcess(t, "/bin/sh", []string{"-c", `trap 'echo bye; exit 0' TERM; echo "started $GREETING"; while :; do sleep 0.05; done`}, []string{"GREETING=hello"})
	waitLog(t, p, "started hello")
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if !strings.Contains(p.Log(), "bye") {
		t.Errorf("SIGTERM did not reach the trap: log %q", p.Log())
	}

	k := testenv.StartProcess(t, "/bin/sh", []string{"-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"}, nil)
	waitLog(t, k, "ready")
	k.Signal(syscall.SIGTERM) // ignored
	select {
	case <-k.Exited():
		t.Fatal("process exited on an ignored SIGTERM")
	case <-time.After(200 * time.Millisecond):
	}
	if err := k.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	if err := k.Wait(); err == nil {
		t.Error("killed process reports a clean exit")
	}
}

func TestBuildBinaryIsCached(t *testing.T) {
	a := testenv.BuildBinary(t, "./services/broker")
	start := time.Now()
	b := testenv.BuildBinary(t, "./services/broker")
	if a != b {
		t.Errorf("second build returned %s, first %s", b, a)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cached build took %s", d)
	}
}

func waitLog(t *testing.T, p *testenv.Proc, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.Log(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("log %q lacks %q", p.Log(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
