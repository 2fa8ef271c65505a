package billing

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wameter/wameter/pkg/pricing"
)

// Meta's per-message example: four messages, two of them charged. A marketing
// template is charged; the customer replies; a utility template inside the
// customer service window and a non-template reply are free; an
// authentication template is charged.
func TestPMPMetaExample(t *testing.T) {
	h := newHarness(t, nil, "")
	s := newScenario(t, "2025-08-04T00:00:00Z")
	s.out(0, KindMarketing)
	s.inbound(1)
	s.out(2, KindUtility)
	s.out(3, KindNonTemplate)
	s.out(4, KindAuthentication)
	mk := rate(t, h.cat, "PMP", "2025-08-04", "NORTH_AMERICA", "marketing")
	au := rate(t, h.cat, "PMP", "2025-08-04", "NORTH_AMERICA", "authentication")
	r := s.expect(h, "",
		"marketing@0h/regular/"+mk+" utility@2h/free_customer_service/0.000000 service@3h/free_customer_service/0.000000 authentication@4h/regular/"+au)
	charged := 0
	for _, u := range r.Charges {
		if u.BillingUnit != UnitMessage || u.Model != PMP {
			t.Errorf("unit %+v: want a PMP message unit", u)
		}
		if u.AmountMicro > 0 {
			charged++
		}
	}
	if charged != 2 {
		t.Errorf("%d charged messages, want 2", charged)
	}
}

func TestPMPUtilityFreeOnlyInsideServiceWindow(t *testing.T) {
	h := newHarness(t, nil, "")
	s := newScenario(t, "2025-08-04T00:00:00Z")
	s.out(0, KindUtility) // no window yet
	s.inbound(1)          // window [1h, 25h)
	s.out(24.5, KindUtility)
	s.out(25, KindUtility) // window is half-open
	ut := rate(t, h.cat, "PMP", "2025-08-04", "NORTH_AMERICA", "utility")
	s.expect(h, "",
		"utility@0h/regular/"+ut+" utility@88200s/free_customer_service/0.000000 utility@25h/regular/"+ut)
}

func TestPMPFreeEntryPoint(t *testing.T) {
	h := newHarness(t, nil, "")
	s := newScenario(t, "2025-08-04T00:00:00Z")
	s.referral(0)
	s.out(1, KindMarketing)  // opens the window [1h, 73h), itself free
	s.out(2, KindUtility)    // free inside
	s.out(40, KindMarketing) // free inside
	s.out(73, KindMarketing) // half-open: charged
	mk := rate(t, h.cat, "PMP", "2025-08-04", "NORTH_AMERICA", "marketing")
	r := s.expect(h, "referral_conversion@1h/PMP",
		"referral_conversion@1h/free_entry_point/0.000000 referral_conversion@2h/free_entry_point/0.000000 referral_conversion@40h/free_entry_point/0.000000 marketing@73h/regular/"+mk)
	conv := r.Conversations[0].ID()
	for _, u := range r.Charges[:3] {
		if id, ok := u.ConversationID(); !ok || id != conv {
			t.Errorf("free entry point message %s not tied to its window's conversation", u.MessageID)
		}
	}
	if _, ok := r.Charges[3].ConversationID(); ok {
		t.Error("a PMP marketing message belongs to no conversation")
	}
}

// Rule sets switch at local midnight in the WABA's time zone (spec 3).
func TestRuleSetSwitchesAtLocalMidnight(t *testing.T) {
	const yaml = "accounts:\n  - waba_id: \"102938475610\"\n    timezone: America/Sao_Paulo\n"
	cases := []struct {
		at      string
		kind    MsgKind
		ruleSet RuleSet
		typ     string
	}{
		{"2023-06-01T02:59:59Z", KindMarketing, RulesNone, "unsupported"},
		{"2023-06-01T03:00:00Z", KindMarketing, RulesCBP2023, "regular"},
		{"2024-11-01T02:59:59Z", KindNonTemplate, RulesCBP2023, "free_tier"},
		{"2024-11-01T03:00:00Z", KindNonTemplate, RulesCBP2024, "free_service"},
		{"2025-07-01T02:59:59Z", KindMarketing, RulesCBP2024, "regular"},
		{"2025-07-01T03:00:00Z", KindMarketing, RulesPMP2025, "regular"},
	}
	for _, c := range cases {
		t.Run(c.at, func(t *testing.T) {
			h := newHarness(t, nil, yaml)
			s := newScenario(t, c.at)
			s.cust = brCust
			s.out(0, c.kind)
			r := h.derive(s.events)
			if len(r.Charges) != 1 {
				t.Fatalf("%d charges, want 1", len(r.Charges))
			}
			u := r.Charges[0]
			if u.RuleSet != c.ruleSet || u.PricingType.String() != c.typ {
				t.Errorf("rule set %s, %s; want %s, %s", u.RuleSet, u.PricingType, c.ruleSet, c.typ)
			}
		})
	}
}

