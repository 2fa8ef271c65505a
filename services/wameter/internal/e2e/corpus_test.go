package e2e

import (
	"fmt"
	"time"
)

// record is one Kafka record the test produces.
type record struct {
	topic   string // "webhooks" or "sends"
	value   string
	headers map[string]string
	// malformed records must end in the dead-letter topic with reason.
	reason string
	// at is the record's event time: the test produces in that order,
	// with disorder well within the lateness.
	at time.Time
}

const (
	wabaCBP = "102938475610"
	wabaPMP = "203948576120"
	pnCBP   = "106540352242922"
	pnPMP   = "107650463353033"
)

type corpus struct {
	records []record
	n       int
}

func (c *corpus) id() string {
	c.n++
	return fmt.Sprintf("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTdBNEI%06d", c.n)
}

func ts(t time.Time) string { return fmt.Sprint(t.Unix()) }

func envelope(waba, pn, value string) string {
	return `{"object":"whatsapp_business_account","entry":[{"id":"` + waba + `","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111","phone_number_id":"` + pn + `"},` + value + `}}]}]}`
}

func (c *corpus) inbound(waba, pn, from string, at time.Time, referral bool) {
	ref := ""
	if referral {
		ref = `,"referral":{"source_url":"https://fb.me/abc","source_id":"120208","source_type":"ad","headline":"Sale","body":"Tap to chat","ctwa_clid":"ARAk"}`
	}
	c.records = append(c.records, record{topic: "webhooks", at: at, value: envelope(waba, pn,
		`"contacts":[{"profile":{"name":"Customer"},"wa_id":"`+from+`"}],"messages":[{"from":"`+from+`","id":"`+c.id()+`","timestamp":"`+ts(at)+`","type":"text","text":{"body":"hello"}`+ref+`}]`)})
}

