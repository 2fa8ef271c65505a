package sink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/wameter/wameter/pkg/billing"
)

// The rows-topic encoding, format 1:
//
//	byte     format (1)
//	byte     row type (Table)
//	[16]byte id
//	conversation: uvarint portfolio, waba, phone_number_id, customer;
//	    string market; byte category, model, rule set;
//	    varint opened_at, expires_at (Unix s); string opening_message_id,
//	    meta_conversation_id
//	charge: uvarint portfolio, waba, phone_number_id, customer;
//	    string market; byte category, model, rule set, pricing type,
//	    billing unit; varint charged_at; byte has_conversation, then [16]byte
//	    conversation id if 1; string message_id, meta_conversation_id,
//	    meta_category, meta_pricing_model, currency; varint amount (micros);
//	    string rate_card; uvarint tier
//
// A string is a uvarint length and that many bytes. Enumerations are
// pkg/billing's values (their numbering is part of format 1, pinned by
// TestEncodingGolden). A change of layout takes a new format byte, and the
// decoder keeps reading the old one for as long as the topic retains it.
const formatV1 = 1

// Limits the decoder enforces, so that a row it accepts is one ClickHouse
// stores as given.
const (
	maxAmountMicro = 999_999_999_999_999_999 // Decimal(18,6): 18 digits
	maxDateTime    = math.MaxUint32          // DateTime: UInt32 seconds
)

// errTruncated is wrapped by every decode error about a row cut short.
var errTruncated = errors.New("truncated")

// AppendConversationRow appends the encoding of c, with the portfolio of its
// WABA (0 when unknown), to dst and returns the extended slice. Key the
// message with c.ID().
func AppendConversationRow(dst []byte, c *billing.Conversation, portfolio uint64) []byte {
	id := c.ID()
	dst = append(dst, formatV1, byte(TableConversations))
	dst = append(dst, id[:]...)
	dst = binary.AppendUvarint(dst, portfolio)
	dst = binary.AppendUvarint(dst, c.WABA)
	dst = binary.AppendUvarint(dst, c.PhoneNumberID)
	dst = binary.AppendUvarint(dst, c.Customer)
	dst = appendString(dst, c.Market)
	dst = append(dst, byte(c.Category), byte(c.Model), byte(c.RuleSet))
	dst = binary.AppendVarint(dst, c.OpenedAt)
	dst = binary.AppendVarint(dst, c.ExpiresAt)
	dst = appendString(dst, c.OpeningMessageID)
	return appendString(dst, c.MetaConversationID)
}

