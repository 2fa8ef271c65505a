package webhook

import (
	"math"

	"github.com/wameter/wameter/pkg/billing"
)

// maxTime is 2100-01-01T00:00:00Z: later timestamps are taken for
// milliseconds or garbage rather than for seconds.
const maxTime = 4102444800

// parseID parses a numeric Meta id (WABA, phone_number_id, wa_id): decimal
// digits without leading zeros, optionally after one '+', that fit a uint64.
// "0" parses as 0; callers that need a real id check for it.
func parseID(b []byte) (uint64, bool) {
	if len(b) > 0 && b[0] == '+' {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if b[0] == '0' {
		return 0, len(b) == 1
	}
	var n uint64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// parseSeconds parses whole Unix seconds in (0, maxTime].
func parseSeconds(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 10 || b[0] == '0' {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n <= maxTime
}

// appendPhoneDigits appends the digits of a phone number as people write it
// ("+1 (650) 555-1234"), dropping '+', spaces, dashes and parentheses. ok is
// false for any other character.
func appendPhoneDigits(dst, b []byte) ([]byte, bool) {
	for _, c := range b {
		switch {
		case isDigit(c):
			dst = append(dst, c)
		case c == '+' || c == ' ' || c == '-' || c == '(' || c == ')':
		default:
			return dst, false
		}
	}
	return dst, true
}

// normalizeCategory lower-cases a category and spells '-' as '_' into buf.
func normalizeCategory(buf, b []byte) []byte {
	buf = buf[:0]
	for _, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '-':
			c = '_'
		}
		buf = append(buf, c)
	}
	return buf
}

// pricingCategory maps a normalised webhook pricing.category to the
// message kind (spec 1.1): under PMP the message's own category, under CBP
// the category of the conversation it fell into.
func pricingCategory(norm []byte) billing.MsgKind {
	switch string(norm) {
	case "marketing":
		return billing.KindMarketing
	case "utility":
		return billing.KindUtility
	case "authentication":
		return billing.KindAuthentication
	case "authentication_international":
		return billing.KindAuthenticationIntl
	case "service", "referral_conversion":
		return billing.KindNonTemplate
	case "business_initiated", "user_initiated":
		return billing.KindLegacy
	}
	return billing.KindUnknown
}

// templateCategory maps a normalised send record template category.
func templateCategory(norm []byte) (billing.MsgKind, bool) {
	switch string(norm) {
	case "marketing":
		return billing.KindMarketing, true
	case "utility":
		return billing.KindUtility, true
	case "authentication":
		return billing.KindAuthentication, true
	case "authentication_international":
		return billing.KindAuthenticationIntl, true
	}
	return billing.KindUnknown, false
}

func statusKind(b []byte) billing.StatusKind {
	switch string(b) {
	case "sent":
		return billing.StatusSent
	case "delivered":
		return billing.StatusDelivered
	case "read":
		return billing.StatusRead
	case "failed":
		return billing.StatusFailed
	}
	return billing.StatusOther
}
