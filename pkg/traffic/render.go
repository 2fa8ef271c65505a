package traffic

import (
	"encoding/base64"
)

const upperHex = "0123456789ABCDEF"

// appendWamid appends a message id in the shape of Meta's: "wamid." and the
// base64 of a small protobuf-like blob holding the customer number, the
// direction and a hex id. The hex id is a bijection of the sequence number,
// so ids never repeat within a stream.
func (g *generator) appendWamid(dst []byte, customer, seq uint64, inbound bool) []byte {
	var blob [64]byte
	b := blob[:0]
	var digits [20]byte
	num := appendUint(digits[:0], customer)
	b = append(b, 0x1c, 0x18, byte(len(num)))
	b = append(b, num...)
	dir, n := byte(0x11), 18
	if inbound {
		dir, n = 0x12, 20
	}
	b = append(b, 0x15, 0x02, 0x00, dir, 0x18, byte(n))
	h := mix64(seq + g.salt)
	for i := 15; i >= 0; i-- {
		b = append(b, upperHex[h>>(4*uint(i))&0xf])
	}
	h2 := mix64(h)
	for i := 0; i < n-16; i++ {
		b = append(b, upperHex[h2>>(4*uint(i))&0xf])
	}
	b = append(b, 0x00)
	dst = append(dst, "wamid."...)
	return base64.StdEncoding.AppendEncode(dst, b)
}

// appendConversationID appends Meta's 32-hex-digit conversation id of one
// customer's conversation.
func (g *generator) appendConversationID(dst []byte, acct uint16, cust uint32, cat uint8, openedAt int64) []byte {
	h := mix64(g.salt ^ uint64(acct)<<40 ^ uint64(cust))
	h = mix64(h ^ uint64(openedAt)<<3 ^ uint64(cat))
	for _, v := range [2]uint64{h, mix64(h + 1)} {
		for i := 15; i >= 0; i-- {
			dst = append(dst, "0123456789abcdef"[v>>(4*uint(i))&0xf])
		}
	}
	return dst
}

func appendQuotedUint(dst []byte, v uint64) []byte {
	dst = append(dst, '"')
	dst = appendUint(dst, v)
	return append(dst, '"')
}

func appendInt(dst []byte, v int64) []byte {
	if v < 0 {
		dst = append(dst, '-')
		v = -v
	}
	return appendUint(dst, uint64(v))
}

func appendQuotedInt(dst []byte, v int64) []byte {
	dst = append(dst, '"')
	dst = appendInt(dst, v)
	return append(dst, '"')
}