// AppendChargeRow appends the encoding of the priced unit u, with the
// portfolio of its WABA (0 when unknown), to dst and returns the extended
// slice. Key the message with u.ID().
func AppendChargeRow(dst []byte, u *billing.Unit, portfolio uint64) []byte {
	id := u.ID()
	dst = append(dst, formatV1, byte(TableCharges))
	dst = append(dst, id[:]...)
	dst = binary.AppendUvarint(dst, portfolio)
	dst = binary.AppendUvarint(dst, u.WABA)
	dst = binary.AppendUvarint(dst, u.PhoneNumberID)
	dst = binary.AppendUvarint(dst, u.Customer)
	dst = appendString(dst, u.Market)
	dst = append(dst, byte(u.Category), byte(u.Model), byte(u.RuleSet), byte(u.PricingType), byte(u.BillingUnit))
	dst = binary.AppendVarint(dst, u.ChargedAt)
	if conv, ok := u.ConversationID(); ok {
		dst = append(dst, 1)
		dst = append(dst, conv[:]...)
	} else {
		dst = append(dst, 0)
	}
	dst = appendString(dst, u.MessageID)
	dst = appendString(dst, u.MetaConversationID)
	dst = appendString(dst, u.MetaCategory)
	dst = appendString(dst, u.MetaPricingModel)
	dst = appendString(dst, u.Currency)
	dst = binary.AppendVarint(dst, u.AmountMicro)
	dst = appendString(dst, u.RateCard)
	// A negative tier is a bug upstream; encoded as a huge value, the decoder
	// rejects it instead of storing a wrapped UInt16.
	return binary.AppendUvarint(dst, uint64(int64(u.Tier)))
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// DecodeRow decodes one rows-topic message into r, overwriting it. It
// rejects with an error, never a panic, anything that is not a whole,
// valid row: unknown format or row type, truncation, trailing bytes,
// unknown enumeration values, and values the columns cannot hold.
// r's string fields may share one copy of b; b itself is not retained.
func DecodeRow(b []byte, r *Row) error {
	if len(b) < 2 {
		*r = Row{}
		return fmt.Errorf("decode row: header: %w", errTruncated)
	}
	return DecodeRowString(string(b), r)
}

// DecodeRowString is DecodeRow of a string: r's string fields are
// substrings of s (a consumer of packed records copies each record once).
func DecodeRowString(s string, r *Row) error {
	*r = Row{}
	if len(s) < 2 {
		return fmt.Errorf("decode row: header: %w", errTruncated)
	}
	if s[0] != formatV1 {
		return fmt.Errorf("decode row: unknown format %d", s[0])
	}
	t := Table(s[1])
	d := decoder{s: s, off: 2}
	switch t {
	case TableConversations:
		d.conversation(&r.Conversation)
	case TableCharges:
		d.charge(&r.Charge)
	default:
		return fmt.Errorf("decode row: unknown row type %d", s[1])
	}
	if d.err == nil && d.off != len(d.s) {
		d.err = fmt.Errorf("%d trailing bytes", len(d.s)-d.off)
	}
	if d.err != nil {
		*r = Row{}
		return fmt.Errorf("decode %s row: %w", t, d.err)
	}
	r.Table = t
	return nil
}

// decoder reads fields from s, a string copy of the message, so that string
// fields are substrings of it. The first error sticks in err and turns every
// later read into a zero value.
type decoder struct {
	s   string
	off int
	err error
}

func (d *decoder) fail(field string, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: %w", field, err)
	}
}

func (d *decoder) id(field string) string {
	if d.err != nil {
		return ""
	}
	var id billing.ID
	if len(d.s)-d.off < len(id) {
		d.fail(field, errTruncated)
		return ""
	}
	copy(id[:], d.s[d.off:])
	d.off += len(id)
	return hexID(&id)
}

func (d *decoder) byte(field string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.s) {
		d.fail(field, errTruncated)
		return 0
	}
	c := d.s[d.off]
	d.off++
	return c
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	var v uint64
	var shift uint
	for i := 0; ; i++ {
		if d.off >= len(d.s) {
			d.fail(field, errTruncated)
			return 0
		}
		c := d.s[d.off]
		d.off++
		if i == binary.MaxVarintLen64-1 && c > 1 {
			d.fail(field, errors.New("varint overflows 64 bits"))
			return 0
		}
		if c < 0x80 {
			return v | uint64(c)<<shift
		}
		v |= uint64(c&0x7f) << shift
		shift += 7
	}
}

