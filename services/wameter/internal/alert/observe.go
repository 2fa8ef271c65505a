package alert

import (
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"
)

// historyDays is how many previous days the spike baseline looks at.
const historyDays = 7

// windowSpend is sum(amount) of spend_hourly for one account, category and
// currency in one window: Day 0 is the current window [now-Window, now) on
// the hour column, day d the same window d×24h earlier.
type windowSpend struct {
	WABAID   string
	Category string
	Currency string
	Day      int
	Amount   decimal.Decimal
}

// periodSpend is sum(amount) of spend_hourly for one account and currency
// over a budget period.
type periodSpend struct {
	WABAID   string
	Currency string
	Amount   decimal.Decimal
}

// spikeObservations evaluates the spike rule at now from the windows of
// the current day and the historyDays before it (spendStore.windowSpends). Every
// account with spend in any of them is observed (its total, and each
// category if by_category).
//
// The baseline needs history: an account (or category) whose 7 previous
// days all have no spend is never a spike (a new account would otherwise
// fire on its first spend above the floor; budgets cover new accounts).
// A previous day without spend counts as 0 in the mean.
func spikeObservations(r *Rules, now time.Time, windows []windowSpend) []Observation {
	type series struct {
		days [historyDays + 1]decimal.Decimal // [0] is the current window
	}
	bySeries := make(map[Key]*series)
	add := func(k Key, day int, amount decimal.Decimal) {
		s := bySeries[k]
		if s == nil {
			s = &series{}
			bySeries[k] = s
		}
		s.days[day] = s.days[day].Add(amount)
	}
	for _, w := range windows {
		if w.Day < 0 || w.Day > historyDays {
			continue
		}
		add(Key{Rule: RuleSpike, WABAID: w.WABAID, Currency: w.Currency}, w.Day, w.Amount)
		if r.spikeFor(w.WABAID).byCategory {
			add(Key{Rule: RuleSpike, WABAID: w.WABAID, Category: w.Category, Currency: w.Currency}, w.Day, w.Amount)
		}
	}
	windowStart := now.Add(-r.Window)
	obs := make([]Observation, 0, len(bySeries))
	for k, s := range bySeries {
		settings := r.spikeFor(k.WABAID)
		baseline, history := r.baseline(s.days[1:])
		current := s.days[0]
		threshold := decimal.Max(settings.factor.Mul(baseline), settings.floor).Round(6)
		o := Observation{Key: k, Value: current, Baseline: baseline, Threshold: threshold, WindowStart: windowStart,
			Breached: history && current.GreaterThan(threshold)}
		what := "WABA " + k.WABAID
		if k.Category != "" {
			what += " " + k.Category
		}
		if history {
			o.Message = fmt.Sprintf("%s spend %s %s in the %s from %s; threshold %s %s (%s × baseline %s, floor %s)",
				what, current.StringFixed(2), k.Currency, r.Window, windowStart.UTC().Format(time.RFC3339),
				threshold.StringFixed(2), k.Currency, settings.factor, baseline.StringFixed(2), settings.floor)
		} else {
			o.Message = fmt.Sprintf("%s spend %s %s in the %s from %s; no spend on the previous %d days",
				what, current.StringFixed(2), k.Currency, r.Window, windowStart.UTC().Format(time.RFC3339), historyDays)
		}
		obs = append(obs, o)
	}
	sortObservations(obs)
	return obs
}

// baseline of the previous days' windows (days[0] is yesterday), and whether
// any of them had spend.
func (r *Rules) baseline(days []decimal.Decimal) (decimal.Decimal, bool) {
	history := false
	for _, d := range days {
		if d.IsPositive() {
			history = true
		}
	}
	if r.Baseline == BaselineEWMA {
		alpha := decimal.NewFromFloat(r.EWMAAlpha)
		keep := decimal.NewFromInt(1).Sub(alpha)
		e := days[len(days)-1]
		for i := len(days) - 2; i >= 0; i-- {
			e = alpha.Mul(days[i]).Add(keep.Mul(e))
		}
		return e.Round(6), history
	}
	sum := decimal.Zero
	for _, d := range days {
		sum = sum.Add(d)
	}
	return sum.Div(decimal.NewFromInt(int64(len(days)))).Round(6), history
}

// periodStart is the start of the UTC day or month holding now.
func periodStart(period string, now time.Time) time.Time {
	now = now.UTC()
	if period == PeriodMonthly {
		return time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
}

// budgetObservations evaluates the budgets of period at now from the spend
// since periodStart(period, now). A budgeted account without spend in the
// period is not observed (so an open budget alert resolves when a new period
// starts).
func budgetObservations(r *Rules, period string, now time.Time, spend []periodSpend) []Observation {
	rule := RuleBudgetDaily
	if period == PeriodMonthly {
		rule = RuleBudgetMonthly
	}
	start := periodStart(period, now)
	var obs []Observation
	for _, b := range r.Budgets {
		if b.Period != period {
			continue
		}
		for _, s := range spend {
			if s.WABAID != b.WABAID {
				continue
			}
			obs = append(obs, Observation{
				Key:         Key{Rule: rule, WABAID: s.WABAID, Currency: s.Currency},
				Breached:    s.Amount.GreaterThan(b.Amount.Decimal),
				Value:       s.Amount,
				Threshold:   b.Amount.Decimal,
				WindowStart: start,
				Message: fmt.Sprintf("WABA %s spend %s %s since %s; %s budget %s",
					s.WABAID, s.Amount.StringFixed(2), s.Currency, start.Format(time.RFC3339), period, b.Amount),
			})
		}
	}
	sortObservations(obs)
	return obs
}

func sortObservations(obs []Observation) {
	sort.Slice(obs, func(i, j int) bool {
		a, b := obs[i].Key, obs[j].Key
		if a.WABAID != b.WABAID {
			return a.WABAID < b.WABAID
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		if a.Category != b.Category {
			return a.Category < b.Category
		}
		return a.Currency < b.Currency
	})
}
