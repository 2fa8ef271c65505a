package replay

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wameter/wameter/pkg/pricing"
)

// examples is the top-level folder of CLI example files.
var examples = filepath.Join("..", "..", "..", "..", "testdata", "replay")

// row is the part of an output row the tests compare.
type row struct {
	Row, Category, Model, PricingType, BillingUnit, Market, RuleSet string
	At, Until                                                       string // opened_at/expires_at, or charged_at
	Amount                                                          string
}

// run runs replay with args and returns its rows (JSON lines parsed), its
// stderr and its exit status.
func run(t *testing.T, args ...string) (rows []map[string]any, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Run(context.Background(), args, &out, &errOut)
	code = exitCode(t, err)
	if code == exitUsage || strings.Contains(strings.Join(args, " "), "-explain") || strings.Contains(strings.Join(args, " "), "csv") {
		return nil, errOut.String(), code
	}
	dec := json.NewDecoder(&out)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("output is not JSON lines: %v", err)
		}
		rows = append(rows, m)
	}
	return rows, errOut.String(), code
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	if e, ok := errors.AsType[*exitError](err); ok {
		return e.ExitCode()
	}
	t.Fatalf("error without exit code: %v", err)
	return -1
}

func project(m map[string]any) row {
	s := func(k string) string {
		v, _ := m[k].(string)
		return v
	}
	r := row{Row: s("row"), Category: s("category"), Model: s("pricing_model"), Market: s("market"), RuleSet: s("rule_set")}
	if r.Row == rowConversation {
		r.At, r.Until = s("opened_at"), s("expires_at")
	} else {
		r.PricingType, r.BillingUnit, r.At, r.Amount = s("pricing_type"), s("billing_unit"), s("charged_at"), s("amount")
	}
	return r
}

// rate is the list rate the pricing data gives, as the amount column prints it.
func rate(t *testing.T, model, at, market, category string) string {
	t.Helper()
	cat, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	ts, err := time.Parse(time.RFC3339, at)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := cat.Rate(model, pricing.DayOf(ts.Unix(), time.UTC), market, category, "USD")
	if !ok {
		t.Fatalf("no %s rate for %s %s on %s", model, market, category, at)
	}
	if r.Micros == 0 {
		t.Fatalf("%s rate for %s %s on %s is 0: the example would not show a charge", model, market, category, at)
	}
	return formatMicros(r.Micros)
}

const zero = "0.000000"

