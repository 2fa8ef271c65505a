package replay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/webhook"
)

// maxLine bounds one input line. Meta's webhook bodies are well under 1 MB.
const maxLine = 64 << 20

// source is where an event was read: the file (index into input.files) and
// the 1-based line.
type source struct {
	file int32
	line int32
}

// input accumulates the decoded events of every file, each with its source.
type input struct {
	files    []string
	events   []billing.Event
	srcs     []source // srcs[i] is where events[i] came from
	records  int      // non-blank, non-comment lines
	rejected int
}

func (in *input) where(s source) string {
	return in.files[s.file] + ":" + strconv.Itoa(int(s.line))
}

// readFile decodes every line of the named file ("-": stdin), reporting
// rejected lines on stderr. Only an unreadable file is an error.
func (in *input) readFile(ctx context.Context, name string, stderr io.Writer) error {
	f, err := openInput(name)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	defer f.Close()
	label := name
	if name == "-" {
		label = "stdin"
	}
	in.files = append(in.files, label)
	file := int32(len(in.files) - 1)

	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	line := int32(0)
	for sc.Scan() {
		line++
		if line%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		in.records++
		n0 := len(in.events)
		in.events, err = decodeLine(text, in.events)
		if err != nil {
			in.rejected++
			reason, msg := describe(err)
			fmt.Fprintf(stderr, "%s:%d: %s: %s\n", label, line, reason, msg)
			continue
		}
		for range len(in.events) - n0 {
			in.srcs = append(in.srcs, source{file: file, line: line})
		}
	}
	if err := sc.Err(); err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("read %s after line %d: %w", label, line, err)}
	}
	return nil
}

// describe splits a rejection into the reason (as the dead-letter header
// would carry it) and the message.
func describe(err error) (webhook.Reason, string) {
	if e, ok := errors.AsType[*webhook.Error](err); ok {
		return e.Reason, e.Error()
	}
	return webhook.ReasonInvalidField, err.Error()
}

// lineShape is what decides how a line is decoded: its top-level keys.
// encoding/json matches keys case-insensitively; no webhook or send record
// key is a case variant of these.
type lineShape struct {
	MessageID json.RawMessage            `json:"message_id"`
	Topic     *string                    `json:"topic"`
	Headers   map[string]json.RawMessage `json:"headers"`
	Body      json.RawMessage            `json:"body"`
	Value     json.RawMessage            `json:"value"`
	ValueRaw  *string                    `json:"value_raw"`
}

// Topics of `wameter simulate` records.
const (
	topicWebhooks = "webhooks"
	topicSends    = "sends"
)

// decodeLine appends the events of one line to dst. On error dst is
// returned unchanged.
func decodeLine(line []byte, dst []billing.Event) ([]billing.Event, error) {
	var shape lineShape
	if err := json.Unmarshal(line, &shape); err != nil {
		return dst, shapeError(err)
	}
	payload, topic := line, ""
	var hdr webhook.Headers
	wrapped := shape.Body != nil || shape.Value != nil || shape.ValueRaw != nil
	if wrapped {
		switch {
		case (shape.Body != nil) && (shape.Value != nil || shape.ValueRaw != nil), shape.Value != nil && shape.ValueRaw != nil:
			return dst, &webhook.Error{Reason: webhook.ReasonInvalidField, Msg: "wrapped record with more than one of body, value, value_raw"}
		case shape.Body != nil:
			payload = shape.Body
		case shape.Value != nil:
			payload = shape.Value
		default:
			payload = []byte(*shape.ValueRaw)
		}
		var err error
		if hdr, err = headers(shape.Headers); err != nil {
			return dst, err
		}
		if shape.Topic != nil {
			topic = *shape.Topic
		}
	}
	switch topic {
	case topicSends:
		return webhook.DecodeSend(payload, dst)
	case topicWebhooks:
		return webhook.DecodeWebhook(payload, hdr, dst)
	case "":
	default:
		return dst, &webhook.Error{Reason: webhook.ReasonInvalidField, Msg: fmt.Sprintf("topic %q: want %s or %s", topic, topicWebhooks, topicSends)}
	}
	if wrapped && isSendRecord(payload) || !wrapped && shape.MessageID != nil {
		return webhook.DecodeSend(payload, dst)
	}
	// Anything else is for the webhook decoder to accept or to reject with
	// its own reason (invalid_json, not_whatsapp, ...).
	return webhook.DecodeWebhook(payload, hdr, dst)
}

// isSendRecord reports whether a wrapped body has message_id at top level.
func isSendRecord(payload []byte) bool {
	var probe struct {
		MessageID json.RawMessage `json:"message_id"`
	}
	return json.Unmarshal(payload, &probe) == nil && probe.MessageID != nil
}

// headers reads the wrapper's headers: the On-Premises business ids.
// Values may be JSON strings or numbers.
func headers(raw map[string]json.RawMessage) (webhook.Headers, error) {
	var h webhook.Headers
	for key, dst := range map[string]*string{"phone_number_id": &h.PhoneNumberID, "waba_id": &h.WABA} {
		v, ok := raw[key]
		if !ok {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			*dst = s
			continue
		}
		var n json.Number
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		if err := dec.Decode(&n); err != nil {
			return h, &webhook.Error{Reason: webhook.ReasonInvalidField, Path: "headers." + key, Msg: "want a string or a number"}
		}
		*dst = n.String()
	}
	return h, nil
}

// shapeError turns an encoding/json error into a rejection with the reason
// the webhook decoder would give.
func shapeError(err error) error {
	if _, ok := errors.AsType[*json.SyntaxError](err); ok {
		return &webhook.Error{Reason: webhook.ReasonInvalidJSON, Msg: "invalid JSON: " + err.Error()}
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field == "" {
			return &webhook.Error{Reason: webhook.ReasonInvalidField, Msg: "line is not a JSON object"}
		}
		return &webhook.Error{Reason: webhook.ReasonInvalidField, Path: te.Field, Msg: "want " + te.Type.String() + ", not a JSON " + te.Value}
	}
	return &webhook.Error{Reason: webhook.ReasonInvalidJSON, Msg: err.Error()}
}