func TestUnsupportedBeforeJune2023(t *testing.T) {
	h := newHarness(t, nil, "")
	s := newScenario(t, "2023-05-31T10:00:00Z")
	s.inbound(0)
	s.out(1, KindMarketing)
	s.out(2, KindNonTemplate)
	s.out(3, KindMarketing)
	r := s.expect(h, "",
		"marketing@1h/unsupported/0.000000 service@2h/unsupported/0.000000 marketing@3h/unsupported/0.000000")
	for _, u := range r.Charges {
		if u.BillingUnit != UnitMessage {
			t.Errorf("unsupported unit counts %s, want message", u.BillingUnit)
		}
	}
}

func TestMarketByLongestCallingCodePrefix(t *testing.T) {
	h := newHarness(t, nil, "")
	cases := []struct {
		name string
		cust uint64
		at   string
		want string
	}{
		{"+1 415 is North America", usCust, "2025-08-04T00:00:00Z", "NORTH_AMERICA"},
		{"+1 809 is Rest of Latin America", doCust, "2025-08-04T00:00:00Z", "REST_OF_LATIN_AMERICA"},
		{"Zimbabwe before it moves", 263771234567, "2025-09-30T23:59:59Z", "OTHER"},
		{"Zimbabwe after it moves", 263771234567, "2025-10-01T00:00:00Z", "REST_OF_AFRICA"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newScenario(t, c.at)
			s.cust = c.cust
			s.out(0, KindMarketing)
			r := h.derive(s.events)
			if len(r.Charges) != 1 {
				t.Fatalf("%d charges", len(r.Charges))
			}
			u := r.Charges[0]
			want := rate(t, h.cat, "PMP", c.at[:10], c.want, "marketing")
			if u.Market != c.want || micros(u.AmountMicro) != want {
				t.Errorf("market %s amount %s, want %s %s", u.Market, micros(u.AmountMicro), c.want, want)
			}
		})
	}
}

func TestMissingRateIsVisibleNoRate(t *testing.T) {
	h := newHarness(t, nil, "")
	s := newScenario(t, "2025-08-04T00:00:00Z")
	s.cust = 966501234567 // Saudi Arabia: no PMP card for July-September 2025
	s.out(0, KindMarketing)
	s.expect(h, "", "marketing@0h/no_rate/0.000000")
	if h.led.Stats.NoRate != 1 {
		t.Errorf("NoRate = %d, want 1", h.led.Stats.NoRate)
	}
}

// PMP volume tiers (5.4): per portfolio, market, category and local month,
// only regular messages count, incremental.
func TestPMPVolumeTierBoundary(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"markets.csv", "rates.csv"} {
		b, err := os.ReadFile(filepath.Join("..", "pricing", "data", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tiers := "pricing_model,valid_from,market,category,tier_from,tier_to,rate_usd,source\n" +
		"PMP,2025-07-01,NORTH_AMERICA,utility,1,3,0.0040,test\n" +
		"PMP,2025-07-01,NORTH_AMERICA,utility,4,,0.0030,test\n"
	if err := os.WriteFile(filepath.Join(dir, "tiers.csv"), []byte(tiers), 0o644); err != nil {
		t.Fatal(err)
	}
	cat, err := pricing.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Two WABAs of one portfolio share the counter.
	h := newHarness(t, cat, "accounts:\n  - waba_id: \"102938475610\"\n    portfolio_id: \"77\"\n  - waba_id: \"333\"\n    portfolio_id: \"77\"\n")
	s := newScenario(t, "2025-08-04T00:00:00Z")
	s.out(0, KindUtility)
	s.out(1, KindUtility)
	s.inbound(1.5)
	s.out(2, KindUtility) // free_customer_service: does not count
	s.waba = 333
	s.cust = usCust + 1
	s.out(3, KindUtility) // 3rd regular of the portfolio
	s.out(4, KindUtility) // 4th: next tier
	s.cust = doCust
	s.out(5, KindUtility) // another market: its own counter, list rate (no tiers)
	list := rate(t, cat, "PMP", "2025-08-04", "REST_OF_LATIN_AMERICA", "utility")
	r := s.expect(h, "",
		"utility@0h/regular/0.004000 utility@1h/regular/0.004000 utility@2h/free_customer_service/0.000000 utility@3h/regular/0.004000 utility@4h/regular/0.003000 utility@5h/regular/"+list)
	if r.Charges[4].Tier != 2 || r.Charges[0].Tier != 1 || r.Charges[5].Tier != 0 {
		t.Errorf("tiers %d %d %d, want 1 2 0", r.Charges[0].Tier, r.Charges[4].Tier, r.Charges[5].Tier)
	}
	// The rate card names the tier set (its valid_from), not the day charged.
	if got, want := r.Charges[4].RateCard, "PMP/USD/tiers/2025-07-01#2"; got != want {
		t.Errorf("rate card of the 4th regular = %q, want %q", got, want)
	}
	d, _ := pricing.ParseDay("2025-08-04")
	if want, _ := cat.Rate("PMP", d, "REST_OF_LATIN_AMERICA", "utility", "USD"); r.Charges[5].RateCard != want.Card || want.Card == "" {
		t.Errorf("rate card of the list-rate charge = %q, want %q", r.Charges[5].RateCard, want.Card)
	}
}
