package gateway

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wameter/wameter/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Meta's subscription handshake gets the challenge back only with mode
// subscribe and our token.
func TestHandshake(t *testing.T) {
	g := newTestGateway(t, testenv.Broker(t), 5*time.Second, 1<<20)
	f := func(query url.Values, wantStatus int, wantBody string) {
		t.Helper()
		resp, err := g.server.Client().Get(g.server.URL + "?" + query.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != wantStatus {
			t.Fatalf("GET ?%s: status %d, want %d", query.Encode(), resp.StatusCode, wantStatus)
		}
		if wantBody != "" {
			if string(body) != wantBody {
				t.Errorf("GET ?%s: body %q, want %q", query.Encode(), body, wantBody)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("GET ?%s: Content-Type %q, want text/plain", query.Encode(), ct)
			}
		}
	}
	q := func(mode, token, challenge string) url.Values {
		v := url.Values{}
		if mode != "" {
			v.Set("hub.mode", mode)
		}
		if token != "" {
			v.Set("hub.verify_token", token)
		}
		v.Set("hub.challenge", challenge)
		return v
	}
	f(q("subscribe", testVerifyToken, "1158201444"), http.StatusOK, "1158201444")
	f(q("subscribe", "wrong-token", "1"), http.StatusForbidden, "")
	f(q("subscribe", testVerifyToken+"x", "1"), http.StatusForbidden, "")
	f(q("subscribe", "", "1"), http.StatusForbidden, "")
	f(q("unsubscribe", testVerifyToken, "1"), http.StatusForbidden, "")
	f(q("", testVerifyToken, "1"), http.StatusForbidden, "")

	if ok, denied := g.outcome(outcomeVerifyOK), g.outcome(outcomeVerifyDenied); ok != 1 || denied != 5 {
		t.Errorf("verify_ok %v, verify_denied %v; want 1 and 5", ok, denied)
	}
	if got := g.records(t); len(got) != 0 {
		t.Errorf("handshakes wrote %d records", len(got))
	}
}

// Without a configured verify token no handshake succeeds, not even one
// with an empty token.
func TestHandshakeWithoutVerifyToken(t *testing.T) {
	g := newTestGateway(t, testenv.Broker(t), 5*time.Second, 1<<20)
	g.handler.verifyToken = nil
	resp, err := g.server.Client().Get(g.server.URL + "?hub.mode=subscribe&hub.verify_token=&hub.challenge=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status %d, want 403", resp.StatusCode)
	}
}

// A signed body is in the topic byte for byte, without a key, with the time
// it was received, before the 200.
func TestSignedBodyIsWrittenUnchanged(t *testing.T) {
	g := newTestGateway(t, testenv.Broker(t), 10*time.Second, 1<<20)
	// Whitespace, escapes and non-ASCII as Meta sends them: the signature is
	// over these exact bytes, and the topic must hold them unchanged.
	body := []byte("{\"object\":\"whatsapp_business_account\",\n  \"entry\":[{\"id\":\"102938475610\",\"changes\":[{\"field\":\"messages\",\"value\":{\"text\":\"ol\\u00e1 \xc3\xa9 \\/\"}}]}]}\n")
	before := time.Now().UTC().Truncate(time.Second)
	status, _ := g.post(t, body, sign(testAppSecret, body))
	if status != http.StatusOK {
		t.Fatalf("status %d, want 200", status)
	}
	after := time.Now().UTC()

	got := g.records(t)
	if len(got) != 1 {
		t.Fatalf("%d records in the topic, want 1", len(got))
	}
	m := got[0]
	if !bytes.Equal(m.Value, body) {
		t.Errorf("record value\n%q\nwant\n%q", m.Value, body)
	}
	if len(m.Key) != 0 {
		t.Errorf("record key %q, want none", m.Key)
	}
	if len(m.Headers) != 1 || m.Headers[0].Key != HeaderReceivedAt {
		t.Fatalf("headers %v, want only %s", m.Headers, HeaderReceivedAt)
	}
	receivedAt, err := time.Parse(time.RFC3339, string(m.Headers[0].Value))
	if err != nil {
		t.Fatalf("received_at %q: %v", m.Headers[0].Value, err)
	}
	if receivedAt.Before(before) || receivedAt.After(after) {
		t.Errorf("received_at %s, want between %s and %s", receivedAt, before, after)
	}
	if n := g.outcome(outcomeAccepted); n != 1 {
		t.Errorf("accepted %v, want 1", n)
	}
	if !g.handler.Healthy() {
		t.Error("unhealthy after a successful write")
	}
}