// outbound adds a send record, then sent and delivered (and read) statuses
// with Meta's pricing object for the model of the era.
func (c *corpus) outbound(waba, pn, to string, at time.Time, category string, model string) string {
	id := c.id()
	send := `{"message_id":"` + id + `","waba_id":"` + waba + `","phone_number_id":"` + pn + `","to":"+` + to + `","timestamp":"` + ts(at) + `",`
	pricingCat := category
	if category == "" {
		send += `"type":"text","text":{"body":"hi"}}`
		pricingCat = "service"
	} else {
		send += `"type":"template","template":{"name":"t","language":"en_US","category":"` + category + `"}}`
	}
	c.records = append(c.records, record{topic: "sends", value: send, at: at})
	pricing := `"pricing":{"billable":true,"pricing_model":"` + model + `","category":"` + lower(pricingCat) + `"}`
	status := func(st string, when time.Time) string {
		return envelope(waba, pn, `"statuses":[{"id":"`+id+`","status":"`+st+`","timestamp":"`+ts(when)+`","recipient_id":"`+to+`","conversation":{"id":"conv-`+id[len(id)-6:]+`","origin":{"type":"`+lower(pricingCat)+`"}},`+pricing+`}]`)
	}
	c.records = append(c.records,
		record{topic: "webhooks", value: status("sent", at), at: at},
		record{topic: "webhooks", value: status("delivered", at.Add(2*time.Second)), at: at.Add(2 * time.Second)},
		record{topic: "webhooks", value: status("read", at.Add(3*time.Minute)), at: at.Add(3 * time.Minute)})
	return id
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// buildCorpus is a small but complete day of traffic in each pricing era:
// Meta's CBP worked example, the PMP example, a free entry point, an
// On-Premises payload keyed by headers, Meta retries, and malformed records.
func buildCorpus() *corpus { return buildCorpusN(1) }

// buildCorpusN repeats the scenarios for n sets of customers, each set a
// minute after the previous one.
func buildCorpusN(n int) *corpus {
	c := &corpus{}
	for i := 0; i < n; i++ {
		c.scenarios(i)
	}
	c.malformed()
	return c
}

func (c *corpus) scenarios(i int) {
	shift := time.Duration(i) * time.Minute
	num := func(prefix string) string { return fmt.Sprintf("%s%04d", prefix, i) }
	// CBP-2023 (UTC account): Meta's worked example, customer +1 415.
	h0 := time.Date(2024, 3, 4, 9, 0, 0, 0, time.UTC).Add(shift)
	us := num("1415555")
	c.outbound(wabaCBP, pnCBP, us, h0, "MARKETING", "CBP")
	c.inbound(wabaCBP, pnCBP, us, h0.Add(4*time.Hour), false)
	c.outbound(wabaCBP, pnCBP, us, h0.Add(5*time.Hour), "", "CBP")
	c.outbound(wabaCBP, pnCBP, us, h0.Add(25*time.Hour), "", "CBP")
	c.outbound(wabaCBP, pnCBP, us, h0.Add(26*time.Hour), "", "CBP")
	// +1 809 customer: utility and authentication conversations.
	do := num("1809555")
	c.outbound(wabaCBP, pnCBP, do, h0.Add(time.Hour), "UTILITY", "CBP")
	c.outbound(wabaCBP, pnCBP, do, h0.Add(90*time.Minute), "AUTHENTICATION", "CBP")
	// An On-Premises payload (no envelope), keyed by record headers.
	c.records = append(c.records, record{topic: "webhooks", at: h0.Add(2 * time.Hour), headers: map[string]string{"phone_number_id": pnCBP, "waba_id": wabaCBP},
		value: `{"contacts":[{"profile":{"name":"X"},"wa_id":"` + num("4477009") + `"}],"messages":[{"from":"` + num("4477009") + `","id":"` + c.id() + `","timestamp":"` + ts(h0.Add(2*time.Hour)) + `","type":"text","text":{"body":"hi"}}]}`})
	c.outbound(wabaCBP, pnCBP, num("4477009"), h0.Add(2*time.Hour+time.Minute), "", "CBP")

	// PMP (2025-08), customer +55: marketing charged, utility in the window
	// free, a reply free, authentication charged.
	p0 := time.Date(2025, 8, 4, 12, 0, 0, 0, time.UTC).Add(shift)
	br := num("551198765")
	c.outbound(wabaPMP, pnPMP, br, p0, "MARKETING", "PMP")
	c.inbound(wabaPMP, pnPMP, br, p0.Add(time.Hour), false)
	c.outbound(wabaPMP, pnPMP, br, p0.Add(2*time.Hour), "UTILITY", "PMP")
	c.outbound(wabaPMP, pnPMP, br, p0.Add(3*time.Hour), "", "PMP")
	c.outbound(wabaPMP, pnPMP, br, p0.Add(4*time.Hour), "AUTHENTICATION", "PMP")
	// A click-to-WhatsApp ad: free entry point window.
	mx := num("521551234")
	c.inbound(wabaPMP, pnPMP, mx, p0.Add(30*time.Minute), true)
	c.outbound(wabaPMP, pnPMP, mx, p0.Add(40*time.Minute), "MARKETING", "PMP")
	c.outbound(wabaPMP, pnPMP, mx, p0.Add(5*time.Hour), "UTILITY", "PMP")

	// Meta retries: the same payloads again.
	n := len(c.records)
	for j := n - 1; j >= 0 && j > n-60; j -= 5 {
		if c.records[j].topic == "webhooks" {
			c.records = append(c.records, c.records[j])
		}
	}
}

func (c *corpus) malformed() {
	// Malformed input.
	c.records = append(c.records,
		record{topic: "webhooks", value: `{"object":"whatsapp_business_account","entry":[`, reason: "invalid_json"},
		record{topic: "sends", value: `{"message_id":"wamid.bad","phone_number_id":"` + pnPMP + `","to":"5511987650123","timestamp":"1754308800","type":"template","template":{"name":"x","category":"PROMO"}}`, reason: "unknown_category"},
		record{topic: "webhooks", value: `{"statuses":[{"id":"wamid.onprem","status":"delivered","timestamp":"1754308800","recipient_id":"5511987650123"}]}`, reason: "missing_phone_number_id"},
	)
}
