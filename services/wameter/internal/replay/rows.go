package replay

import (
	"bufio"
	"encoding/csv"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/wameter/wameter/pkg/accounts"
	"github.com/wameter/wameter/pkg/billing"
)

// rows are the derived rows selected for output (-what, -customer), in
// Derive's order, with what the columns need beyond the engine's types.
type rows struct {
	conversations []billing.Conversation
	charges       []billing.Unit
	book          *accounts.Book
}

func rowsFor(res billing.Result, opts options, book *accounts.Book) rows {
	out := rows{book: book}
	keep := func(customer uint64) bool { return opts.customer == 0 || customer == opts.customer }
	if opts.what != "charges" {
		for _, c := range res.Conversations {
			if keep(c.Customer) {
				out.conversations = append(out.conversations, c)
			}
		}
	}
	if opts.what != "conversations" {
		for _, u := range res.Charges {
			if keep(u.Customer) {
				out.charges = append(out.charges, u)
			}
		}
	}
	return out
}

// column is one output column: its name (the ClickHouse column) and how to
// append its value for a row. Numeric columns are unquoted in JSON.
type column[T any] struct {
	name    string
	numeric bool
	value   func(dst []byte, r *T, book *accounts.Book) []byte
}

// conversationColumns are the columns of the conversations table (less the
// sink's bookkeeping columns), in table order.
var conversationColumns = []column[billing.Conversation]{
	{name: "conversation_id", value: func(d []byte, c *billing.Conversation, _ *accounts.Book) []byte {
		id := c.ID()
		return appendHex(d, id[:])
	}},
	{name: "waba_id", value: func(d []byte, c *billing.Conversation, _ *accounts.Book) []byte { return appendID(d, c.WABA) }},
	{name: "portfolio_id", value: func(d []byte, c *billing.Conversation, b *accounts.Book) []byte { return appendPortfolio(d, b, c.WABA) }},
	{name: "phone_number_id", value: func(d []byte, c *billing.Conversation, _ *accounts.Book) []byte { return appendID(d, c.PhoneNumberID) }},
	{name: "customer_wa_id", value: func(d []byte, c *billing.Conversation, _ *accounts.Book) []byte { return appendID(d, c.Customer) }},
	{name: "market", value: func(d []byte, c *billing.Conversation, _ *accounts.Book) []byte { return append(d, c.Market...) }},
	{name: "category", value: func(d []byte, c *billing.Conversation, _ *accounts.Book) []byte {
		return append(d, c.Category.String()...)
	}},
	{name: "pricing_model", value: func(d []byte, c *billing.Conversation, _ *accounts.Book) []byte {
		return append(d, c.Model.String()...)
	}},
	{name: "rule_set", value: func(d []byte, c *billing.Conversation, _ *accounts.Book) []byte {
		return append(d, c.RuleSet.String()...)
	}},
	{name: "opened_at", value: func(d []byte, c *billing.Conversation, _ *accounts.Book) []byte { return appendTime(d, c.OpenedAt) }},
	{name: "expires_at", value: func(d []byte, c *billing.Conversation, _ *accounts.Book) []byte { return appendTime(d, c.ExpiresAt) }},
	{name: "opening_message_id", value: func(d []byte, c *billing.Conversation, _ *accounts.Book) []byte {
		return append(d, c.OpeningMessageID...)
	}},
	{name: "meta_conversation_id", value: func(d []byte, c *billing.Conversation, _ *accounts.Book) []byte {
		return append(d, c.MetaConversationID...)
	}},
}

// chargeColumns are the columns of the charges table, in table order.
var chargeColumns = []column[billing.Unit]{
	{name: "charge_id", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte {
		id := u.ID()
		return appendHex(d, id[:])
	}},
	{name: "waba_id", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte { return appendID(d, u.WABA) }},
	{name: "portfolio_id", value: func(d []byte, u *billing.Unit, b *accounts.Book) []byte { return appendPortfolio(d, b, u.WABA) }},
	{name: "phone_number_id", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte { return appendID(d, u.PhoneNumberID) }},
	{name: "customer_wa_id", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte { return appendID(d, u.Customer) }},
	{name: "market", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte { return append(d, u.Market...) }},
	{name: "category", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte { return append(d, u.Category.String()...) }},
	{name: "pricing_model", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte { return append(d, u.Model.String()...) }},
	{name: "pricing_type", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte { return append(d, u.PricingType.String()...) }},
	{name: "billing_unit", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte { return append(d, u.BillingUnit.String()...) }},
	{name: "conversation_id", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte {
		if id, ok := u.ConversationID(); ok {
			return appendHex(d, id[:])
		}
		return d
	}},
	{name: "message_id", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte { return append(d, u.MessageID...) }},
	{name: "charged_at", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte { return appendTime(d, u.ChargedAt) }},
	{name: "currency", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte { return append(d, u.Currency...) }},
	{name: "amount", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte { return appendMicros(d, u.AmountMicro) }},
	{name: "rate_card", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte { return append(d, u.RateCard...) }},
	{name: "tier", numeric: true, value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte {
		return strconv.AppendInt(d, int64(u.Tier), 10)
	}},
	{name: "rule_set", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte { return append(d, u.RuleSet.String()...) }},
	{name: "meta_conversation_id", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte { return append(d, u.MetaConversationID...) }},
	{name: "meta_category", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte { return append(d, u.MetaCategory...) }},
	{name: "meta_pricing_model", value: func(d []byte, u *billing.Unit, _ *accounts.Book) []byte { return append(d, u.MetaPricingModel...) }},
}

