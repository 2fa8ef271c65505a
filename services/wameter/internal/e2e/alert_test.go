package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"

	"github.com/wameter/wameter/pkg/traffic"
	"github.com/wameter/wameter/services/wameter/internal/alert"
	"github.com/wameter/wameter/services/wameter/internal/summary"
)

// Eight days of simulated traffic, with a marketing blast by one WABA for
// one hour on the last day, go through the whole pipeline into ClickHouse;
// the spend alert evaluated over what the pipeline wrote sends exactly one
// firing and, once the hour has left the window, one resolved notification
// to a local receiver.
func TestSpendSpikeAlertEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	s := newStack(t)
	s.env = append(s.env, "WAMETER_LATENESS=96h")

	cfg := traffic.DefaultConfig()
	cfg.Start = time.Date(2025, 8, 4, 0, 0, 0, 0, time.UTC)
	cfg.Duration = 8 * 24 * time.Hour
	cfg.Accounts = traffic.DefaultAccounts(1, 150)
	spikeAt := time.Date(2025, 8, 11, 14, 0, 0, 0, time.UTC)
	cfg.Spike = &traffic.Spike{WABA: cfg.Accounts[0].WABA, Start: spikeAt, Duration: time.Hour, Factor: 40}
	waba := strconv.FormatUint(cfg.Accounts[0].WABA, 10)

	s.start()
	w := &kafka.Writer{Addr: kafka.TCP(s.broker), Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	var batch []kafka.Message
	flush := func() {
		for len(batch) > 0 {
			err := w.WriteMessages(ctx, batch...)
			if err == nil {
				batch = batch[:0]
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("produce: %v", err)
			}
			time.Sleep(200 * time.Millisecond) // the pipeline creates the topics at start
		}
	}
	records := 0
	if err := traffic.Generate(cfg, func(r traffic.Record) error {
		// Record bytes are only valid during the callback.
		m := kafka.Message{Topic: topic(s.prefix, r.Topic), Key: bytes.Clone(r.Key), Value: bytes.Clone(r.Value)}
		for k, v := range r.Headers {
			m.Headers = append(m.Headers, kafka.Header{Key: k, Value: []byte(v)})
		}
		batch = append(batch, m)
		records++
		if len(batch) == 500 {
			flush()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	flush()
	n, err := summary.Settle(ctx, s.ch, 8*time.Second, 4*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	reasons, dead := s.deadLetters(ctx)
	t.Logf("%d records through the pipeline: %d charges, %d dead letters %v", records, n, dead, reasons)

	var mu sync.Mutex
	var got []map[string]string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]string
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("receiver: %v: %s", err, b)
		}
		mu.Lock()
		got = append(got, body)
		mu.Unlock()
	}))
	defer recv.Close()
	rules, err := alert.ParseRules([]byte(fmt.Sprintf(`window: 1h
baseline: same_hour_7d
factor: 3
floor: 0.5
notify: {url: %q, retries: 3, backoff: 10ms, timeout: 5s}
`, recv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := alert.NewEvaluator(s.ch, rules, zaptest.NewLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	take := func() []map[string]string {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}
	steps := []struct {
		now   time.Time
		state string // the one notification expected, "" for none
	}{
		{spikeAt, ""},                            // the hour before the blast: nothing
		{spikeAt.Add(time.Hour), "firing"},       // the blast hour is the window
		{spikeAt.Add(time.Hour), ""},             // still firing: no second notification
		{spikeAt.Add(2 * time.Hour), "resolved"}, // the blast left the window
		{spikeAt.Add(3 * time.Hour), ""},
	}
	for i, st := range steps {
		if err := ev.Evaluate(ctx, st.now); err != nil {
			t.Fatalf("step %d: evaluate at %s: %v", i, st.now, err)
		}
		notes := take()
		switch {
		case st.state == "" && len(notes) != 0:
			t.Errorf("step %d (%s): unexpected notifications %v", i, st.now.Format(time.RFC3339), notes)
		case st.state != "" && (len(notes) != 1 || notes[0]["state"] != st.state || notes[0]["waba_id"] != waba || notes[0]["rule"] != "spike"):
			t.Errorf("step %d (%s): notifications %v, want one %s spike of WABA %s", i, st.now.Format(time.RFC3339), notes, st.state, waba)
		}
	}
	if n := s.count(ctx, "SELECT count() FROM spend_alerts WHERE waba_id = '"+waba+"'"); n != 2 {
		t.Errorf("spend_alerts holds %d rows for the WABA, want a firing and a resolution", n)
	}
}
