package pricing

import (
	"fmt"
	"math"
	"time"
)

// Day is a local calendar date, counted in days since 1970-01-01. It is not
// an instant: the same instant falls on different Days in different time
// zones, and rates and markets change at local midnight in the WABA's zone
// (spec 3). Get one with DayOf.
type Day int32

const (
	// dayMin and dayMax stand for an open validity bound (empty cell).
	dayMin Day = math.MinInt32
	dayMax Day = math.MaxInt32

	secondsPerDay = 24 * 60 * 60
)

// DayOf returns the calendar date of the Unix instant unix in loc (nil means
// UTC). It does not allocate.
func DayOf(unix int64, loc *time.Location) Day {
	if loc == nil {
		loc = time.UTC
	}
	_, offset := time.Unix(unix, 0).In(loc).Zone()
	local := unix + int64(offset)
	days := local / secondsPerDay
	if local%secondsPerDay < 0 {
		days--
	}
	return Day(days)
}

// ParseDay parses a date written YYYY-MM-DD.
func ParseDay(s string) (Day, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, fmt.Errorf("bad date %q: want YYYY-MM-DD", s)
	}
	return Day(t.Unix() / secondsPerDay), nil
}

// String returns the date as YYYY-MM-DD.
func (d Day) String() string {
	return d.Time(time.UTC).Format(time.DateOnly)
}

// Time returns local midnight at the start of d in loc (nil means UTC): the
// instant at which a rate card or rule set dated d takes effect there.
func (d Day) Time(loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	y, m, dd := time.Unix(int64(d)*secondsPerDay, 0).UTC().Date()
	return time.Date(y, m, dd, 0, 0, 0, 0, loc)
}

// dayBound formats a validity bound for messages: open bounds print as "open".
func dayBound(d Day) string {
	if d == dayMin || d == dayMax {
		return "open"
	}
	return d.String()
}

// span is an inclusive range of local dates.
type span struct {
	from, to Day
}

func (s span) contains(d Day) bool { return s.from <= d && d <= s.to }

func (s span) String() string { return dayBound(s.from) + ".." + dayBound(s.to) }

// parseSpan parses the valid_from and valid_to cells (inclusive, empty =
// open) and checks that the range is not empty.
func parseSpan(from, to string) (span, error) {
	s := span{from: dayMin, to: dayMax}
	var errs []error
	if from != "" {
		d, err := ParseDay(from)
		if err != nil {
			errs = append(errs, fmt.Errorf("valid_from: %w", err))
		}
		s.from = d
	}
	if to != "" {
		d, err := ParseDay(to)
		if err != nil {
			errs = append(errs, fmt.Errorf("valid_to: %w", err))
		}
		s.to = d
	}
	if len(errs) > 0 {
		return s, joinInline(errs)
	}
	if s.to < s.from {
		return s, fmt.Errorf("valid_to %s is before valid_from %s", to, from)
	}
	return s, nil
}
