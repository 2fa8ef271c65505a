package pricing

import (
	"slices"
	"testing"
)

const testTiers = `pricing_model,valid_from,market,category,tier_from,tier_to,rate_usd,source
PMP,2025-07-01,IN,utility,1,1000,0.0014,test
PMP,2025-07-01,IN,utility,1001,5000,0.0012,test
PMP,2025-07-01,IN,utility,5001,,0.0010,test
PMP,2026-01-01,IN,utility,1,,0.0011,test
PMP,2025-07-01,IN,authentication_international,1,,0.0280,test
`

func TestTiers(t *testing.T) {
	c, err := LoadDir(dataDir(t, map[string]string{TiersFile: testTiers}))
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	july := []Tier{{From: 1, To: 1000, Micros: 1400}, {From: 1001, To: 5000, Micros: 1200}, {From: 5001, To: 0, Micros: 1000}}
	f := func(day, market, category, currency string, want []Tier) {
		t.Helper()
		got := c.Tiers(ModelPMP, mustDay(t, day), market, category, currency)
		if !slices.Equal(got, want) || (got == nil) != (want == nil) {
			t.Errorf("Tiers(PMP, %s, %s, %s, %s) = %v, want %v", day, market, category, currency, got, want)
		}
	}
	f("2025-06-30", "IN", Utility, "USD", nil)
	f("2025-07-01", "IN", Utility, "USD", july)
	f("2025-12-31", "IN", Utility, "USD", july)
	f("2026-01-01", "IN", Utility, "USD", []Tier{{From: 1, Micros: 1100}})
	f("2030-01-01", "IN", Utility, "USD", []Tier{{From: 1, Micros: 1100}})
	f("2025-07-01", "IN", AuthenticationInternational, "USD", []Tier{{From: 1, Micros: 28000}})
	// tiers.csv is in USD: other currencies, markets and categories have none.
	f("2025-07-01", "IN", Utility, "EUR", nil)
	f("2025-07-01", "BR", Utility, "USD", nil)
	f("2025-07-01", "IN", Authentication, "USD", nil)
	if got := c.Tiers(ModelCBP, mustDay(t, "2025-07-01"), "IN", Utility, "USD"); got != nil {
		t.Errorf("Tiers(CBP, ...) = %v, want nil", got)
	}

	g := func(n uint64, wantIndex int, wantOK bool) {
		t.Helper()
		index, tier, ok := TierFor(july, n)
		if ok != wantOK || index != wantIndex || (ok && tier != july[wantIndex]) {
			t.Errorf("TierFor(july, %d) = %d, %v, %v; want %d, %v", n, index, tier, ok, wantIndex, wantOK)
		}
	}
	g(0, 0, false) // counts are 1-based
	g(1, 0, true)
	g(1000, 0, true) // tier_to is inclusive
	g(1001, 1, true) // tier_to+1 is the next tier
	g(5000, 1, true)
	g(5001, 2, true)
	g(1<<63, 2, true) // the last tier is unbounded
	if _, _, ok := TierFor(nil, 1); ok {
		t.Error("TierFor(nil, 1) ok = true")
	}
	bounded := july[:2]
	if _, _, ok := TierFor(bounded, 5001); ok {
		t.Error("TierFor past the last bounded tier: ok = true")
	}
}

func TestDefaultHasNoTiers(t *testing.T) {
	c := defaultCatalogT(t)
	if got := c.Tiers(ModelPMP, mustDay(t, "2026-01-01"), "IN", Utility, "USD"); got != nil {
		t.Errorf("default Tiers = %v, want nil (tiers.csv has no rows)", got)
	}
}