func (d *decoder) varint(field string) int64 {
	u := d.uvarint(field)
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (d *decoder) str(field string) string {
	n := d.uvarint(field)
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)-d.off) {
		d.fail(field, errTruncated)
		return ""
	}
	s := d.s[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

// metaID renders a numeric Meta id as its decimal digits, 0 as unknown ("").
func (d *decoder) metaID(field string) string {
	v := d.uvarint(field)
	if v == 0 {
		return ""
	}
	return strconv.FormatUint(v, 10)
}

func (d *decoder) unix(field string) time.Time {
	v := d.varint(field)
	if d.err == nil && (v < 0 || v > maxDateTime) {
		d.fail(field, fmt.Errorf("%d outside DateTime's range", v))
	}
	return time.Unix(v, 0).UTC()
}

func (d *decoder) category(field string) string {
	v := d.byte(field)
	s := billing.Category(v).String()
	if d.err == nil && s == "invalid" {
		d.fail(field, fmt.Errorf("unknown category %d", v))
	}
	return s
}

func (d *decoder) model(field string) string {
	v := billing.Model(d.byte(field))
	if d.err == nil && v > billing.PMP {
		d.fail(field, fmt.Errorf("unknown pricing model %d", v))
	}
	return v.String()
}

func (d *decoder) ruleSet(field string) string {
	v := d.byte(field)
	s := billing.RuleSet(v).String()
	if d.err == nil && s == "invalid" {
		d.fail(field, fmt.Errorf("unknown rule set %d", v))
	}
	return s
}

func (d *decoder) conversation(c *ConversationRow) {
	c.ConversationID = d.id("conversation_id")
	c.PortfolioID = d.metaID("portfolio_id")
	c.WABAID = d.metaID("waba_id")
	c.PhoneNumberID = d.metaID("phone_number_id")
	c.CustomerWaID = d.metaID("customer_wa_id")
	c.Market = d.str("market")
	c.Category = d.category("category")
	c.PricingModel = d.model("pricing_model")
	c.RuleSet = d.ruleSet("rule_set")
	c.OpenedAt = d.unix("opened_at")
	c.ExpiresAt = d.unix("expires_at")
	c.OpeningMessageID = d.str("opening_message_id")
	c.MetaConversationID = d.str("meta_conversation_id")
}

func (d *decoder) charge(c *ChargeRow) {
	c.ChargeID = d.id("charge_id")
	c.PortfolioID = d.metaID("portfolio_id")
	c.WABAID = d.metaID("waba_id")
	c.PhoneNumberID = d.metaID("phone_number_id")
	c.CustomerWaID = d.metaID("customer_wa_id")
	c.Market = d.str("market")
	c.Category = d.category("category")
	c.PricingModel = d.model("pricing_model")
	c.RuleSet = d.ruleSet("rule_set")

	pt := billing.PricingType(d.byte("pricing_type"))
	c.PricingType = pt.String()
	if d.err == nil && (pt == billing.PTNone || pt == billing.PTChargeable || c.PricingType == "invalid") {
		// chargeable is the window stage's placeholder: a charge row leaves
		// the account stage with its final pricing type (spec 6).
		d.fail("pricing_type", fmt.Errorf("%d (%s) is not a charge's pricing type", pt, c.PricingType))
	}
	bu := billing.BillingUnit(d.byte("billing_unit"))
	c.BillingUnit = bu.String()
	if d.err == nil && bu != billing.UnitConversation && bu != billing.UnitMessage {
		d.fail("billing_unit", fmt.Errorf("unknown billing unit %d", bu))
	}
	c.ChargedAt = d.unix("charged_at")
	switch has := d.byte("conversation_id"); {
	case d.err != nil:
	case has == 1:
		c.ConversationID = d.id("conversation_id")
	case has != 0:
		d.fail("conversation_id", fmt.Errorf("presence byte %d", has))
	}
	c.MessageID = d.str("message_id")
	c.MetaConversationID = d.str("meta_conversation_id")
	c.MetaCategory = d.str("meta_category")
	c.MetaPricingModel = d.str("meta_pricing_model")
	c.Currency = d.str("currency")
	c.AmountMicro = d.varint("amount")
	if d.err == nil && (c.AmountMicro > maxAmountMicro || c.AmountMicro < -maxAmountMicro) {
		d.fail("amount", fmt.Errorf("%d micros outside Decimal(18,6)", c.AmountMicro))
	}
	c.RateCard = d.str("rate_card")
	tier := d.uvarint("tier")
	if d.err == nil && tier > math.MaxUint16 {
		d.fail("tier", fmt.Errorf("%d outside UInt16", tier))
	}
	c.Tier = uint16(tier)
}
