package pricing

import (
	"slices"
	"testing"
)

func TestRate(t *testing.T) {
	c := defaultCatalogT(t)
	f := func(model, day, market, category, currency string, wantMicros int64, wantCard string, wantOK bool) {
		t.Helper()
		got, ok := c.Rate(model, mustDay(t, day), market, category, currency)
		if ok != wantOK || got.Micros != wantMicros || got.Card != wantCard {
			t.Errorf("Rate(%s, %s, %s, %s, %s) = %+v, %v; want {%d %s}, %v",
				model, day, market, category, currency, got, ok, wantMicros, wantCard, wantOK)
		}
	}
	const none = ""
	// CBP base card; valid_to is inclusive, the next day is another card.
	f("CBP", "2023-06-01", "NORTH_AMERICA", Marketing, "USD", 25000, "CBP/USD/2023-06-01", true)
	f("CBP", "2024-05-31", "AE", Marketing, "USD", 34000, "CBP/USD/2023-06-01", true)
	f("CBP", "2024-06-01", "AE", Marketing, "USD", 34000, "CBP/USD/2024-06-01", true)
	// Indonesia has an authentication-international rate from 2024-06-01 only.
	f("CBP", "2024-05-31", "ID", AuthenticationInternational, "USD", 0, none, false)
	f("CBP", "2024-06-01", "ID", AuthenticationInternational, "USD", 136000, "CBP/USD/2024-06-01", true)
	// India: no authentication rate before 2024-07-01 (empty cell = no rate, not 0).
	f("CBP", "2023-06-01", "IN", Authentication, "USD", 0, none, false)
	f("CBP", "2024-06-30", "IN", Authentication, "USD", 0, none, false)
	f("CBP", "2024-07-01", "IN", Authentication, "USD", 1400, "CBP/USD/2024-07-01", true)
	f("CBP", "2024-07-01", "IN", AuthenticationInternational, "USD", 28000, "CBP/USD/2024-07-01", true)
	// Service is a real zero from 2024-11-01, not "no rate".
	f("CBP", "2024-10-31", "BR", Service, "USD", 30000, "CBP/USD/2024-10-01", true)
	f("CBP", "2024-11-01", "BR", Service, "USD", 0, "CBP/USD/2024-11-01", true)
	// Before the first card and after the last CBP card there is no CBP rate.
	f("CBP", "2023-05-31", "BR", Marketing, "USD", 0, none, false)
	f("CBP", "2025-07-01", "BR", Marketing, "USD", 0, none, false)
	// PMP cards, with a quarter boundary.
	f("PMP", "2025-07-01", "BR", Marketing, "USD", 62500, "PMP/USD/2025-07-01", true)
	f("PMP", "2025-12-31", "NORTH_AMERICA", Utility, "USD", 4000, "PMP/USD/2025-10-01", true)
	f("PMP", "2026-01-01", "NORTH_AMERICA", Utility, "USD", 3400, "PMP/USD/2026-01-01", true)
	// The open-ended last card.
	f("PMP", "2030-01-01", "KZ", Utility, "USD", 18000, "PMP/USD/2026-10-01", true)
	// Saudi Arabia has no row for July-September 2025 (a known gap).
	f("PMP", "2025-09-30", "SA", Marketing, "USD", 0, none, false)
	f("PMP", "2025-10-01", "SA", Marketing, "USD", 45500, "PMP/USD/2025-10-01", true)
	// Unknown currency, market, category or model.
	f("PMP", "2025-10-01", "BR", Marketing, "EUR", 0, none, false)
	f("PMP", "2025-10-01", "XX", Marketing, "USD", 0, none, false)
	f("PMP", "2025-10-01", "BR", "referral_conversion", "USD", 0, none, false)
	f("XYZ", "2025-10-01", "BR", Marketing, "USD", 0, none, false)
}

func TestCurrencies(t *testing.T) {
	c := defaultCatalogT(t)
	if got := c.Currencies(); !slices.Equal(got, []string{"USD"}) {
		t.Errorf("Currencies() = %q, want [USD]", got)
	}
	if !c.HasCurrency("USD") {
		t.Error("HasCurrency(USD) = false")
	}
	if c.HasCurrency("EUR") || c.HasCurrency("") {
		t.Error("HasCurrency(EUR or empty) = true")
	}
}
