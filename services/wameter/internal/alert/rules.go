package alert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/shopspring/decimal"
	"gopkg.in/yaml.v3"
)

// Baseline kinds.
const (
	// BaselineSameHour7d is the mean spend of the same window on each of the
	// previous 7 days, a day without spend counting as 0.
	BaselineSameHour7d = "same_hour_7d"
	// BaselineEWMA is an exponentially weighted mean of the same window on
	// the previous 7 days, oldest first, weight EWMAAlpha on the newer day.
	BaselineEWMA = "ewma"
)

// Budget periods, in UTC.
const (
	PeriodDaily   = "daily"
	PeriodMonthly = "monthly"
)

// Notification formats.
const (
	FormatJSON  = "json"
	FormatSlack = "slack"
)

// Rules is the alert rules file (WAMETER_ALERT_RULES). Load it with
// LoadRules or ParseRules, which apply the defaults and validate it; a zero
// field takes the default given on it.
type Rules struct {
	// Window is the current window, [now-Window, now) on the hour of
	// spend_hourly: whole hours, 1h to 24h. Default 1h.
	Window time.Duration `yaml:"window"`
	// Baseline is same_hour_7d (default) or ewma.
	Baseline string `yaml:"baseline"`
	// EWMAAlpha is the weight of the newer day for baseline ewma, in (0, 1].
	// Default 0.3.
	EWMAAlpha float64 `yaml:"ewma_alpha"`
	// Factor: a spike is current > Factor × baseline (and > Floor). Default 3.
	Factor float64 `yaml:"factor"`
	// Floor: a spike also needs current > Floor, in the account currency, so
	// that tiny accounts do not page. Default 0.
	Floor Money `yaml:"floor"`
	// ByCategory also evaluates spikes per WABA × category, besides the
	// WABA's total.
	ByCategory bool `yaml:"by_category"`
	// Budgets are plain budget rules: fire when the spend of the period so
	// far exceeds the amount.
	Budgets []Budget `yaml:"budgets"`
	// Accounts override the spike settings per WABA.
	Accounts []Override `yaml:"accounts"`
	// Notify is where notifications go.
	Notify Notify `yaml:"notify"`
}

// Budget fires when a WABA's spend in the current UTC day or month exceeds
// Amount (per currency, if an account spends in several).
type Budget struct {
	WABAID string `yaml:"waba_id"`
	Period string `yaml:"period"`
	Amount Money  `yaml:"amount"`
}

// Override replaces the default spike settings for one WABA; unset fields
// keep the defaults.
type Override struct {
	WABAID     string   `yaml:"waba_id"`
	Factor     *float64 `yaml:"factor"`
	Floor      *Money   `yaml:"floor"`
	ByCategory *bool    `yaml:"by_category"`
}

// Notify is the webhook notifications are POSTed to.
type Notify struct {
	// URL is an http or https URL.
	URL string `yaml:"url"`
	// Format is json (the alert's fields; default) or slack ({"text": ...}).
	Format string `yaml:"format"`
	// Timeout bounds one attempt. Default 5s.
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how many more attempts follow a failed one within one
	// evaluation. Default 3. A notification that still fails is tried
	// again at the next evaluation.
	Retries *int `yaml:"retries"`
	// Backoff is the wait before the first retry, doubled after each (at
	// most 10s). Default 500ms.
	Backoff time.Duration `yaml:"backoff"`
}

// Money is a decimal amount in YAML: 10, 12.5 or "12.50".
type Money struct{ decimal.Decimal }

// UnmarshalYAML parses a scalar as a decimal.
func (m *Money) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a decimal amount", n.Line)
	}
	d, err := decimal.NewFromString(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: amount %q: not a decimal", n.Line, n.Value)
	}
	m.Decimal = d
	return nil
}

const (
	defaultWindow    = time.Hour
	defaultFactor    = 3
	defaultAlpha     = 0.3
	defaultTimeout   = 5 * time.Second
	defaultRetries   = 3
	defaultBackoff   = 500 * time.Millisecond
	maxBackoff       = 10 * time.Second
	maxNotifyRetries = 20
)

// LoadRules reads and parses the rules file at path.
func LoadRules(path string) (*Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read alert rules: %w", err)
	}
	r, err := ParseRules(data)
	if err != nil {
		return nil, fmt.Errorf("alert rules %s: %w", path, err)
	}
	return r, nil
}

// ParseRules decodes a rules file strictly (unknown keys are errors), applies
// the defaults and validates it, reporting every problem at once.
func ParseRules(data []byte) (*Rules, error) {
	var r Rules
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var errs []error
	err := dec.Decode(&r)
	var typeErr *yaml.TypeError
	switch {
	case errors.Is(err, io.EOF):
	case errors.As(err, &typeErr):
		// The rest was decoded: go on and report its problems too.
		for _, e := range typeErr.Errors {
			errs = append(errs, errors.New(e))
		}
	case err != nil:
		return nil, fmt.Errorf("decode YAML: %w", err)
	}
	r.applyDefaults()
	if err := r.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &r, nil
}