func TestExamples(t *testing.T) {
	type want []row
	cases := []struct {
		file string
		want func(t *testing.T) want
	}{
		{"cbp_worked_example.jsonl", func(t *testing.T) want {
			// Meta's CBP example: marketing template at h0, user message at
			// h4, interactive at h5 (inside the marketing conversation),
			// expiry at h24, text at h25 opens service, text at h26 nothing.
			return want{
				{Row: "conversation", Category: "marketing", Model: "CBP", Market: "NORTH_AMERICA", RuleSet: "CBP-2024-11", At: "2025-02-04T09:00:03Z", Until: "2025-02-05T09:00:03Z"},
				{Row: "conversation", Category: "service", Model: "CBP", Market: "NORTH_AMERICA", RuleSet: "CBP-2024-11", At: "2025-02-05T10:00:02Z", Until: "2025-02-06T10:00:02Z"},
				{Row: "charge", Category: "marketing", Model: "CBP", PricingType: "regular", BillingUnit: "conversation", Market: "NORTH_AMERICA", RuleSet: "CBP-2024-11", At: "2025-02-04T09:00:03Z",
					Amount: rate(t, "CBP", "2025-02-04T09:00:03Z", "NORTH_AMERICA", "marketing")},
				{Row: "charge", Category: "service", Model: "CBP", PricingType: "free_service", BillingUnit: "conversation", Market: "NORTH_AMERICA", RuleSet: "CBP-2024-11", At: "2025-02-05T10:00:02Z", Amount: zero},
			}
		}},
		{"pmp_example.jsonl", func(t *testing.T) want {
			// Four outbound messages, two charged.
			return want{
				{Row: "charge", Category: "marketing", Model: "PMP", PricingType: "regular", BillingUnit: "message", Market: "BR", RuleSet: "PMP-2025-07", At: "2025-08-05T13:00:02Z",
					Amount: rate(t, "PMP", "2025-08-05T13:00:02Z", "BR", "marketing")},
				{Row: "charge", Category: "utility", Model: "PMP", PricingType: "free_customer_service", BillingUnit: "message", Market: "BR", RuleSet: "PMP-2025-07", At: "2025-08-05T13:25:02Z", Amount: zero},
				// Delivered skipped: the read at +26min+60s proves delivery.
				{Row: "charge", Category: "service", Model: "PMP", PricingType: "free_customer_service", BillingUnit: "message", Market: "BR", RuleSet: "PMP-2025-07", At: "2025-08-05T13:27:00Z", Amount: zero},
				{Row: "charge", Category: "authentication", Model: "PMP", PricingType: "regular", BillingUnit: "message", Market: "BR", RuleSet: "PMP-2025-07", At: "2025-08-05T15:00:03Z",
					Amount: rate(t, "PMP", "2025-08-05T15:00:03Z", "BR", "authentication")},
			}
		}},
		{"free_entry_point.jsonl", func(t *testing.T) want {
			return want{
				{Row: "conversation", Category: "referral_conversion", Model: "PMP", Market: "MX", RuleSet: "PMP-2025-07", At: "2025-08-06T18:02:02Z", Until: "2025-08-09T18:02:02Z"},
				{Row: "charge", Category: "referral_conversion", Model: "PMP", PricingType: "free_entry_point", BillingUnit: "message", Market: "MX", RuleSet: "PMP-2025-07", At: "2025-08-06T18:02:02Z", Amount: zero},
				{Row: "charge", Category: "referral_conversion", Model: "PMP", PricingType: "free_entry_point", BillingUnit: "message", Market: "MX", RuleSet: "PMP-2025-07", At: "2025-08-08T00:00:04Z", Amount: zero},
				{Row: "charge", Category: "utility", Model: "PMP", PricingType: "regular", BillingUnit: "message", Market: "MX", RuleSet: "PMP-2025-07", At: "2025-08-10T02:00:02Z",
					Amount: rate(t, "PMP", "2025-08-10T02:00:02Z", "MX", "utility")},
			}
		}},
		{"onprem_wrapped.jsonl", func(t *testing.T) want {
			return want{
				{Row: "conversation", Category: "service", Model: "CBP", Market: "IN", RuleSet: "CBP-2023", At: "2024-03-12T06:31:32Z", Until: "2024-03-13T06:31:32Z"},
				{Row: "conversation", Category: "utility", Model: "CBP", Market: "IN", RuleSet: "CBP-2023", At: "2024-03-12T08:30:05Z", Until: "2024-03-13T08:30:05Z"},
				{Row: "charge", Category: "service", Model: "CBP", PricingType: "free_tier", BillingUnit: "conversation", Market: "IN", RuleSet: "CBP-2023", At: "2024-03-12T06:31:32Z", Amount: zero},
				{Row: "charge", Category: "utility", Model: "CBP", PricingType: "regular", BillingUnit: "conversation", Market: "IN", RuleSet: "CBP-2023", At: "2024-03-12T08:30:05Z",
					Amount: rate(t, "CBP", "2024-03-12T08:30:05Z", "IN", "utility")},
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			rows, stderr, code := run(t, filepath.Join(examples, tc.file))
			if code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr)
			}
			var got []row
			for _, m := range rows {
				got = append(got, project(m))
			}
			want := tc.want(t)
			if !reflect.DeepEqual(got, []row(want)) {
				t.Errorf("rows:\n%s\nwant:\n%s", dump(got), dump(want))
			}
			checkColumns(t, rows)
		})
	}
}

