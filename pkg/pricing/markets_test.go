package pricing

import "testing"

func TestMarket(t *testing.T) {
	c := defaultCatalogT(t)
	f := func(waID uint64, day, want string) {
		t.Helper()
		if got := c.Market(waID, mustDay(t, day)); got != want {
			t.Errorf("Market(%d, %s) = %q, want %q", waID, day, got, want)
		}
	}
	// The longest prefix wins: +1 809 is the Dominican Republic, not North America.
	f(18095551234, "2025-07-01", "REST_OF_LATIN_AMERICA")
	f(14155550100, "2025-07-01", "NORTH_AMERICA")
	f(18765551234, "2023-06-01", "REST_OF_LATIN_AMERICA") // Jamaica
	f(12425551234, "2023-06-01", "OTHER")                 // Bahamas
	// Zimbabwe is OTHER until 2025-09-30 (inclusive), Rest of Africa from 2025-10-01.
	f(263771234567, "2023-06-01", "OTHER")
	f(263771234567, "2025-09-30", "OTHER")
	f(263771234567, "2025-10-01", "REST_OF_AFRICA")
	f(263771234567, "2030-01-01", "REST_OF_AFRICA")
	// Kazakhstan (+7 7xx, +7 6xx) leaves OTHER for its own market on 2026-10-01; the rest of +7 is Russia.
	f(77011234567, "2026-09-30", "OTHER")
	f(77011234567, "2026-10-01", "KZ")
	f(76012345678, "2026-09-30", "OTHER")
	f(76012345678, "2026-10-01", "KZ")
	f(79161234567, "2026-09-30", "RU")
	f(79161234567, "2026-10-01", "RU")
	// Standalone markets and the 2026-07-01 moves.
	f(5511987654321, "2025-07-01", "BR")
	f(6591234567, "2026-06-30", "REST_OF_ASIA_PACIFIC")
	f(6591234567, "2026-07-01", "SG")
	f(447911123456, "2025-07-01", "GB")
	// Unlisted or unassigned codes, and numbers shorter than any prefix.
	f(99912345, "2025-07-01", "OTHER")
	f(8001234567, "2025-07-01", "OTHER")
	f(0, "2025-07-01", "OTHER")
	f(2, "2025-07-01", "OTHER")
	f(1, "2025-07-01", "NORTH_AMERICA")
	// The largest uint64 has 20 digits; it starts with +1 (84467...).
	f(18446744073709551615, "2025-07-01", "NORTH_AMERICA")
}
