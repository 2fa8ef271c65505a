// Package gateway is `wameter gateway`: the HTTPS endpoint Meta delivers
// WhatsApp Business Platform webhooks to (behind a TLS-terminating proxy),
// writing every signed body, unchanged, to the webhooks topic that the
// normalize stage reads.
//
// On WAMETER_GATEWAY_ADDR (default 127.0.0.1:8080), path
// WAMETER_GATEWAY_PATH (default /webhook):
//
//   - GET ?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C is Meta's
//     subscription handshake: 200 with body C (text/plain) when T equals
//     WHATSAPP_VERIFY_TOKEN (constant-time compare), 403 otherwise, and
//     always 403 when no verify token is configured.
//   - POST: the body (at most WAMETER_GATEWAY_MAX_BODY bytes, default 1 MiB;
//     larger gets 413) must carry X-Hub-Signature-256: sha256=<hex of
//     HMAC-SHA256(body, WHATSAPP_APP_SECRET)>, checked with hmac.Equal;
//     missing or wrong gets 401 and nothing is written. A signed body is
//     written to WAMETER_WEBHOOKS_TOPIC (default whatsapp.webhooks) with acks
//     from all in-sync replicas before the gateway answers 200: no key (the
//     normalize stage keys by customer) and a header received_at (RFC 3339,
//     UTC). When the write does not succeed within
//     WAMETER_GATEWAY_WRITE_TIMEOUT (default 10s), the answer is 503 and
//     Meta retries the delivery later. Delivery is at least once: a retried
//     delivery, or a write that reached the broker but timed out, is written
//     twice, and the pipeline dedups by its deterministic ids.
//   - Other methods get 405.
//
// Secrets come from WHATSAPP_APP_SECRET / WHATSAPP_VERIFY_TOKEN or from the
// files named by WHATSAPP_APP_SECRET_FILE / WHATSAPP_VERIFY_TOKEN_FILE (a
// trailing newline is dropped). The app secret is required: without it the
// gateway refuses to start. Neither is ever logged.
//
// Kafka is reached with the KAFKA_* variables of pkg/stream; the topic is
// created at start when missing (WAMETER_PARTITIONS, default 4,
// WAMETER_REPLICATION_FACTOR, default 1). WAMETER_GATEWAY_SHUTDOWN_TIMEOUT
// (default 15s, at least the write timeout) bounds the drain on SIGTERM.
//
// The ops server on WAMETER_OPS_ADDR serves /metrics
// (wameter_gateway_requests_total{outcome} with outcomes accepted,
// bad_signature, too_large, bad_request, kafka_unavailable, client_gone,
// verify_ok, verify_denied, method_not_allowed; wameter_gateway_write_seconds{result};
// the producer's wameter_stream_* series), /healthz, /readyz (503 until the
// server listens, while the last Kafka write failed, and during shutdown;
// while unready, a metadata probe every 2s marks it ready again once Kafka
// answers) and /debug/pprof/.
package gateway
