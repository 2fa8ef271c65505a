package pricing

import (
	"testing"
	"time"
)

func TestDayOf(t *testing.T) {
	saoPaulo := mustLocation(t, "America/Sao_Paulo")
	tokyo := mustLocation(t, "Asia/Tokyo")
	f := func(instant string, loc *time.Location, want string) {
		t.Helper()
		ts, err := time.Parse(time.RFC3339, instant)
		if err != nil {
			t.Fatal(err)
		}
		if got := DayOf(ts.Unix(), loc).String(); got != want {
			t.Errorf("DayOf(%s, %v) = %s, want %s", instant, loc, got, want)
		}
	}
	f("2025-07-01T00:00:00Z", nil, "2025-07-01")
	f("2025-06-30T23:59:59Z", time.UTC, "2025-06-30")
	// 02:59:59 UTC is still the previous day in Sao Paulo (UTC-3).
	f("2025-07-01T02:59:59Z", saoPaulo, "2025-06-30")
	f("2025-07-01T03:00:00Z", saoPaulo, "2025-07-01")
	// 15:00 UTC is already the next day in Tokyo (UTC+9).
	f("2025-06-30T15:00:00Z", tokyo, "2025-07-01")
	f("2025-06-30T14:59:59Z", tokyo, "2025-06-30")
	// Before the epoch the division must round down.
	f("1969-12-31T23:59:59Z", nil, "1969-12-31")
	f("1970-01-01T00:00:00Z", nil, "1970-01-01")
}

func TestParseDay(t *testing.T) {
	f := func(s string, want Day, wantErr bool) {
		t.Helper()
		got, err := ParseDay(s)
		if (err != nil) != wantErr {
			t.Fatalf("ParseDay(%q) error = %v, want error %v", s, err, wantErr)
		}
		if err == nil && got != want {
			t.Errorf("ParseDay(%q) = %d, want %d", s, got, want)
		}
		if err == nil && got.String() != s {
			t.Errorf("ParseDay(%q).String() = %q", s, got.String())
		}
	}
	f("1970-01-01", 0, false)
	f("1970-01-02", 1, false)
	f("1969-12-31", -1, false)
	f("2025-07-01", 20270, false)
	f("", 0, true)
	f("2025-7-1", 0, true)
	f("2025-02-30", 0, true)
	f("2025-07-01T00:00:00Z", 0, true)
	f(" 2025-07-01", 0, true)
}

func TestDayTime(t *testing.T) {
	saoPaulo := mustLocation(t, "America/Sao_Paulo")
	d := mustDay(t, "2025-07-01")
	if got, want := d.Time(saoPaulo).UTC().Format(time.RFC3339), "2025-07-01T03:00:00Z"; got != want {
		t.Errorf("Time(Sao_Paulo) = %s, want %s", got, want)
	}
	if got := DayOf(d.Time(saoPaulo).Unix(), saoPaulo); got != d {
		t.Errorf("DayOf(Time) = %s, want %s", got, d)
	}
}
