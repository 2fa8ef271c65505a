package pricing

import (
	"errors"
	"fmt"
)

// microsPerUnit is the scale of every amount: millionths of the currency,
// as stored in ClickHouse Decimal(18,6).
const microsPerUnit = 1_000_000

// maxIntegerDigits bounds the integer part so that the amount in micros
// fits an int64 with room to spare.
const maxIntegerDigits = 12

var errNotDecimal = errors.New("want digits with an optional '.' and at most 6 decimals")

// ParseMicros parses a non-negative decimal such as "0.0250" into millionths
// (25000), exactly: no floating point is involved. It rejects signs,
// exponents, more than 6 decimals and empty parts ("", ".5", "1.").
func ParseMicros(s string) (int64, error) {
	var intPart, fracPart string
	intPart = s
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			intPart, fracPart = s[:i], s[i+1:]
			if fracPart == "" {
				return 0, fmt.Errorf("bad decimal %q: %w", s, errNotDecimal)
			}
			break
		}
	}
	if intPart == "" || !allDigits(intPart) || !allDigits(fracPart) {
		return 0, fmt.Errorf("bad decimal %q: %w", s, errNotDecimal)
	}
	if len(fracPart) > 6 {
		return 0, fmt.Errorf("bad decimal %q: more than 6 decimals", s)
	}
	if len(intPart) > maxIntegerDigits {
		return 0, fmt.Errorf("bad decimal %q: more than %d integer digits", s, maxIntegerDigits)
	}
	var v int64
	for i := 0; i < len(intPart); i++ {
		v = v*10 + int64(intPart[i]-'0')
	}
	v *= microsPerUnit
	scale := int64(microsPerUnit / 10)
	for i := 0; i < len(fracPart); i++ {
		v += int64(fracPart[i]-'0') * scale
		scale /= 10
	}
	return v, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
