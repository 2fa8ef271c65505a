package alert

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/shopspring/decimal"
	"go.uber.org/zap/zaptest"

	"github.com/wameter/wameter/pkg/migration"
	"github.com/wameter/wameter/pkg/testenv"
	"github.com/wameter/wameter/schemas"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// database returns a connection to a fresh database with schemas/ applied.
func database(t *testing.T) clickhouse.Conn {
	t.Helper()
	addr := testenv.ClickHouse(t)
	db := testenv.Database(t, addr)
	if _, err := migration.Apply(t.Context(), testenv.ClickHouseOptions(addr, db), db, schemas.FS, zaptest.NewLogger(t)); err != nil {
		t.Fatal(err)
	}
	return testenv.ClickHouseConn(t, addr, db)
}

type charge struct {
	waba, category string
	at             time.Time
	amount         string
}

// insertCharges inserts into charges, then their rollup rows into
// spend_hourly, as the sink does in production: one insert id per call.
func insertCharges(t *testing.T, conn clickhouse.Conn, charges []charge) {
	t.Helper()
	insertID := rand.Uint64() | 1
	batch, err := conn.PrepareBatch(t.Context(), `INSERT INTO charges
		(charge_id, waba_id, portfolio_id, market, category, pricing_model, pricing_type, billing_unit, charged_at, currency, amount, insert_id)`)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range charges {
		if err := batch.Append(fmt.Sprintf("c-%s-%d-%d", c.waba, c.at.Unix(), i), c.waba, "p1", "IN", c.category,
			"PMP", "regular", "message", c.at, "USD", decimal.RequireFromString(c.amount), insertID); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	err = conn.Exec(t.Context(), fmt.Sprintf(`INSERT INTO spend_hourly
		(waba_id, portfolio_id, category, market, pricing_model, pricing_type, currency, hour, units, amount, insert_id)
		SELECT waba_id, portfolio_id, category, market, pricing_model, pricing_type, currency,
			toStartOfHour(charged_at) AS hour, count(), CAST(sum(amount) AS Decimal(18, 6)), insert_id
		FROM charges WHERE insert_id = %d
		GROUP BY waba_id, portfolio_id, category, market, pricing_model, pricing_type, currency, hour, insert_id`, insertID))
	if err != nil {
		t.Fatal(err)
	}
}

// receiver is a webhook that fails its first failures requests with 500.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	failures int
	attempts int
	got      []webhookBody
}

func newReceiver(t *testing.T, failures int) *receiver {
	r := &receiver{failures: failures}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts++
		if r.failures > 0 {
			r.failures--
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		var b webhookBody
		if err := json.Unmarshal(body, &b); err != nil {
			t.Errorf("receiver: %v: %s", err, body)
		}
		r.got = append(r.got, b)
	}))
	t.Cleanup(r.Close)
	return r
}