func dump(rows []row) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.TrimSpace(strings.ReplaceAll(fmtRow(r), "  ", " ")))
		b.WriteByte('\n')
	}
	return b.String()
}

func fmtRow(r row) string {
	return strings.Join([]string{r.Row, r.Category, r.Model, r.PricingType, r.BillingUnit, r.Market, r.RuleSet, r.At, r.Until, r.Amount}, " ")
}

// checkColumns checks every row has every column of its ClickHouse table,
// that charges point at conversations printed alongside, and ids are set.
func checkColumns(t *testing.T, rows []map[string]any) {
	t.Helper()
	convIDs := map[string]bool{}
	for _, m := range rows {
		if m["row"] == rowConversation {
			convIDs[m["conversation_id"].(string)] = true
		}
	}
	for i, m := range rows {
		var names []string
		switch m["row"] {
		case rowConversation:
			for _, c := range conversationColumns {
				names = append(names, c.name)
			}
		case rowCharge:
			for _, c := range chargeColumns {
				names = append(names, c.name)
			}
			if id := m["conversation_id"].(string); id != "" && !convIDs[id] {
				t.Errorf("row %d: conversation_id %s is not one of the conversations", i, id)
			}
			if _, ok := m["tier"].(float64); !ok {
				t.Errorf("row %d: tier %v is not a number", i, m["tier"])
			}
		default:
			t.Fatalf("row %d: row field %v", i, m["row"])
		}
		if len(m) != len(names)+1 {
			t.Errorf("row %d has %d fields, want %d", i, len(m), len(names)+1)
		}
		for _, n := range names {
			if _, ok := m[n]; !ok {
				t.Errorf("row %d: no %s", i, n)
			}
		}
		for _, n := range []string{"waba_id", "portfolio_id", "phone_number_id", "customer_wa_id", "market"} {
			if m[n] == "" {
				t.Errorf("row %d: empty %s", i, n)
			}
		}
	}
}

func TestCSV(t *testing.T) {
	file := filepath.Join(examples, "cbp_worked_example.jsonl")
	sections := func(args ...string) [][][]string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := Run(context.Background(), append(args, file), &out, &errOut); err != nil {
			t.Fatalf("%v\n%s", err, errOut.String())
		}
		var secs [][][]string
		for _, part := range strings.Split(out.String(), "\n\n") {
			recs, err := csv.NewReader(strings.NewReader(part)).ReadAll()
			if err != nil {
				t.Fatalf("section is not CSV: %v\n%s", err, part)
			}
			secs = append(secs, recs)
		}
		return secs
	}
	both := sections("-format", "csv")
	if len(both) != 2 {
		t.Fatalf("%d sections, want 2", len(both))
	}
	if got, want := both[0][0][1], "conversation_id"; got != want {
		t.Errorf("conversations header starts %q, want %q", got, want)
	}
	if got, want := both[1][0][1], "charge_id"; got != want {
		t.Errorf("charges header starts %q, want %q", got, want)
	}
	if len(both[0]) != 3 || len(both[1]) != 3 {
		t.Errorf("section lengths %d, %d; want a header and 2 rows each", len(both[0]), len(both[1]))
	}
	amount := -1
	for i, name := range both[1][0] {
		if name == "amount" {
			amount = i
		}
	}
	if amount < 0 || both[1][2][amount] != zero {
		t.Errorf("amount column of the service charge: %v", both[1][2])
	}
	charges := sections("-format", "csv", "-what", "charges")
	if len(charges) != 1 || len(charges[0]) != 3 || charges[0][1][0] != rowCharge {
		t.Errorf("-what charges: %v", charges)
	}
}

