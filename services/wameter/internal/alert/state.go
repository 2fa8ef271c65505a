package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Alert states, as notified and stored in spend_alerts.state.
const (
	StateFiring   = "firing"
	StateResolved = "resolved"
)

// Rule names, as stored in spend_alerts.rule.
const (
	RuleSpike         = "spike"
	RuleBudgetDaily   = "budget_daily"
	RuleBudgetMonthly = "budget_monthly"
)

// Key identifies an alert: one rule on one account (and category, "" for
// the account's total) in one currency.
type Key struct {
	Rule     string
	WABAID   string
	Category string
	Currency string
}

// Observation is one rule's condition for one key at an evaluation.
type Observation struct {
	Key
	// Breached: the condition holds (the alert should be firing).
	Breached  bool
	Value     decimal.Decimal
	Baseline  decimal.Decimal
	Threshold decimal.Decimal
	// WindowStart is the start of the window Value covers.
	WindowStart time.Time
	// Message says what was measured against what, for people.
	Message string
}

// Alert is one transition of an alert: a notification and a spend_alerts
// row. A firing and its resolution share the ID.
type Alert struct {
	ID string
	Key
	State       string
	Value       decimal.Decimal
	Baseline    decimal.Decimal
	Threshold   decimal.Decimal
	WindowStart time.Time
	At          time.Time
	Message     string
}

// alertID is deterministic: the key and the instant the alert fired.
func alertID(k Key, firedAt time.Time) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%s\x00%d", k.Rule, k.WABAID, k.Category, k.Currency, firedAt.Unix()))
	return hex.EncodeToString(h[:16])
}

// Pending is a transition not yet both notified and recorded.
type Pending struct {
	Alert
	// Notified: the webhook accepted it; only the spend_alerts row is missing.
	Notified bool
}

// Tracker is the state machine of every alert: it fires once when a
// condition becomes true, stays silent while it holds, and resolves once
// when it clears. Transitions wait in Pending until the caller reports them
// notified (MarkNotified) and recorded (MarkRecorded), so a failed
// notification is tried again at the next evaluation. A firing that was
// never notified and clears is dropped without a resolution: nobody heard
// of it. Not safe for concurrent use.
type Tracker struct {
	open    map[Key]*openAlert
	pending []*Pending
}

type openAlert struct {
	firing   *Pending // the firing transition
	notified bool
}

// NewTracker returns a Tracker with no open alert.
func NewTracker() *Tracker {
	return &Tracker{open: make(map[Key]*openAlert)}
}

// Restore marks alerts as firing and already notified (recovered from
// spend_alerts at start). A later alert of the same key wins.
func (t *Tracker) Restore(firing []Alert) {
	for _, a := range firing {
		p := &Pending{Alert: a, Notified: true}
		t.open[a.Key] = &openAlert{firing: p, notified: true}
	}
}

// Observe applies the observations of one evaluation at now. A key that is
// open but not observed is treated as cleared (no spend left in its window
// or period), with value 0.
func (t *Tracker) Observe(now time.Time, obs []Observation) {
	now = now.UTC().Truncate(time.Second)
	seen := make(map[Key]bool, len(obs))
	for _, o := range obs {
		seen[o.Key] = true
		open := t.open[o.Key]
		switch {
		case o.Breached && open == nil:
			p := &Pending{Alert: Alert{ID: alertID(o.Key, now), Key: o.Key, State: StateFiring,
				Value: o.Value, Baseline: o.Baseline, Threshold: o.Threshold,
				WindowStart: o.WindowStart.UTC(), At: now, Message: o.Message}}
			t.open[o.Key] = &openAlert{firing: p}
			t.pending = append(t.pending, p)
		case !o.Breached && open != nil:
			t.resolve(open, o, now)
		}
	}
	for k, open := range t.open {
		if !seen[k] {
			t.resolve(open, Observation{Key: k, WindowStart: open.firing.WindowStart,
				Threshold: open.firing.Threshold, Message: "no spend in the window any more"}, now)
		}
	}
}

func (t *Tracker) resolve(open *openAlert, o Observation, now time.Time) {
	delete(t.open, o.Key)
	if !open.notified {
		t.drop(open.firing)
		return
	}
	t.pending = append(t.pending, &Pending{Alert: Alert{ID: open.firing.ID, Key: o.Key, State: StateResolved,
		Value: o.Value, Baseline: o.Baseline, Threshold: o.Threshold,
		WindowStart: o.WindowStart.UTC(), At: now, Message: o.Message}})
}

func (t *Tracker) drop(p *Pending) {
	for i, q := range t.pending {
		if q == p {
			t.pending = append(t.pending[:i], t.pending[i+1:]...)
			return
		}
	}
}

// Pending returns the transitions to notify and/or record, oldest first.
// The slice is a copy; its elements are the Tracker's.
func (t *Tracker) Pending() []*Pending {
	return append([]*Pending(nil), t.pending...)
}

// MarkNotified records that the webhook accepted p.
func (t *Tracker) MarkNotified(p *Pending) {
	p.Notified = true
	if p.State != StateFiring {
		return
	}
	if open := t.open[p.Key]; open != nil && open.firing == p {
		open.notified = true
	}
}

// MarkRecorded records that p is in spend_alerts: it is done.
func (t *Tracker) MarkRecorded(p *Pending) { t.drop(p) }

// Firing returns how many alerts are firing (open), notified or not.
func (t *Tracker) Firing() int { return len(t.open) }
