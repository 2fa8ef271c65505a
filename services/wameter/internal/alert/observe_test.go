package alert

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestSpikeObservations(t *testing.T) {
	now := time.Date(2026, 3, 9, 10, 30, 0, 0, time.UTC)
	f := func(name string, rules string, windows []windowSpend, want map[Key]string) {
		t.Helper()
		r, err := ParseRules([]byte(rules + "\nnotify: {url: 'http://127.0.0.1:9/'}\n"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := make(map[Key]string)
		for _, o := range spikeObservations(r, now, windows) {
			state := "ok"
			if o.Breached {
				state = "breached"
			}
			got[o.Key] = state + " " + o.Value.String() + "/" + o.Baseline.String() + "/" + o.Threshold.String()
			if !o.WindowStart.Equal(now.Add(-r.Window)) {
				t.Errorf("%s: window start %s", name, o.WindowStart)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s: %+v = %q, want %q", name, k, got[k], w)
			}
		}
	}
	w := func(waba, category string, day int, amount int64) windowSpend {
		return windowSpend{WABAID: waba, Category: category, Currency: "USD", Day: day, Amount: decimal.NewFromInt(amount)}
	}
	total := func(waba string) Key { return Key{Rule: RuleSpike, WABAID: waba, Currency: "USD"} }

	f("mean of 7 days, missing days 0", "factor: 3\nfloor: 10", []windowSpend{
		w("a", "MARKETING", 0, 50),
		w("a", "MARKETING", 1, 7),
		w("a", "MARKETING", 3, 7),
	}, map[Key]string{total("a"): "breached 50/2/10"})
	f("factor times baseline above floor", "factor: 3\nfloor: 10", []windowSpend{
		w("a", "MARKETING", 0, 50),
		w("a", "MARKETING", 2, 119),
	}, map[Key]string{total("a"): "ok 50/17/51"})
	f("no history never fires", "factor: 3", []windowSpend{
		w("a", "MARKETING", 0, 50),
	}, map[Key]string{total("a"): "ok 50/0/0"})
	f("history without current spend", "factor: 3", []windowSpend{
		w("b", "UTILITY", 7, 14),
	}, map[Key]string{total("b"): "ok 0/2/6"})
	f("by category", "factor: 2\nby_category: true", []windowSpend{
		w("a", "MARKETING", 0, 30),
		w("a", "UTILITY", 0, 5),
		w("a", "MARKETING", 7, 70),
		w("a", "UTILITY", 7, 70),
	}, map[Key]string{
		total("a"): "ok 35/20/40",
		{Rule: RuleSpike, WABAID: "a", Category: "MARKETING", Currency: "USD"}: "breached 30/10/20",
		{Rule: RuleSpike, WABAID: "a", Category: "UTILITY", Currency: "USD"}:   "ok 5/10/20",
	})
	f("per-account override", "factor: 2\naccounts: [{waba_id: a, factor: 10, floor: 100}]", []windowSpend{
		w("a", "MARKETING", 0, 90),
		w("a", "MARKETING", 1, 7),
		w("b", "MARKETING", 0, 90),
		w("b", "MARKETING", 1, 7),
	}, map[Key]string{total("a"): "ok 90/1/100", total("b"): "breached 90/1/2"})
	f("ewma weighs recent days", "baseline: ewma\newma_alpha: 0.5\nfactor: 1", []windowSpend{
		w("a", "MARKETING", 0, 10),
		w("a", "MARKETING", 1, 16),
	}, map[Key]string{total("a"): "breached 10/8/8"}) // 0.5×16 + 0.5×(older days, all 0)
}

func TestBudgetObservations(t *testing.T) {
	r, err := ParseRules([]byte(`
budgets:
  - {waba_id: a, period: daily, amount: 100}
  - {waba_id: b, period: monthly, amount: 100}
notify: {url: 'http://127.0.0.1:9/'}
`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 9, 10, 30, 0, 0, time.UTC)
	spend := []periodSpend{
		{WABAID: "a", Currency: "USD", Amount: decimal.NewFromInt(101)},
		{WABAID: "b", Currency: "USD", Amount: decimal.NewFromInt(101)},
		{WABAID: "c", Currency: "USD", Amount: decimal.NewFromInt(1000)},
	}
	obs := budgetObservations(r, PeriodDaily, now, spend)
	if len(obs) != 1 || obs[0].WABAID != "a" || !obs[0].Breached || obs[0].Rule != RuleBudgetDaily ||
		!obs[0].WindowStart.Equal(time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("daily: %+v", obs)
	}
	obs = budgetObservations(r, PeriodMonthly, now, spend)
	if len(obs) != 1 || obs[0].WABAID != "b" || !obs[0].Breached ||
		!obs[0].WindowStart.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("monthly: %+v", obs)
	}
}