func TestCustomerFilterAcrossFiles(t *testing.T) {
	files := []string{"cbp_worked_example.jsonl", "pmp_example.jsonl", "free_entry_point.jsonl", "onprem_wrapped.jsonl"}
	var args []string
	for _, f := range files {
		args = append(args, filepath.Join(examples, f))
	}
	all, _, code := run(t, args...)
	if code != 0 || len(all) != 16 {
		t.Fatalf("exit %d, %d rows; want 0, 16", code, len(all))
	}
	rows, stderr, code := run(t, append([]string{"-customer", "+55 11 98765-4321", "-what", "charges"}, args...)...)
	if code != 0 || len(rows) != 4 {
		t.Fatalf("exit %d, %d rows; want 0, 4", code, len(rows))
	}
	for _, m := range rows {
		if m["customer_wa_id"] != "5511987654321" || m["row"] != rowCharge {
			t.Errorf("row of %v, %v", m["row"], m["customer_wa_id"])
		}
	}
	if !strings.Contains(stderr, "customer 5511987654321: 0 conversations, 4 charges") {
		t.Errorf("summary:\n%s", stderr)
	}
}

func writeFile(t *testing.T, name string, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const (
	testPN   = "106540352242922"
	testWABA = "102290129340398"
	testCust = "16505551234"
)

// sendLine is a send record; cat "" is a text message.
func sendLine(id string, ts int64, cat string) string {
	typ := `"type":"text","text":{"body":"hi"}`
	if cat != "" {
		typ = `"type":"template","template":{"name":"t","language":"en_US","category":"` + cat + `"}`
	}
	return `{"message_id":"` + id + `","waba_id":"` + testWABA + `","phone_number_id":"` + testPN + `","to":"` + testCust + `","timestamp":` + itoa(ts) + `,` + typ + `}`
}

func statusLine(id, status string, ts int64) string {
	return `{"object":"whatsapp_business_account","entry":[{"id":"` + testWABA + `","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"` + testPN + `"},"statuses":[{"id":"` + id + `","status":"` + status + `","timestamp":"` + itoa(ts) + `","recipient_id":"` + testCust + `"}]}}]}]}`
}

func itoa(v int64) string { return string(appendID(nil, uint64(v))) }

func TestRejectedLines(t *testing.T) {
	base := int64(1754384400) // 2025-08-05T09:00:00Z
	path := writeFile(t, "mixed.jsonl",
		sendLine("wamid.A", base, "MARKETING"),
		statusLine("wamid.A", "delivered", base+2),
		`{"object":"whatsapp_business_account","entry":[`,
		`{"message_id":"wamid.B","phone_number_id":"`+testPN+`","timestamp":1,"type":"text"}`,
		`{"object":"instagram","entry":[]}`,
		`{"statuses":[{"id":"x","status":"delivered","timestamp":"1754384400","recipient_id":"`+testCust+`"}]}`,
		`{"topic":"kafka","value":{}}`,
		`{"headers":{"phone_number_id":true},"body":{"statuses":[]}}`,
		`[1,2]`,
		`# a comment, not a record`,
		``,
		sendLine("wamid.C", base+60, "SERVICE"),
	)
	rows, stderr, code := run(t, path)
	if code != exitRejected {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitRejected, stderr)
	}
	if len(rows) != 1 || rows[0]["pricing_type"] != "regular" {
		t.Errorf("the good lines' rows: %v", rows)
	}
	name := filepath.Base(path)
	wantLines := []string{
		name + ":3: invalid_json: ",
		name + ":4: missing_field: missing to",
		name + ":5: not_whatsapp: ",
		name + ":6: missing_phone_number_id: ",
		name + ":7: invalid_field: topic \"kafka\"",
		name + ":8: invalid_field: headers.phone_number_id: ",
		name + ":9: invalid_field: line is not a JSON object",
		name + ":12: unknown_category: ",
	}
	got := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(got) != len(wantLines)+1 {
		t.Fatalf("stderr has %d lines, want %d rejections and a summary:\n%s", len(got), len(wantLines), stderr)
	}
	for i, w := range wantLines {
		if !strings.HasPrefix(strings.TrimPrefix(got[i], filepath.Dir(path)+string(filepath.Separator)), w) {
			t.Errorf("stderr line %d = %q, want prefix %q", i, got[i], w)
		}
	}
	if summary := got[len(got)-1]; !strings.Contains(summary, "10 records (8 rejected), 2 events") {
		t.Errorf("summary %q", summary)
	}
}

