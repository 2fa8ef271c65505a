package traffic

// Malformed records, as a real ingest sees now and then: each is rejected
// by the webhook decoder (pkg/webhook) with the reason in its comment.
var malformedRecords = []struct {
	topic, value string
}{
	// invalid_json: a body cut short (a proxy's truncated request).
	{TopicWebhooks, `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA","status":"deliv`},
	// missing_field: a status without recipient_id.
	{TopicWebhooks, `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA","status":"delivered","timestamp":"1754300000"}]}}]}]}`},
	// invalid_timestamp: milliseconds instead of seconds.
	{TopicWebhooks, `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"messages":[{"from":"16505551234","id":"wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzRUIwMkE3QjFDMDU5QjQ4QjJBRAA=","timestamp":"1754300000123","type":"text","text":{"body":"hi"}}]}}]}]}`},
	// not_whatsapp: another product's webhook on the same endpoint.
	{TopicWebhooks, `{"object":"instagram","entry":[{"id":"17841400000000000","time":1754300000,"messaging":[{"sender":{"id":"1"},"recipient":{"id":"2"},"message":{"mid":"m1","text":"hi"}}]}]}`},
	// missing_phone_number_id: an On-Premises body without its headers.
	{TopicWebhooks, `{"statuses":[{"id":"gBGGFlB5YjhvAgnhuF1qIUvCo7A","recipient_id":"16315551234","status":"delivered","timestamp":"1754300000","type":"message"}]}`},
	// missing_field: a send record without "to".
	{TopicSends, `{"message_id":"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJCNkY5NTBENEU3ODYxQTM3RUQA","waba_id":"102290129340398","phone_number_id":"106540352242922","timestamp":"1754300000","type":"text","text":{"body":"hi"}}`},
	// unknown_category: a send record whose template category is not one.
	{TopicSends, `{"message_id":"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJCNkY5NTBENEU3ODYxQTM3RUQB","waba_id":"102290129340398","phone_number_id":"106540352242922","to":"16505551234","timestamp":"1754300000","type":"template","template":{"name":"hello","language":"en_US","category":"SERVICE"}}`},
	// invalid_json: not JSON at all (an HTML error page).
	{TopicWebhooks, `<html><body><h1>502 Bad Gateway</h1></body></html>`},
}

// injectMalformed emits one malformed record arriving at at.
func (g *generator) injectMalformed(at int64) error {
	g.malformed.left--
	m := &malformedRecords[g.malformed.n%len(malformedRecords)]
	g.malformed.n++
	rec := Record{Topic: m.topic, Key: []byte("16505551234"), Value: []byte(m.value), At: at, Malformed: true}
	return g.emit(rec)
}
