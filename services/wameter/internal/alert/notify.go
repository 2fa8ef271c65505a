package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Notifier POSTs alerts to the rules' webhook. Safe for concurrent use.
type Notifier struct {
	cfg    Notify
	client *http.Client
}

// NewNotifier returns a Notifier for cfg (defaults applied, as ParseRules
// leaves them).
func NewNotifier(cfg Notify) *Notifier {
	return &Notifier{cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}}
}

// webhookBody is the json format: the alert's fields, amounts as decimal
// strings, times in RFC 3339 UTC.
type webhookBody struct {
	AlertID     string `json:"alert_id"`
	Rule        string `json:"rule"`
	WABAID      string `json:"waba_id"`
	Category    string `json:"category"`
	State       string `json:"state"`
	Value       string `json:"value"`
	Baseline    string `json:"baseline"`
	Threshold   string `json:"threshold"`
	Currency    string `json:"currency"`
	WindowStart string `json:"window_start"`
	At          string `json:"at"`
	Message     string `json:"message"`
}

// body encodes a in the configured format.
func (n *Notifier) body(a *Alert) ([]byte, error) {
	if n.cfg.Format == FormatSlack {
		return json.Marshal(struct {
			Text string `json:"text"`
		}{fmt.Sprintf("[%s] %s: %s", strings.ToUpper(a.State), a.Rule, a.Message)})
	}
	return json.Marshal(webhookBody{
		AlertID: a.ID, Rule: a.Rule, WABAID: a.WABAID, Category: a.Category, State: a.State,
		Value: a.Value.String(), Baseline: a.Baseline.String(), Threshold: a.Threshold.String(),
		Currency: a.Currency, WindowStart: a.WindowStart.UTC().Format(time.RFC3339),
		At: a.At.UTC().Format(time.RFC3339), Message: a.Message,
	})
}

// Send delivers a: up to 1+Retries attempts, waiting Backoff before the
// first retry and twice as long before each next one (at most 10s). Any 2xx
// answer is delivery. It returns the last attempt's error, or ctx's.
func (n *Notifier) Send(ctx context.Context, a *Alert) error {
	body, err := n.body(a)
	if err != nil {
		return fmt.Errorf("encode alert %s: %w", a.ID, err)
	}
	wait := n.cfg.Backoff
	retries := 0
	if n.cfg.Retries != nil {
		retries = *n.cfg.Retries
	}
	for attempt := 0; ; attempt++ {
		err = n.post(ctx, body)
		if err == nil || attempt == retries {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("notify alert %s: %w (last attempt: %w)", a.ID, ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, maxBackoff)
	}
}

func (n *Notifier) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notify request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("notify: %s: %s", resp.Status, strings.TrimSpace(string(snippet)))
	}
	return nil
}
