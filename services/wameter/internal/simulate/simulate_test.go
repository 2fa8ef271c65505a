package simulate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wameter/wameter/pkg/traffic"
	"github.com/wameter/wameter/services/wameter/internal/replay"
)

func simulate(t *testing.T, args ...string) (out []byte, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	if err := Run(context.Background(), args, &o, &e); err != nil {
		t.Fatalf("simulate %q: %v\n%s", args, err, e.String())
	}
	return o.Bytes(), e.String()
}

var small = []string{"-accounts", "2", "-customers", "150", "-duration", "12h", "-onprem", "1"}

func TestOutputIsDeterministicJSONLines(t *testing.T) {
	a, summary := simulate(t, small...)
	b, _ := simulate(t, small...)
	if !bytes.Equal(a, b) {
		t.Fatal("same flags, different output")
	}
	if c, _ := simulate(t, append([]string{"-seed", "2"}, small...)...); bytes.Equal(a, c) {
		t.Error("another seed, same output")
	}
	lines, onPrem := 0, 0
	sc := bufio.NewScanner(bytes.NewReader(a))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines++
		var rec struct {
			Topic   string            `json:"topic"`
			Key     string            `json:"key"`
			At      int64             `json:"at"`
			Headers map[string]string `json:"headers"`
			Value   json.RawMessage   `json:"value"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d: %v", lines, err)
		}
		if rec.Topic != traffic.TopicWebhooks && rec.Topic != traffic.TopicSends || rec.Key == "" || rec.At == 0 || len(rec.Value) == 0 || rec.Headers == nil {
			t.Fatalf("line %d: %s", lines, sc.Bytes())
		}
		if rec.Headers["phone_number_id"] != "" {
			onPrem++
		}
	}
	if lines < 500 || onPrem == 0 {
		t.Errorf("%d lines, %d with On-Premises headers", lines, onPrem)
	}
	if !strings.Contains(summary, "simulate: ") || !strings.Contains(summary, " records (") {
		t.Errorf("summary %q", summary)
	}
}

// TestReplayReadsSimulateOutput is the round trip the two tools are for:
// a simulated day replays without rejections, and the injected malformed
// records are exactly the rejected ones.
func TestReplayReadsSimulateOutput(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		malformed string
		wantErr   bool
	}{{"0", false}, {"9", true}} {
		path := filepath.Join(dir, "day"+tc.malformed+".jsonl")
		simulate(t, append([]string{"-malformed", tc.malformed, "-out", path}, small...)...)
		var out, stderr bytes.Buffer
		err := replay.Run(context.Background(), []string{"-what", "charges", path}, &out, &stderr)
		if (err != nil) != tc.wantErr {
			t.Fatalf("-malformed %s: replay: %v\n%s", tc.malformed, err, stderr.String())
		}
		if got := strings.Count(stderr.String(), "\n") - 1; got != mustAtoi(t, tc.malformed) {
			t.Errorf("-malformed %s: %d rejections:\n%s", tc.malformed, got, stderr.String())
		}
		if !strings.Contains(stderr.String(), "unknown kind 0") || out.Len() == 0 {
			t.Errorf("-malformed %s: summary:\n%s", tc.malformed, stderr.String())
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "day9.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	// Of the 9, the truncated body (1st and 9th: the list cycles) and the
	// HTML error page (8th) are not JSON.
	if n := bytes.Count(raw, []byte(`"value_raw":`)); n != 3 {
		t.Errorf("%d records written as value_raw, want the 3 that are not JSON", n)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-kafka", "localhost:9092"},
		{"-start", "yesterday"},
		{"-accounts", "0"},
		{"-onprem", "9"},
		{"-spike-factor", "5", "-spike-account", "7"},
		{"-spike-factor", "0.5"},
		{"extra"},
		{"-out", filepath.Join(t.TempDir(), "no", "such", "dir.jsonl")},
	} {
		var o, e bytes.Buffer
		err := Run(context.Background(), args, &o, &e)
		var ue *usageError
		if !errors.As(err, &ue) || ue.ExitCode() != 2 {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

func TestAppendLine(t *testing.T) {
	for _, tc := range []struct {
		rec  traffic.Record
		want string
	}{
		{traffic.Record{Topic: "sends", Key: []byte("5511987654321"), At: 1754265600123, Value: []byte(`{"a":1}`)},
			`{"topic":"sends","key":"5511987654321","at":1754265600123,"headers":{},"value":{"a":1}}`},
		{traffic.Record{Topic: "webhooks", Key: []byte("1"), At: 1, Headers: map[string]string{"waba_id": "2", "phone_number_id": "3"}, Value: []byte(`{}`)},
			`{"topic":"webhooks","key":"1","at":1,"headers":{"phone_number_id":"3","waba_id":"2"},"value":{}}`},
		{traffic.Record{Topic: "webhooks", Key: []byte("1"), At: 1, Malformed: true, Value: []byte("<html>\"x\"\n")},
			`{"topic":"webhooks","key":"1","at":1,"headers":{},"value_raw":"\u003chtml\u003e\"x\"\n"}`},
		{traffic.Record{Topic: "webhooks", Key: []byte("1"), At: 1, Malformed: true, Value: []byte("{\n \"a\": 1\n}")},
			`{"topic":"webhooks","key":"1","at":1,"headers":{},"value":{"a":1}}`},
	} {
		if got := string(AppendLine(nil, tc.rec)); got != tc.want+"\n" {
			t.Errorf("AppendLine:\n got %s\nwant %s", got, tc.want)
		}
	}
}
