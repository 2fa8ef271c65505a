package alert

import (
	"strings"
	"testing"
	"time"
)

func TestParseRules(t *testing.T) {
	r, err := ParseRules([]byte(`
window: 2h
factor: 3
floor: 10
by_category: true
budgets:
  - waba_id: "102"
    period: daily
    amount: 500
accounts:
  - waba_id: "102"
    factor: 5
    floor: "50.5"
    by_category: false
notify:
  url: http://127.0.0.1:9/hook
  format: slack
  timeout: 2s
  retries: 0
`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Window != 2*time.Hour || r.Baseline != BaselineSameHour7d || r.Notify.Format != FormatSlack ||
		*r.Notify.Retries != 0 || r.Notify.Backoff != defaultBackoff {
		t.Errorf("rules = %+v", r)
	}
	if s := r.spikeFor("102"); s.factor.String() != "5" || s.floor.String() != "50.5" || s.byCategory {
		t.Errorf("override 102 = %+v", s)
	}
	if s := r.spikeFor("999"); s.factor.String() != "3" || s.floor.String() != "10" || !s.byCategory {
		t.Errorf("defaults = %+v", s)
	}
}

func TestParseRulesDefaults(t *testing.T) {
	r, err := ParseRules([]byte("notify: {url: 'https://hooks.example/x'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Window != time.Hour || r.Factor != 3 || !r.Floor.IsZero() || r.Notify.Format != FormatJSON ||
		r.Notify.Timeout != 5*time.Second || *r.Notify.Retries != 3 {
		t.Errorf("rules = %+v", r)
	}
}

// Every problem is reported at once, unknown keys included.
func TestParseRulesReportsEveryProblem(t *testing.T) {
	_, err := ParseRules([]byte(`
window: 90m
baseline: median
factor: -1
floor: -2
colour: blue
budgets:
  - waba_id: "1"
    period: weekly
    amount: 0
  - period: daily
    amount: 5
accounts:
  - waba_id: "7"
    factor: 0
  - waba_id: "7"
    treshold: 3
notify:
  url: ftp://x
  format: xml
  retries: 99
`))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"window 1h30m0s", `baseline "median"`, "factor -1", "floor -2", "field colour not found",
		`budgets[0] (waba_id "1"): period "weekly"`, `budgets[0] (waba_id "1"): amount 0`,
		"budgets[1]: waba_id missing", `accounts[0] (waba_id "7"): factor 0`,
		`accounts[1] (waba_id "7"): duplicate`, "field treshold not found",
		`notify url "ftp://x"`, `notify format "xml"`, "notify retries 99",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestParseRulesNeedsNotifyURL(t *testing.T) {
	_, err := ParseRules([]byte("factor: 2\n"))
	if err == nil || !strings.Contains(err.Error(), "notify url missing") {
		t.Fatalf("err = %v", err)
	}
}