func TestUsageErrors(t *testing.T) {
	file := filepath.Join(examples, "pmp_example.jsonl")
	for _, args := range [][]string{
		{},
		{"-format", "xml", file},
		{"-what", "everything", file},
		{"-customer", "abc", file},
		{"-nosuchflag", file},
		{filepath.Join(t.TempDir(), "missing.jsonl")},
		{"-accounts", filepath.Join(t.TempDir(), "missing.yaml"), file},
		{"-pricing", t.TempDir(), file},
		{"-", "-"},
	} {
		if _, stderr, code := run(t, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d; stderr:\n%s", args, code, exitUsage, stderr)
		}
	}
}

func TestStdinAndSimulateRecords(t *testing.T) {
	// A record as `wameter simulate` writes it, an On-Premises body wrapped
	// with headers, and a plain send record, from stdin.
	base := int64(1754384400)
	lines := []string{
		`{"topic":"sends","key":"` + testCust + `","at":1754384400050,"headers":null,"value":` + sendLine("wamid.S", base, "UTILITY") + `}`,
		`{"topic":"webhooks","key":"` + testCust + `","at":1754384403000,"headers":{"phone_number_id":"` + testPN + `","waba_id":"` + testWABA + `"},"value":{"statuses":[{"id":"wamid.S","status":"delivered","timestamp":"` + itoa(base+2) + `","recipient_id":"` + testCust + `"}]}}`,
		`{"topic":"webhooks","key":"` + testCust + `","at":1754384403000,"value_raw":"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":1"}`,
	}
	old := stdin
	stdin = strings.NewReader(strings.Join(lines, "\n"))
	defer func() { stdin = old }()
	rows, stderr, code := run(t, "-")
	if code != exitRejected || !strings.Contains(stderr, "stdin:3: invalid_json: ") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if len(rows) != 1 || rows[0]["category"] != "utility" || rows[0]["pricing_type"] != "regular" {
		t.Errorf("rows %v", rows)
	}
}

// TestExplainChargedTwice is the question -explain answers: two marketing
// charges for one customer on one day, because the first conversation had
// expired when the second template was delivered.
func TestExplainChargedTwice(t *testing.T) {
	base := int64(1738659600) // 2025-02-04T09:00:00Z, CBP
	const h = 3600
	path := writeFile(t, "twice.jsonl",
		sendLine("wamid.M1", base, "MARKETING"),
		statusLine("wamid.M1", "sent", base+1),
		statusLine("wamid.M1", "delivered", base+2),
		sendLine("wamid.M2", base+3*h, "MARKETING"), // inside the first conversation
		statusLine("wamid.M2", "delivered", base+3*h+2),
		sendLine("wamid.M3", base+25*h, "MARKETING"), // after it expired
		statusLine("wamid.M3", "read", base+25*h+30), // delivered skipped
		sendLine("wamid.X", base+26*h, "MARKETING"),  // no status: not delivered, no row
	)
	var out, errOut bytes.Buffer
	if err := Run(context.Background(), []string{"-explain", "-customer", testCust, path}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	report := out.String()
	for _, want := range []string{
		"customer 16505551234 (market NORTH_AMERICA) on phone_number_id 106540352242922, waba_id 102290129340398: 8 events, 2 conversations, 2 charges",
		"charge 1 of 2",
		"charge 2 of 2",
		"previous marketing conversation: [2025-02-04T09:00:02Z, 2025-02-05T09:00:02Z), expired 1h0m28s before this one opened",
		"delivered  wamid.M2  [" + path + ":5]  <- no row of its own: inside the marketing conversation open since 2025-02-04T09:00:02Z",
		"read       wamid.M3",
		"events after the last row:",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if n := strings.Count(report, "<- this row"); n != 2 {
		t.Errorf("%d rows marked, want 2:\n%s", n, report)
	}
}
