package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Writer writes records to Kafka and returns once they are durable, or an
// error when ctx ends first. *stream.Producer is one.
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// signatureHeader carries "sha256=" and the hex HMAC-SHA256 of the raw body
// keyed with the app secret.
const signatureHeader = "X-Hub-Signature-256"

// HeaderReceivedAt is the record header with the time the gateway received
// the body (RFC 3339, UTC).
const HeaderReceivedAt = "received_at"

// Handler serves the webhook endpoint: the subscription handshake (GET) and
// signed event bodies (POST), which it writes to Kafka before answering.
// Safe for concurrent use.
type Handler struct {
	topic        string
	appSecret    []byte
	verifyToken  []byte
	maxBody      int64
	writeTimeout time.Duration
	writer       Writer
	logger       *zap.Logger
	metrics      *metrics
	now          func() time.Time

	writeFailed atomic.Bool // the last Kafka write failed
}

// NewHandler builds the handler for cfg's topic, body limit and write
// timeout. It does not validate cfg (Run does). w, logger and reg must not
// be nil; the metrics are registered on reg.
func NewHandler(cfg Config, secrets Secrets, w Writer, logger *zap.Logger, reg prometheus.Registerer) (*Handler, error) {
	switch {
	case w == nil:
		return nil, errors.New("new gateway handler: nil writer")
	case logger == nil:
		return nil, errors.New("new gateway handler: nil logger")
	case reg == nil:
		return nil, errors.New("new gateway handler: nil registerer")
	case secrets.AppSecret == "":
		return nil, errors.New("new gateway handler: empty app secret")
	}
	return &Handler{
		topic:        cfg.WebhooksTopic,
		appSecret:    []byte(secrets.AppSecret),
		verifyToken:  []byte(secrets.VerifyToken),
		maxBody:      cfg.MaxBody,
		writeTimeout: cfg.WriteTimeout,
		writer:       w,
		logger:       logger,
		metrics:      newMetrics(reg),
		now:          time.Now,
	}, nil
}

// Healthy reports whether the last Kafka write succeeded (true before the
// first one).
func (h *Handler) Healthy() bool { return !h.writeFailed.Load() }

// markWritten records the result of a Kafka write outside a request (the
// recovery probe of Run).
func (h *Handler) markWritten(ok bool) { h.writeFailed.Store(!ok) }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		h.verify(w, r)
	case http.MethodPost:
		h.receive(w, r)
	default:
		h.metrics.requests.WithLabelValues(outcomeMethodNotAllowed).Inc()
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// verify answers Meta's subscription handshake: the challenge when the mode
// is subscribe and the token is ours.
func (h *Handler) verify(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	token := []byte(q.Get("hub.verify_token"))
	// ConstantTimeCompare returns early on a length mismatch, which reveals
	// only the length; an empty configured token matches nothing.
	if q.Get("hub.mode") != "subscribe" || len(h.verifyToken) == 0 || subtle.ConstantTimeCompare(token, h.verifyToken) != 1 {
		h.metrics.requests.WithLabelValues(outcomeVerifyDenied).Inc()
		h.logger.Info("subscription handshake denied", zap.String("mode", q.Get("hub.mode")), zap.String("remote", r.RemoteAddr))
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	h.metrics.requests.WithLabelValues(outcomeVerifyOK).Inc()
	h.logger.Info("subscription handshake accepted", zap.String("remote", r.RemoteAddr))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, q.Get("hub.challenge"))
}

// receive checks the body's signature and writes the body, byte for byte,
// to the webhooks topic. Only a durable write gets 200: anything else makes
// Meta retry the delivery.
func (h *Handler) receive(w http.ResponseWriter, r *http.Request) {
	receivedAt := h.now()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			h.metrics.requests.WithLabelValues(outcomeTooLarge).Inc()
			h.logger.Warn("webhook body too large", zap.Int64("limit", h.maxBody), zap.Int64("content_length", r.ContentLength))
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		h.metrics.requests.WithLabelValues(outcomeBadRequest).Inc()
		h.logger.Info("read webhook body", zap.Error(err))
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if !h.signed(body, r.Header.Get(signatureHeader)) {
		h.metrics.requests.WithLabelValues(outcomeBadSignature).Inc()
		h.logger.Info("webhook signature missing or wrong", zap.String("remote", r.RemoteAddr), zap.Int("bytes", len(body)))
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}

	// The request's context ends when Meta hangs up; the timeout keeps a
	// down cluster from holding the request until then.
	ctx, cancel := context.WithTimeout(r.Context(), h.writeTimeout)
	defer cancel()
	msg := kafka.Message{
		Topic:   h.topic,
		Value:   body,
		Headers: []kafka.Header{{Key: HeaderReceivedAt, Value: []byte(receivedAt.UTC().Format(time.RFC3339Nano))}},
	}
	started := time.Now()
	err = h.writer.WriteMessages(ctx, msg)
	elapsed := time.Since(started).Seconds()
	if err != nil && r.Context().Err() != nil {
		// Meta hung up before the write finished: nothing to answer, and
		// nothing learnt about Kafka's health. It will retry.
		h.metrics.writes.WithLabelValues("error").Observe(elapsed)
		h.metrics.requests.WithLabelValues(outcomeClientGone).Inc()
		h.logger.Info("client gone before the webhook was written", zap.Error(err))
		return
	}
	if err != nil {
		h.writeFailed.Store(true)
		h.metrics.writes.WithLabelValues("error").Observe(elapsed)
		h.metrics.requests.WithLabelValues(outcomeKafkaUnavailable).Inc()
		h.logger.Warn("webhook not written, answering 503", zap.String("topic", h.topic), zap.Int("bytes", len(body)), zap.Error(err))
		w.Header().Set("Retry-After", "10")
		http.Error(w, "kafka unavailable", http.StatusServiceUnavailable)
		return
	}
	h.writeFailed.Store(false)
	h.metrics.writes.WithLabelValues("ok").Observe(elapsed)
	h.metrics.requests.WithLabelValues(outcomeAccepted).Inc()
	w.WriteHeader(http.StatusOK)
}

// signed reports whether header is "sha256=" followed by the hex
// HMAC-SHA256 of body under the app secret, compared in constant time.
func (h *Handler) signed(body []byte, header string) bool {
	hexSum, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, h.appSecret)
	mac.Write(body)
	return hmac.Equal(mac.Sum(nil), got)
}
