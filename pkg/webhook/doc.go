// Package webhook turns the two raw inputs of the pipeline into canonical
// billing.Events (spec 1.1): Meta's webhook POST bodies (DecodeWebhook), one
// Event per inbound message and per status, and the BSP's send records
// (DecodeSend), one Send event each. AppendEvent and ReadEvent are the
// compact binary form of one Event on the internal events topic.
//
// # Accepted payloads
//
// Cloud API bodies ({"object":"whatsapp_business_account","entry":[...]})
// with any number of entry[], changes[], messages[] and statuses[], keys in
// any order (Meta writes changes[].field after value, and nothing promises
// that metadata precedes statuses); On-Premises bodies, with contacts,
// messages, statuses and errors at the top level and the business ids taken
// from the Kafka record headers (Headers). Changes whose field is not
// "messages" (account_update, message_template_status_update, ...) yield no
// event and no error, even if their value would not decode as messages; a
// change without field counts as messages. Unknown keys are skipped (but
// still checked to be valid JSON).
//
// Ids (WABA, phone_number_id, wa_id) are strings or numbers of decimal
// digits without leading zeros, optionally after one '+', that fit a uint64.
// A WABA may be absent or "0" (Meta's dashboard test payload sends "0"), a
// phone number id or customer wa_id may not. Send records' "to" may also
// hold spaces, dashes and parentheses. Timestamps are whole Unix seconds, as
// strings or numbers, in (0, 2100-01-01]: a millisecond timestamp is
// rejected, not misread.
//
// pricing.category is kept normalised to lower case with '_' for '-'
// (MetaCategory) and mapped to the MsgKind of the message: marketing,
// utility, authentication, authentication_international as templates of
// that category; service and referral_conversion as non-template;
// business_initiated and user_initiated as legacy; anything else, or no
// pricing, as unknown.
//
// # Rejections and the partial-payload policy
//
// Every rejection is an *Error with a Reason from a small fixed set (for
// the dead-letter reason header and metrics) and a message saying where,
// e.g. "entry[0].changes[1].value.statuses[3]: missing recipient_id". A body
// that is not valid JSON is always invalid_json, whatever else is wrong.
//
// A payload with one bad message or status among good ones is rejected
// whole: the decoders return no event of it. The record then goes to the
// dead-letter topic intact, so nothing is silently lost, and it can be
// replayed once the cause is fixed; replaying its good events a second time
// is harmless since duplicates never change a result (spec 1.1). Emitting
// the good part and dead-lettering the rest would need a payload rewritten
// per rejected item, and an item dropped from a batch Meta considers
// delivered is easy to lose sight of.
//
// # Performance
//
// Decoding uses a small validating JSON reader of its own instead of
// encoding/json into structs: it allocates nothing per field, and all the
// strings of one payload's events share one allocation. A Decoder keeps its
// scratch buffers across calls; it is not safe for concurrent use. The
// package-level DecodeWebhook and DecodeSend take Decoders from a pool and
// are safe for concurrent use. Nothing here panics on any input: the fuzz
// tests hold the reader to encoding/json's validity and string decoding.
package webhook
