package webhook

// Reason is the machine-readable cause of a rejected payload, meant for the
// dead-letter reason header. The set is fixed; see the constants.
type Reason string

const (
	// ReasonInvalidJSON: the body is not syntactically valid JSON.
	ReasonInvalidJSON Reason = "invalid_json"
	// ReasonInvalidField: valid JSON, but a known field has the wrong JSON
	// type (entry not an array, status id a number, top level not an object).
	ReasonInvalidField Reason = "invalid_field"
	// ReasonNotWhatsApp: object or messaging_product names another product,
	// or the body has none of the keys of a WhatsApp webhook.
	ReasonNotWhatsApp Reason = "not_whatsapp"
	// ReasonMissingPhoneNumberID: message events without a business
	// phone_number_id (no metadata.phone_number_id, or an On-Premises payload
	// without the phone_number_id header).
	ReasonMissingPhoneNumberID Reason = "missing_phone_number_id"
	// ReasonInvalidID: a WABA, phone_number_id or wa_id that is not a numeric
	// id (digits, optionally one leading '+').
	ReasonInvalidID Reason = "invalid_id"
	// ReasonMissingField: a required field other than the ones above is
	// absent or empty (message id, from, recipient_id, status, to, type,
	// template, template.category).
	ReasonMissingField Reason = "missing_field"
	// ReasonMissingTimestamp: a message, status or send record without
	// timestamp.
	ReasonMissingTimestamp Reason = "missing_timestamp"
	// ReasonInvalidTimestamp: a timestamp that is not whole Unix seconds in
	// (0, 2100-01-01].
	ReasonInvalidTimestamp Reason = "invalid_timestamp"
	// ReasonUnknownCategory: a send record's template category is not one of
	// MARKETING, UTILITY, AUTHENTICATION, AUTHENTICATION_INTERNATIONAL.
	ReasonUnknownCategory Reason = "unknown_category"
)

// Reasons returns every Reason, for metrics that pre-create one series each.
func Reasons() []Reason {
	return []Reason{
		ReasonInvalidJSON, ReasonInvalidField, ReasonNotWhatsApp,
		ReasonMissingPhoneNumberID, ReasonInvalidID, ReasonMissingField,
		ReasonMissingTimestamp, ReasonInvalidTimestamp, ReasonUnknownCategory,
	}
}

// Error is a rejected payload. Reason is one of the Reason constants; Path
// says where in the payload (e.g. "entry[0].changes[1].value.statuses[3]",
// empty for the whole body) and Msg what is wrong there.
type Error struct {
	Reason Reason
	Path   string
	Msg    string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}