// renderSend appends the send record of p (spec 1.1).
func (g *generator) renderSend(dst []byte, p *pending) []byte {
	as := &g.accts[p.acct]
	to := as.numbers[p.cust]
	dst = append(dst, `{"message_id":"`...)
	dst = g.appendWamid(dst, to, p.msg, false)
	dst = append(dst, `","waba_id":`...)
	dst = appendQuotedUint(dst, as.a.WABA)
	dst = append(dst, `,"phone_number_id":`...)
	dst = appendQuotedUint(dst, as.a.PhoneNumberIDs[p.phone])
	dst = append(dst, `,"to":`...)
	dst = appendQuotedUint(dst, to)
	dst = append(dst, `,"timestamp":`...)
	if as.a.NumericTimestamps {
		dst = appendInt(dst, p.ts)
	} else {
		dst = appendQuotedInt(dst, p.ts)
	}
	lang := countries[as.country[p.cust]].language
	switch p.sub {
	case mkMarketing, mkUtility, mkAuthentication:
		var names []string
		var category string
		switch p.sub {
		case mkMarketing:
			names, category = marketingTemplates, "MARKETING"
		case mkUtility:
			names, category = utilityTemplates, "UTILITY"
		default:
			names, category = authTemplates, "AUTHENTICATION"
		}
		dst = append(dst, `,"type":"template","template":{"name":"`...)
		dst = append(dst, names[int(p.idx)%len(names)]...)
		dst = append(dst, `","language":"`...)
		dst = append(dst, lang...)
		dst = append(dst, `","category":"`...)
		dst = append(dst, category...)
		dst = append(dst, `"}}`...)
	case mkInteractive:
		dst = append(dst, `,"type":"interactive","interactive":{"type":"button","body":{"text":"`...)
		dst = append(dst, businessTexts[int(p.idx)%len(businessTexts)]...)
		dst = append(dst, `"},"action":{"buttons":[`...)
		for i := range 2 {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"type":"reply","reply":{"id":"btn-`...)
			dst = appendUint(dst, uint64(i+1))
			dst = append(dst, `","title":"`...)
			dst = append(dst, buttonTitles[(int(p.idx)+i)%len(buttonTitles)]...)
			dst = append(dst, `"}}`...)
		}
		dst = append(dst, `]}}}`...)
	default:
		dst = append(dst, `,"type":"text","text":{"body":"`...)
		dst = append(dst, businessTexts[int(p.idx)%len(businessTexts)]...)
		dst = append(dst, `"}}`...)
	}
	return dst
}

// renderWebhook appends one webhook POST body holding the pending statuses
// or inbound messages of slots (all of one business number).
func (g *generator) renderWebhook(dst []byte, slots []int32) []byte {
	first := &g.slab[slots[0]]
	as := &g.accts[first.acct]
	onPrem := as.a.OnPremises
	if !onPrem {
		dst = append(dst, `{"object":"whatsapp_business_account","entry":[{"id":`...)
		dst = appendQuotedUint(dst, as.a.WABA)
		dst = append(dst, `,"changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":`...)
		dst = appendQuotedUint(dst, as.display[first.phone])
		dst = append(dst, `,"phone_number_id":`...)
		dst = appendQuotedUint(dst, as.a.PhoneNumberIDs[first.phone])
		dst = append(dst, `},`...)
	} else {
		dst = append(dst, '{')
	}
	if first.kind == recStatus {
		dst = append(dst, `"statuses":[`...)
		for i, s := range slots {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = g.renderStatus(dst, &g.slab[s], onPrem)
		}
		dst = append(dst, ']')
	} else {
		c := countries[as.country[first.cust]]
		dst = append(dst, `"contacts":[{"profile":{"name":"`...)
		dst = append(dst, c.names[mix64(uint64(first.cust)^g.salt)%uint64(len(c.names))]...)
		dst = append(dst, `"},"wa_id":`...)
		dst = appendQuotedUint(dst, as.numbers[first.cust])
		dst = append(dst, `}],"messages":[`...)
		for i, s := range slots {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = g.renderInbound(dst, &g.slab[s])
		}
		dst = append(dst, ']')
	}
	if !onPrem {
		dst = append(dst, `},"field":"messages"}]}]`...)
	}
	return append(dst, '}')
}

func (g *generator) renderStatus(dst []byte, p *pending, onPrem bool) []byte {
	as := &g.accts[p.acct]
	customer := as.numbers[p.cust]
	dst = append(dst, `{"id":"`...)
	dst = g.appendWamid(dst, customer, p.msg, false)
	dst = append(dst, `","status":"`...)
	switch p.sub {
	case stSent:
		dst = append(dst, "sent"...)
	case stDelivered:
		dst = append(dst, "delivered"...)
	case stRead:
		dst = append(dst, "read"...)
	default:
		dst = append(dst, "failed"...)
	}
	dst = append(dst, `","timestamp":`...)
	dst = appendQuotedInt(dst, p.ts)
	dst = append(dst, `,"recipient_id":`...)
	dst = appendQuotedUint(dst, customer)
	if onPrem {
		dst = append(dst, `,"type":"message"`...)
	}
	m := &p.meta
	// Meta leaves the pricing objects off CBP reads.
	if m.model != modelNone && !(m.model == modelCBP && p.sub == stRead) {
		if m.convCategory != 0 {
			dst = append(dst, `,"conversation":{"id":"`...)
			dst = g.appendConversationID(dst, p.acct, p.cust, m.convCategory, m.convOpenedAt)
			dst = append(dst, '"')
			if p.sub == stSent {
				dst = append(dst, `,"expiration_timestamp":`...)
				dst = appendQuotedInt(dst, m.convOpenedAt+m.convLength)
			}
			dst = append(dst, `,"origin":{"type":"`...)
			dst = append(dst, categoryNames[m.convCategory]...)
			dst = append(dst, `"}}`...)
		}
		dst = append(dst, `,"pricing":{"billable":`...)
		if m.billable {
			dst = append(dst, "true"...)
		} else {
			dst = append(dst, "false"...)
		}
		if m.model == modelPMP {
			dst = append(dst, `,"pricing_model":"PMP","type":"`...)
			dst = append(dst, pricingTypeNames[m.pricingType]...)
			dst = append(dst, '"')
		} else {
			dst = append(dst, `,"pricing_model":"CBP"`...)
		}
		dst = append(dst, `,"category":"`...)
		dst = append(dst, categoryNames[m.category]...)
		dst = append(dst, `"}`...)
	}
	if p.sub == stFailed {
		dst = append(dst, `,"errors":[{"code":131026,"title":"Message undeliverable","message":"Message undeliverable","error_data":{"details":"Message Undeliverable."}}]`...)
	}
	return append(dst, '}')
}

func (g *generator) renderInbound(dst []byte, p *pending) []byte {
	as := &g.accts[p.acct]
	customer := as.numbers[p.cust]
	dst = append(dst, '{')
	if p.ctx != 0 && p.sub != inReaction {
		dst = append(dst, `"context":{"from":`...)
		dst = appendQuotedUint(dst, as.display[p.phone])
		dst = append(dst, `,"id":"`...)
		dst = g.appendWamid(dst, customer, p.ctx, false)
		dst = append(dst, `"},`...)
	}
	if p.ref {
		dst = append(dst, `"referral":{"source_url":"https://fb.me/`...)
		dst = appendUint(dst, mix64(p.msg^g.salt)%1_000_000_000)
		dst = append(dst, `","source_id":"1202`...)
		dst = appendUint(dst, 10_000_000_000_000+mix64(uint64(p.acct)^g.salt)%90_000_000_000_000)
		dst = append(dst, `","source_type":"ad","body":"20% off your first order","headline":"Chat with us on WhatsApp","media_type":"image","image_url":"https://scontent.xx.fbcdn.net/v/t45.1600-4/`...)
		dst = appendUint(dst, mix64(uint64(p.acct))%1_000_000)
		dst = append(dst, `_n.png","ctwa_clid":"ARA`...)
		dst = base64.RawURLEncoding.AppendEncode(dst, g.clid(p.msg))
		dst = append(dst, `"},`...)
	}
	dst = append(dst, `"from":`...)
	dst = appendQuotedUint(dst, customer)
	dst = append(dst, `,"id":"`...)
	dst = g.appendWamid(dst, customer, p.msg, true)
	dst = append(dst, `","timestamp":`...)
	dst = appendQuotedInt(dst, p.ts)
	idx := int(p.idx)
	switch p.sub {
	case inButton:
		dst = append(dst, `,"type":"button","button":{"payload":"`...)
		title := buttonTitles[idx%len(buttonTitles)]
		for i := 0; i < len(title); i++ {
			c := title[i]
			switch {
			case c >= 'a' && c <= 'z':
				c -= 'a' - 'A'
			case c == ' ' || c == ',':
				c = '_'
			}
			dst = append(dst, c)
		}
		dst = append(dst, `","text":"`...)
		dst = append(dst, title...)
		dst = append(dst, `"}}`...)
	case inButtonReply, inListReply:
		kind := "button_reply"
		if p.sub == inListReply {
			kind = "list_reply"
		}
		dst = append(dst, `,"type":"interactive","interactive":{"type":"`...)
		dst = append(dst, kind...)
		dst = append(dst, `","`...)
		dst = append(dst, kind...)
		dst = append(dst, `":{"id":"btn-`...)
		dst = appendUint(dst, uint64(idx%2+1))
		dst = append(dst, `","title":"`...)
		dst = append(dst, buttonTitles[idx%len(buttonTitles)]...)
		dst = append(dst, `"}}}`...)
	case inImage:
		dst = append(dst, `,"type":"image","image":{"caption":"Here is the photo","mime_type":"image/jpeg","sha256":"`...)
		var sum [32]byte
		for i := range 4 {
			v := mix64(p.msg ^ g.salt + uint64(i))
			for j := range 8 {
				sum[i*8+j] = byte(v >> (8 * j))
			}
		}
		dst = base64.StdEncoding.AppendEncode(dst, sum[:])
		dst = append(dst, `","id":"`...)
		dst = appendUint(dst, 1_000_000_000_000_000+mix64(p.msg+g.salt)%9_000_000_000_000_000)
		dst = append(dst, `"}}`...)
	case inReaction:
		dst = append(dst, `,"type":"reaction","reaction":{"message_id":"`...)
		dst = g.appendWamid(dst, customer, p.ctx, false)
		dst = append(dst, `","emoji":"`...)
		dst = append(dst, emojis[idx%len(emojis)]...)
		dst = append(dst, `"}}`...)
	default:
		dst = append(dst, `,"type":"text","text":{"body":"`...)
		dst = append(dst, customerTexts[idx%len(customerTexts)]...)
		dst = append(dst, `"}}`...)
	}
	return dst
}

// clid returns the bytes of a Click-to-WhatsApp click id.
func (g *generator) clid(seq uint64) []byte {
	var b [48]byte
	for i := range 6 {
		v := mix64(seq*7 + uint64(i) + g.salt)
		for j := range 8 {
			b[i*8+j] = byte(v >> (8 * j))
		}
	}
	return b[:]
}
