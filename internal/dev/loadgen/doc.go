// Package loadgen produces messages to a broker at a planned pace, for `ebb load` and the demo of
// `ebb dev --demo`: to try scaling settings against a real broker before production.
//
// A Schedule says how many messages are due at any time since the start: an optional burst at the start
// (repeated every BurstEvery when set) plus a steady rate, for a duration or up to a number of messages.
// Its methods are pure, so the pacing is tested without a clock. Run sends what the schedule makes due to
// a Sink and counts what the broker confirmed; Kafka (franz-go, acks from all in-sync replicas), RabbitMQ
// (amqp091-go with publisher confirms) and NATS JetStream (nats.go, acknowledged asynchronous publishes)
// are the sinks. A message counts as sent when the client took it, as confirmed when the broker
// acknowledged it, and as failed otherwise; Run waits for every outstanding confirmation before it
// returns.
package loadgen
