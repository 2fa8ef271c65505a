package pricing

import "testing"

func TestCountry(t *testing.T) {
	c := defaultCatalogT(t)
	f := func(waID uint64, want string) {
		t.Helper()
		if got := c.Country(waID); got != want {
			t.Errorf("Country(%d) = %q, want %q", waID, got, want)
		}
	}
	f(14155550100, "US")
	f(5511987654321, "BR")
	f(263771234567, "ZW")
	f(18095551234, "DO")  // shares +1 with the US
	f(77011234567, "KZ")  // shares +7 with Russia
	f(79161234567, "RU")  // +7 Russia
	f(918000000000, "IN") // +91
	f(8001234567, "")     // +800 international freephone: no country
	f(99912345, "")       // +999 is not assigned
	f(0, "")
}