func (r *Rules) applyDefaults() {
	if r.Window == 0 {
		r.Window = defaultWindow
	}
	if r.Baseline == "" {
		r.Baseline = BaselineSameHour7d
	}
	if r.Baseline == BaselineEWMA && r.EWMAAlpha == 0 {
		r.EWMAAlpha = defaultAlpha
	}
	if r.Factor == 0 {
		r.Factor = defaultFactor
	}
	if r.Notify.Format == "" {
		r.Notify.Format = FormatJSON
	}
	if r.Notify.Timeout == 0 {
		r.Notify.Timeout = defaultTimeout
	}
	if r.Notify.Retries == nil {
		n := defaultRetries
		r.Notify.Retries = &n
	}
	if r.Notify.Backoff == 0 {
		r.Notify.Backoff = defaultBackoff
	}
}

// Validate reports every problem of r (defaults applied) at once.
func (r *Rules) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if r.Window < time.Hour || r.Window > 24*time.Hour || r.Window%time.Hour != 0 {
		// spend_hourly has hours; the same window of the previous days must
		// not overlap the current one.
		bad("window %s: want whole hours from 1h to 24h", r.Window)
	}
	switch r.Baseline {
	case BaselineSameHour7d:
		if r.EWMAAlpha != 0 {
			bad("ewma_alpha %v: only with baseline %s", r.EWMAAlpha, BaselineEWMA)
		}
	case BaselineEWMA:
		if r.EWMAAlpha <= 0 || r.EWMAAlpha > 1 {
			bad("ewma_alpha %v: want 0 < ewma_alpha <= 1", r.EWMAAlpha)
		}
	default:
		bad("baseline %q: want %s or %s", r.Baseline, BaselineSameHour7d, BaselineEWMA)
	}
	if r.Factor <= 0 {
		bad("factor %v: must be positive", r.Factor)
	}
	if r.Floor.IsNegative() {
		bad("floor %s: must not be negative", r.Floor)
	}
	type budgetKey struct{ waba, period string }
	budgets := make(map[budgetKey]int)
	for i, b := range r.Budgets {
		if b.WABAID == "" {
			bad("budgets[%d]: waba_id missing", i)
		}
		if b.Period != PeriodDaily && b.Period != PeriodMonthly {
			bad("budgets[%d] (waba_id %q): period %q: want %s or %s", i, b.WABAID, b.Period, PeriodDaily, PeriodMonthly)
		}
		if !b.Amount.IsPositive() {
			bad("budgets[%d] (waba_id %q): amount %s: must be positive", i, b.WABAID, b.Amount)
		}
		k := budgetKey{b.WABAID, b.Period}
		if j, dup := budgets[k]; dup {
			bad("budgets[%d] (waba_id %q): duplicate %s budget, also budgets[%d]", i, b.WABAID, b.Period, j)
		} else {
			budgets[k] = i
		}
	}
	accounts := make(map[string]int)
	for i, a := range r.Accounts {
		if a.WABAID == "" {
			bad("accounts[%d]: waba_id missing", i)
		} else if j, dup := accounts[a.WABAID]; dup {
			bad("accounts[%d] (waba_id %q): duplicate, also accounts[%d]", i, a.WABAID, j)
		} else {
			accounts[a.WABAID] = i
		}
		if a.Factor != nil && *a.Factor <= 0 {
			bad("accounts[%d] (waba_id %q): factor %v: must be positive", i, a.WABAID, *a.Factor)
		}
		if a.Floor != nil && a.Floor.IsNegative() {
			bad("accounts[%d] (waba_id %q): floor %s: must not be negative", i, a.WABAID, a.Floor)
		}
	}
	n := r.Notify
	if n.URL == "" {
		bad("notify url missing")
	} else if u, err := url.Parse(n.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("notify url %q: want an http or https URL", n.URL)
	}
	if n.Format != FormatJSON && n.Format != FormatSlack {
		bad("notify format %q: want %s or %s", n.Format, FormatJSON, FormatSlack)
	}
	if n.Timeout < 0 {
		bad("notify timeout %s: must not be negative", n.Timeout)
	}
	if n.Retries != nil && (*n.Retries < 0 || *n.Retries > maxNotifyRetries) {
		bad("notify retries %d: want 0 to %d", *n.Retries, maxNotifyRetries)
	}
	if n.Backoff < 0 {
		bad("notify backoff %s: must not be negative", n.Backoff)
	}
	return errors.Join(errs...)
}

// spike is the spike settings of one WABA.
type spike struct {
	factor     decimal.Decimal
	floor      decimal.Decimal
	byCategory bool
}

// spikeFor returns the spike settings of waba: the defaults with its
// override, if any, applied.
func (r *Rules) spikeFor(waba string) spike {
	s := spike{factor: decimal.NewFromFloat(r.Factor), floor: r.Floor.Decimal, byCategory: r.ByCategory}
	for _, a := range r.Accounts {
		if a.WABAID != waba {
			continue
		}
		if a.Factor != nil {
			s.factor = decimal.NewFromFloat(*a.Factor)
		}
		if a.Floor != nil {
			s.floor = a.Floor.Decimal
		}
		if a.ByCategory != nil {
			s.byCategory = *a.ByCategory
		}
	}
	return s
}
