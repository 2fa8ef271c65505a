// Package stream is the Kafka plumbing every wameter service uses, on
// kafka-go: connection Config (brokers, SASL, TLS), EnsureTopics at
// start-up, a synchronous acks=all Producer with key-hash or explicit
// partition routing, a partition-aware group Consumer that calls a Handler
// per partition (Assigned, Handle, Tick, Revoked) and commits what the
// handler says, DeadLetters for poison records, and adapters from kafka-go's
// loggers to zap.
//
// Delivery is at least once end to end: kafka-go has neither an idempotent
// nor a transactional producer. Stages make their outputs idempotent by
// deterministic ids and by skipping what they already applied (see
// ARCHITECTURE.md).
package stream