// Values of the "row" field (JSON lines) and column (CSV).
const (
	rowConversation = "conversation"
	rowCharge       = "charge"
)

// writeRows prints the rows: JSON lines with a "row" field, or CSV with one
// header line per section (conversations, then charges; an empty line
// between them).
func writeRows(w *bufio.Writer, out rows, opts options) error {
	if opts.format == "csv" {
		cw := csv.NewWriter(w)
		if opts.what != "charges" {
			writeCSV(cw, rowConversation, conversationColumns, out.conversations, out.book)
		}
		if opts.what == "both" {
			cw.Flush()
			_ = w.WriteByte('\n')
		}
		if opts.what != "conversations" {
			writeCSV(cw, rowCharge, chargeColumns, out.charges, out.book)
		}
		cw.Flush()
		return cw.Error()
	}
	var buf []byte
	for i := range out.conversations {
		buf = appendJSONRow(buf[:0], rowConversation, conversationColumns, &out.conversations[i], out.book)
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	for i := range out.charges {
		buf = appendJSONRow(buf[:0], rowCharge, chargeColumns, &out.charges[i], out.book)
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

func writeCSV[T any](cw *csv.Writer, kind string, cols []column[T], list []T, book *accounts.Book) {
	record := make([]string, 1+len(cols))
	record[0] = "row"
	for i, c := range cols {
		record[1+i] = c.name
	}
	_ = cw.Write(record)
	var buf []byte
	for r := range list {
		record[0] = kind
		for i, c := range cols {
			buf = c.value(buf[:0], &list[r], book)
			record[1+i] = string(buf)
		}
		_ = cw.Write(record)
	}
}

// appendJSONRow appends one row as a JSON object and a newline.
func appendJSONRow[T any](dst []byte, kind string, cols []column[T], r *T, book *accounts.Book) []byte {
	dst = append(dst, `{"row":"`...)
	dst = append(dst, kind...)
	dst = append(dst, '"')
	var buf []byte
	for _, c := range cols {
		dst = append(dst, `,"`...)
		dst = append(dst, c.name...)
		dst = append(dst, `":`...)
		buf = c.value(buf[:0], r, book)
		if c.numeric {
			dst = append(dst, buf...)
		} else {
			dst = appendJSONString(dst, buf)
		}
	}
	return append(dst, "}\n"...)
}

// appendJSONString appends s as a JSON string. s comes from decoded input
// (message ids) and may hold anything: quotes, controls, invalid UTF-8.
func appendJSONString(dst, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, `\n`...)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
		i++
	}
	return append(dst, '"')
}

// appendID appends a numeric Meta id; 0 (unknown) is empty, as in ClickHouse.
func appendID(dst []byte, id uint64) []byte {
	if id == 0 {
		return dst
	}
	return strconv.AppendUint(dst, id, 10)
}

func appendPortfolio(dst []byte, book *accounts.Book, waba uint64) []byte {
	if waba == 0 {
		return dst
	}
	return appendID(dst, book.Get(waba).Portfolio)
}

func appendTime(dst []byte, unix int64) []byte {
	return time.Unix(unix, 0).UTC().AppendFormat(dst, time.RFC3339)
}

func appendHex(dst, b []byte) []byte {
	const hexDigits = "0123456789abcdef"
	for _, c := range b {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

// appendMicros appends an amount in millionths as a decimal with exactly
// six decimals ("0.025000"): money never goes through a float.
func appendMicros(dst []byte, micros int64) []byte {
	u := uint64(micros)
	if micros < 0 {
		dst = append(dst, '-')
		u = -u
	}
	dst = strconv.AppendUint(dst, u/1_000_000, 10)
	frac := u % 1_000_000
	dst = append(dst, '.')
	for div := uint64(100_000); div > 0; div /= 10 {
		dst = append(dst, byte('0'+frac/div%10))
	}
	return dst
}

func formatMicros(micros int64) string { return string(appendMicros(nil, micros)) }
