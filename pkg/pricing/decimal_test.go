package pricing

import "testing"

func TestParseMicros(t *testing.T) {
	f := func(s string, want int64, wantErr bool) {
		t.Helper()
		got, err := ParseMicros(s)
		if (err != nil) != wantErr {
			t.Fatalf("ParseMicros(%q) error = %v, want error %v", s, err, wantErr)
		}
		if got != want {
			t.Errorf("ParseMicros(%q) = %d, want %d", s, got, want)
		}
	}
	f("0.0250", 25000, false)
	f("0.025", 25000, false)
	f("0", 0, false)
	f("0.0000", 0, false)
	f("1", 1_000_000, false)
	f("12.5", 12_500_000, false)
	f("0.000001", 1, false)
	f("0.1360", 136000, false)
	f("999999999999.999999", 999_999_999_999_999_999, false)
	// Rejected: more than 6 decimals, signs, exponents, empty parts, junk.
	f("0.0000001", 0, true)
	f("-0.01", 0, true)
	f("+0.01", 0, true)
	f("1e-3", 0, true)
	f(".5", 0, true)
	f("1.", 0, true)
	f("", 0, true)
	f("0,025", 0, true)
	f("0.02 5", 0, true)
	f("1000000000000", 0, true)
}
