package alert

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestSpikeObservations(t *testing.T) {
	now := time.Date(2026, 3, 9, 10, 30, 0, 0, time.UTC) // window [09:30, 10:30): hour 10:00
	f := func(name string, rules string, hours []hourSpend, want map[Key]string) {
		t.Helper()
		r, err := ParseRules([]byte(rules + "\nnotify: {url: 'http://127.0.0.1:9/'}\n"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := make(map[Key]string)
		for _, o := range spikeObservations(r, now, hours) {
			state := "ok"
			if o.Breached {
				state = "breached"
			}
			got[o.Key] = state + " " + o.Value.String() + "/" + o.Baseline.String() + "/" + o.Threshold.String()
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
	h := func(waba, category string, hour time.Time, amount int64) hourSpend {
		return hourSpend{WABAID: waba, Category: category, Currency: "USD", Hour: hour, Amount: decimal.NewFromInt(amount)}
	}
	at10 := time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	total := func(waba string) Key { return Key{Rule: RuleSpike, WABAID: waba, Currency: "USD"} }

	f("mean of 7 days, missing days 0", "factor: 3\nfloor: 10", []hourSpend{
		h("a", "MARKETING", at10, 50),
		h("a", "MARKETING", at10.Add(-day), 7),
		h("a", "MARKETING", at10.Add(-3*day), 7),
		h("a", "MARKETING", at10.Add(-9*time.Hour), 1000), // outside every window
	}, map[Key]string{total("a"): "breached 50/2/10"})
	f("factor times baseline above floor", "factor: 3\nfloor: 10", []hourSpend{
		h("a", "MARKETING", at10, 50),
		h("a", "MARKETING", at10.Add(-2*day), 119),
	}, map[Key]string{total("a"): "ok 50/17/51"})
	f("no history never fires", "factor: 3", []hourSpend{
		h("a", "MARKETING", at10, 50),
	}, map[Key]string{total("a"): "ok 50/0/0"})
	f("by category", "factor: 2\nby_category: true", []hourSpend{
		h("a", "MARKETING", at10, 30),
		h("a", "UTILITY", at10, 5),
		h("a", "MARKETING", at10.Add(-7*day), 70),
		h("a", "UTILITY", at10.Add(-7*day), 70),
	}, map[Key]string{
		total("a"): "ok 35/20/40",
		{Rule: RuleSpike, WABAID: "a", Category: "MARKETING", Currency: "USD"}: "breached 30/10/20",
		{Rule: RuleSpike, WABAID: "a", Category: "UTILITY", Currency: "USD"}:   "ok 5/10/20",
	})
	f("ewma weighs recent days", "baseline: ewma\newma_alpha: 0.5\nfactor: 1", []hourSpend{
		h("a", "MARKETING", at10, 10),
		h("a", "MARKETING", at10.Add(-day), 16),
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