// Bodies without a valid signature, too large, or sent with another method
// are refused and never reach the topic.
func TestRefusedRequestsWriteNothing(t *testing.T) {
	const maxBody = 4096
	g := newTestGateway(t, testenv.Broker(t), 10*time.Second, maxBody)
	body := []byte(`{"object":"whatsapp_business_account","entry":[]}`)
	good := sign(testAppSecret, body)
	f := func(name string, body []byte, signature string, wantStatus int) {
		t.Helper()
		if status, _ := g.post(t, body, signature); status != wantStatus {
			t.Errorf("%s: status %d, want %d", name, status, wantStatus)
		}
	}
	f("missing header", body, "", http.StatusUnauthorized)
	f("other secret", body, sign("not-the-app-secret", body), http.StatusUnauthorized)
	f("signature of another body", append([]byte(" "), body...), good, http.StatusUnauthorized)
	f("no sha256= prefix", body, strings.TrimPrefix(good, "sha256="), http.StatusUnauthorized)
	f("sha1", body, "sha1="+strings.TrimPrefix(good, "sha256="), http.StatusUnauthorized)
	f("not hex", body, "sha256="+strings.Repeat("zz", 32), http.StatusUnauthorized)
	f("truncated", body, good[:len(good)-2], http.StatusUnauthorized)
	f("upper-case hex", body, "sha256="+strings.ToUpper(strings.TrimPrefix(good, "sha256=")), http.StatusOK)
	large := bytes.Repeat([]byte("x"), maxBody+1)
	f("too large, signed", large, sign(testAppSecret, large), http.StatusRequestEntityTooLarge)
	limit := bytes.Repeat([]byte("y"), maxBody)
	f("exactly the limit", limit, sign(testAppSecret, limit), http.StatusOK)

	req, err := http.NewRequest(http.MethodPut, g.server.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(signatureHeader, good)
	resp, err := g.server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: status %d, want 405", resp.StatusCode)
	}

	got := g.records(t)
	if len(got) != 2 || !bytes.Equal(got[0].Value, body) || !bytes.Equal(got[1].Value, limit) {
		t.Errorf("topic holds %d records, want only the two accepted bodies", len(got))
	}
	for outcome, want := range map[string]float64{outcomeBadSignature: 7, outcomeTooLarge: 1, outcomeMethodNotAllowed: 1, outcomeAccepted: 2} {
		if n := g.outcome(outcome); n != want {
			t.Errorf("%s: %v, want %v", outcome, n, want)
		}
	}
}

// With the broker down a delivery gets 503 within the write timeout, so
// Meta retries it; once the broker is back a retry of the same delivery gets
// 200 and the body is in the topic. Nothing is written while the broker is
// down; a retry answered 503 because its write timed out against the
// restarting broker may still have landed (at least once: the pipeline
// drops the duplicate by message id), so the topic holds the body at least
// once and at most once per retry.
func TestKafkaDownAnswers503ThenRetrySucceeds(t *testing.T) {
	const writeTimeout = 3 * time.Second
	broker := testenv.NewBroker(t)
	g := newTestGateway(t, broker.Addr, writeTimeout, 1<<20)
	body := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[]}]}`)
	signature := sign(testAppSecret, body)

	broker.Kill()
	status, took := g.post(t, body, signature)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("broker down: status %d, want 503", status)
	}
	if took > writeTimeout+2*time.Second {
		t.Errorf("broker down: answered after %s, want about the write timeout %s", took, writeTimeout)
	}
	if g.handler.Healthy() {
		t.Error("healthy after a failed write")
	}
	if n := g.outcome(outcomeKafkaUnavailable); n != 1 {
		t.Errorf("kafka_unavailable %v, want 1", n)
	}

	broker.Restart()
	// Meta retries until it gets a 200. The producer's kafka-go transport
	// keeps the dial error of the dead broker until its next metadata
	// refresh (at most 5s after the restart), so the first retry may still
	// get 503; one of the next ones must not.
	const attempts = 4
	retries := 0
	for i := 1; ; i++ {
		status, _ = g.post(t, body, signature)
		retries = i
		if status == http.StatusOK {
			t.Logf("retry %d after restart: 200", i)
			break
		}
		if status != http.StatusServiceUnavailable || i == attempts {
			t.Fatalf("retry %d after restart: status %d, want 200 (or 503 for the first)", i, status)
		}
	}
	if !g.handler.Healthy() {
		t.Error("unhealthy after a successful write")
	}
	got := g.records(t)
	if len(got) < 1 || len(got) > retries {
		t.Errorf("topic holds %d records after %d retries, want the body at least once and at most once per retry", len(got), retries)
	}
	for i, r := range got {
		if !bytes.Equal(r.Value, body) {
			t.Errorf("record %d is not the retried body: %q", i, r.Value)
		}
	}
}

// A client that hangs up during the write says nothing about Kafka: the
// gateway stays healthy (ready) and counts it apart.
func TestClientGoneDuringWriteKeepsHealth(t *testing.T) {
	broker := testenv.NewBroker(t)
	g := newTestGateway(t, broker.Addr, 10*time.Second, 1<<20)
	broker.Kill()
	body := []byte(`{"object":"whatsapp_business_account","entry":[]}`)
	req, err := http.NewRequest(http.MethodPost, g.server.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(signatureHeader, sign(testAppSecret, body))
	client := &http.Client{Timeout: 500 * time.Millisecond}
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("got an answer (%d) with the broker down before the client's timeout", resp.StatusCode)
	}
	for deadline := time.Now().Add(5 * time.Second); g.outcome(outcomeClientGone) != 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("client_gone %v after 5s, want 1", g.outcome(outcomeClientGone))
		}
	}
	if !g.handler.Healthy() {
		t.Error("unhealthy after a client hung up")
	}
	if n := g.outcome(outcomeKafkaUnavailable); n != 0 {
		t.Errorf("kafka_unavailable %v, want 0", n)
	}
	broker.Restart() // testenv stops it cleanly at the end
}
