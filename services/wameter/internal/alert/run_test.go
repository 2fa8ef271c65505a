package alert

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"go.uber.org/zap/zaptest"

	"github.com/wameter/wameter/pkg/migration"
	"github.com/wameter/wameter/pkg/sink"
	"github.com/wameter/wameter/pkg/testenv"
	"github.com/wameter/wameter/schemas"
)

// Run evaluates on its interval at the clock's instants, notifies, and
// serves /metrics, /healthz and /readyz; it stops cleanly with its context.
func TestRun(t *testing.T) {
	addr := testenv.ClickHouse(t)
	db := testenv.Database(t, addr)
	if _, err := migration.Apply(t.Context(), testenv.ClickHouseOptions(addr, db), db, schemas.FS, zaptest.NewLogger(t)); err != nil {
		t.Fatal(err)
	}
	insertCharges(t, testenv.ClickHouseConn(t, addr, db), normalWeek())
	recv := newReceiver(t, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opsAddr := ln.Addr().String()
	ln.Close()

	cfg := Config{ClickHouse: sink.Config{Addr: addr, Database: db}, RulesFile: "rules.yaml",
		Interval: 20 * time.Millisecond, OpsAddr: opsAddr}
	clock := func() time.Time { return spikeDay.Add(10*time.Hour + 30*time.Minute) }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, rulesFor(t, recv.URL, "floor: 10"), nil, clock, zaptest.NewLogger(t)) }()

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + opsAddr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _ := get("/readyz")
		_, metrics := get("/metrics")
		if code == http.StatusOK && strings.Contains(metrics, "wameter_alert_firing 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready with one alert firing: /readyz %d\n%s", code, metrics)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz %d", code)
	}
	time.Sleep(100 * time.Millisecond) // a few more evaluations
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
	if got := recv.take(); len(got) != 1 || got[0].WABAID != "a" || got[0].State != StateFiring {
		t.Fatalf("notifications %+v, want one firing for a", got)
	}
}

func TestNotifierBodies(t *testing.T) {
	a := &Alert{ID: "x1", Key: Key{Rule: RuleSpike, WABAID: "102", Category: "MARKETING", Currency: "EUR"},
		State: StateFiring, Value: decimal.RequireFromString("60.5"), Baseline: decimal.NewFromInt(2),
		Threshold: decimal.NewFromInt(10), WindowStart: time.Date(2026, 3, 9, 9, 30, 0, 0, time.UTC),
		At: time.Date(2026, 3, 9, 10, 30, 0, 0, time.UTC), Message: "WABA 102 spend 60.50 EUR"}
	retries := 0
	f := func(format, want string) {
		t.Helper()
		b, err := NewNotifier(Notify{URL: "http://127.0.0.1:9/", Format: format, Retries: &retries}).body(a)
		if err != nil {
			t.Fatal(err)
		}
		var got, w any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(want), &w); err != nil {
			t.Fatal(err)
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(w)
		if string(gb) != string(wb) {
			t.Errorf("%s body\n got %s\nwant %s", format, gb, wb)
		}
	}
	f(FormatSlack, `{"text": "[FIRING] spike: WABA 102 spend 60.50 EUR"}`)
	f(FormatJSON, `{"alert_id": "x1", "rule": "spike", "waba_id": "102", "category": "MARKETING", "state": "firing",
		"value": "60.5", "baseline": "2", "threshold": "10", "currency": "EUR",
		"window_start": "2026-03-09T09:30:00Z", "at": "2026-03-09T10:30:00Z", "message": "WABA 102 spend 60.50 EUR"}`)
}