// take returns what was delivered since the last call.
func (r *receiver) take() []webhookBody {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

func rulesFor(t *testing.T, url, extra string) *Rules {
	t.Helper()
	r, err := ParseRules([]byte(extra + fmt.Sprintf("\nnotify: {url: %q, retries: 5, backoff: 1ms, timeout: 5s}\n", url)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newEvaluator(t *testing.T, conn clickhouse.Conn, rules *Rules) (*Evaluator, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	ev, err := NewEvaluator(conn, rules, zaptest.NewLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	return ev, reg
}

// storedAlert is a spend_alerts row.
type storedAlert struct {
	ID, Rule, WABAID, Category, State, Value, Threshold string
	At                                                  time.Time
}

func storedAlerts(t *testing.T, conn clickhouse.Conn) []storedAlert {
	t.Helper()
	rows, err := conn.Query(t.Context(), `SELECT alert_id, rule, waba_id, category, state, toString(value), toString(threshold), at
		FROM spend_alerts ORDER BY at, state`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedAlert
	for rows.Next() {
		var a storedAlert
		if err := rows.Scan(&a.ID, &a.Rule, &a.WABAID, &a.Category, &a.State, &a.Value, &a.Threshold, &a.At); err != nil {
			t.Fatal(err)
		}
		// Decimal(18,6) prints six places; compare numbers.
		a.Value = decimal.RequireFromString(a.Value).String()
		a.Threshold = decimal.RequireFromString(a.Threshold).String()
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// spikeDay is the day of the spike; the week before it is normal.
var spikeDay = time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)

// normalWeek: accounts "a" and "b" spend 2.00 each hour from 08:00 to 12:59
// on each of the 7 days before spikeDay and on spikeDay, except that "a"
// spends 60.00 from 10:00 to 10:59 on spikeDay.
func normalWeek() []charge {
	var out []charge
	for d := 7; d >= 0; d-- {
		for h := 8; h <= 12; h++ {
			hour := spikeDay.Add(time.Duration(-d*24+h) * time.Hour)
			for _, waba := range []string{"a", "b"} {
				n := 2
				if d == 0 && h == 10 && waba == "a" {
					n = 60
				}
				for i := range n {
					out = append(out, charge{waba, "MARKETING", hour.Add(time.Duration(i) * 30 * time.Second), "1.00"})
				}
			}
		}
	}
	return out
}

// A normal week then a spike hour for one account: one firing, nothing more
// while it stays in the window (also across a restart), one resolution when
// it leaves the window; both in spend_alerts with the same alert_id.
func TestSpikeFiresOnceAndResolvesOnce(t *testing.T) {
	conn := database(t)
	insertCharges(t, conn, normalWeek())
	recv := newReceiver(t, 0)
	rules := rulesFor(t, recv.URL, "window: 1h\nfactor: 3\nfloor: 10\n")
	ev, reg := newEvaluator(t, conn, rules)
	ctx := t.Context()

	at := func(hhmm string) time.Time {
		d, err := time.ParseDuration(hhmm)
		if err != nil {
			t.Fatal(err)
		}
		return spikeDay.Add(d)
	}
	// Before the spike: the window is 09:00.
	if err := ev.Evaluate(ctx, at("9h30m")); err != nil {
		t.Fatal(err)
	}
	if got := recv.take(); len(got) != 0 {
		t.Fatalf("before the spike: %+v", got)
	}

	// 10:30: the window holds the spike hour of "a".
	if err := ev.Evaluate(ctx, at("10h30m")); err != nil {
		t.Fatal(err)
	}
	got := recv.take()
	if len(got) != 1 {
		t.Fatalf("at the spike: %d notifications %+v, want 1", len(got), got)
	}
	fired := got[0]
	if fired.State != StateFiring || fired.Rule != RuleSpike || fired.WABAID != "a" || fired.Category != "" ||
		fired.Value != "60" || fired.Baseline != "2" || fired.Threshold != "10" || fired.Currency != "USD" ||
		fired.WindowStart != "2026-03-09T09:30:00Z" || fired.At != "2026-03-09T10:30:00Z" {
		t.Errorf("firing notification %+v", fired)
	}
	if v := value(t, ev.firing); v != 1 {
		t.Errorf("firing gauge %v, want 1", v)
	}

	// 11:00: still in the window, no new notification.
	if err := ev.Evaluate(ctx, at("11h")); err != nil {
		t.Fatal(err)
	}
	if got := recv.take(); len(got) != 0 {
		t.Fatalf("spike still in window: %+v", got)
	}

	// Restart: a new evaluator recovers the open alert and stays silent.
	ev, reg = newEvaluator(t, conn, rules)
	if err := ev.Evaluate(ctx, at("11h")); err != nil {
		t.Fatal(err)
	}
	if got := recv.take(); len(got) != 0 {
		t.Fatalf("after restart, spike still in window: %+v", got)
	}

	// 11:30: the window is 11:00, the spike has left it.
	if err := ev.Evaluate(ctx, at("11h30m")); err != nil {
		t.Fatal(err)
	}
	got = recv.take()
	if len(got) != 1 || got[0].State != StateResolved || got[0].WABAID != "a" || got[0].AlertID != fired.AlertID ||
		got[0].Value != "2" {
		t.Fatalf("after the spike: %+v, want one resolution of %s", got, fired.AlertID)
	}
	if err := ev.Evaluate(ctx, at("12h30m")); err != nil {
		t.Fatal(err)
	}
	if got := recv.take(); len(got) != 0 {
		t.Fatalf("later: %+v", got)
	}

	stored := storedAlerts(t, conn)
	if len(stored) != 2 ||
		stored[0] != (storedAlert{fired.AlertID, RuleSpike, "a", "", StateFiring, "60", "10", at("10h30m")}) ||
		stored[1].ID != fired.AlertID || stored[1].State != StateResolved || !stored[1].At.Equal(at("11h30m")) {
		t.Errorf("spend_alerts %+v", stored)
	}
	if v := value(t, ev.firing); v != 0 {
		t.Errorf("firing gauge %v, want 0", v)
	}
	if v := value(t, ev.evaluations.WithLabelValues("ok")); v != 3 {
		t.Errorf("evaluations ok %v, want 3 since the restart", v)
	}
	if !strings.Contains(gather(t, reg), "wameter_alert_notifications_total") {
		t.Error("notifications metric not registered")
	}
}

// A daily budget fires once when exceeded and resolves when the day ends.
func TestBudgetFiresOnce(t *testing.T) {
	conn := database(t)
	insertCharges(t, conn, normalWeek())
	recv := newReceiver(t, 0)
	// "b" spends 10.00 a day (5 hours × 2.00), "a" 68.00 on spikeDay.
	rules := rulesFor(t, recv.URL, `
factor: 1000
budgets:
  - {waba_id: "b", period: daily, amount: 7}
  - {waba_id: "a", period: monthly, amount: 1000}
`)
	ev, _ := newEvaluator(t, conn, rules)
	ctx := t.Context()
	for _, step := range []struct {
		at   time.Duration
		want string
	}{
		{10 * time.Hour, ""},                   // b: 4.00 (08:00, 09:00)
		{11 * time.Hour, ""},                   // b: 6.00
		{12 * time.Hour, "firing"},             // b: 8.00
		{13 * time.Hour, ""},                   // b: 10.00, still firing
		{24*time.Hour + time.Hour, "resolved"}, // a new day without spend
	} {
		if err := ev.Evaluate(ctx, spikeDay.Add(step.at)); err != nil {
			t.Fatal(err)
		}
		got := recv.take()
		switch {
		case step.want == "" && len(got) != 0:
			t.Errorf("at +%s: %+v, want nothing", step.at, got)
		case step.want != "" && (len(got) != 1 || got[0].State != step.want || got[0].Rule != RuleBudgetDaily ||
			got[0].WABAID != "b" || got[0].Threshold != "7"):
			t.Errorf("at +%s: %+v, want one %s of b's daily budget", step.at, got, step.want)
		}
	}
	stored := storedAlerts(t, conn)
	if len(stored) != 2 || stored[0].State != StateFiring || stored[0].Value != "8" || stored[1].State != StateResolved ||
		stored[0].ID != stored[1].ID {
		t.Errorf("spend_alerts %+v", stored)
	}
}

// A receiver that fails twice then accepts gets the alert once; with no
// retries, each failure waits for the next evaluation and nothing is
// recorded until it is delivered.
func TestNotificationRetries(t *testing.T) {
	conn := database(t)
	insertCharges(t, conn, normalWeek())
	now := spikeDay.Add(10*time.Hour + 30*time.Minute)

	t.Run("within an evaluation", func(t *testing.T) {
		recv := newReceiver(t, 2)
		ev, reg := newEvaluator(t, conn, rulesFor(t, recv.URL, "floor: 10"))
		if err := ev.Evaluate(t.Context(), now); err != nil {
			t.Fatal(err)
		}
		if got := recv.take(); len(got) != 1 || recv.attempts != 3 {
			t.Fatalf("delivered %+v in %d attempts, want once in 3", got, recv.attempts)
		}
		if v := value(t, ev.notifications.WithLabelValues("sent")); v != 1 {
			t.Errorf("sent %v", v)
		}
		if !strings.Contains(gather(t, reg), "wameter_alert_firing") {
			t.Error("firing metric not registered")
		}
		if err := conn.Exec(t.Context(), "TRUNCATE TABLE spend_alerts"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("across evaluations", func(t *testing.T) {
		recv := newReceiver(t, 2)
		r := rulesFor(t, recv.URL, "floor: 10")
		*r.Notify.Retries = 0
		ev, _ := newEvaluator(t, conn, r)
		for i := range 2 {
			if err := ev.Evaluate(t.Context(), now.Add(time.Duration(i)*time.Minute)); err == nil {
				t.Fatalf("evaluation %d: no error while the receiver fails", i)
			}
			if n := len(storedAlerts(t, conn)); n != 0 {
				t.Fatalf("evaluation %d: %d rows in spend_alerts before delivery", i, n)
			}
		}
		if err := ev.Evaluate(t.Context(), now.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := ev.Evaluate(t.Context(), now.Add(3*time.Minute)); err != nil {
			t.Fatal(err)
		}
		got := recv.take()
		if len(got) != 1 || got[0].State != StateFiring || got[0].WABAID != "a" {
			t.Fatalf("delivered %+v, want one firing", got)
		}
		if v := value(t, ev.notifications.WithLabelValues("failed")); v != 2 {
			t.Errorf("failed %v, want 2", v)
		}
		if stored := storedAlerts(t, conn); len(stored) != 1 || stored[0].ID != got[0].AlertID {
			t.Errorf("spend_alerts %+v", stored)
		}
	})
}

func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}

// gather returns the names of the metric families in reg.
func gather(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	return strings.Join(names, " ")
}

// A window of several hours sums them; by_category adds an alert per
// category beside the account's total.
func TestSpikeWindowOfHoursByCategory(t *testing.T) {
	conn := database(t)
	insertCharges(t, conn, normalWeek())
	recv := newReceiver(t, 0)
	ev, _ := newEvaluator(t, conn, rulesFor(t, recv.URL, "window: 3h\nfactor: 3\nfloor: 10\nby_category: true\n"))
	// 11:00: the window is 08:00, 09:00 and 10:00.
	if err := ev.Evaluate(t.Context(), spikeDay.Add(11*time.Hour)); err != nil {
		t.Fatal(err)
	}
	got := recv.take()
	if len(got) != 2 {
		t.Fatalf("%d notifications %+v, want the total and MARKETING of a", len(got), got)
	}
	for i, category := range []string{"", "MARKETING"} {
		g := got[i]
		if g.WABAID != "a" || g.Category != category || g.State != StateFiring || g.Value != "64" ||
			g.Baseline != "6" || g.Threshold != "18" || g.WindowStart != "2026-03-09T08:00:00Z" {
			t.Errorf("notification %d: %+v", i, g)
		}
	}
}
