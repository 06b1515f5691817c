// Package natsjetstream is the "nats-jetstream" trigger: a JetStream consumer's backlog, its pending
// plus ack-pending messages (KEDA's metric), read over the NATS client protocol (natsServerURL) or from
// the HTTP monitoring endpoint (natsServerMonitoringEndpoint, KEDA's way).
//
// Every trigger on the same server set with the same credentials shares what it can, and a poll tick
// costs the servers requests that grow with the streams watched, not with the triggers:
//
//   - Client protocol: one NATS connection per server set and credentials (nats.go, which reconnects and
//     follows the cluster). Per tick and watched stream, either one CONSUMER.INFO per watched consumer or
//     the pages of the stream's consumer list (256 consumers a page), whichever is fewer requests; the
//     consumer leaders answer both. A dead-letter stream adds one STREAM.INFO.
//   - Monitoring endpoint: one GET /jsz?accounts=true&consumers=true&acc=... per endpoint per tick for
//     every trigger on them. In a cluster each server lists the replicas it hosts, and a replica's
//     figures lag its leader's: ebb takes each consumer from its leader's entry, so list every server's
//     endpoint (comma-separated), and a consumer whose leader's endpoint is not listed is an error
//     (ErrNoLeader), not a stale value.
//
// Triggers that sample within a short window of each other share one reading. Errors wrap the
// package's sentinels (ErrStreamNotFound, ErrConsumerNotFound, ErrAuthentication, ErrNoJetStream, ...),
// so a condition names what to fix. Samples carry the consumer's ack-floor progress for the
// consumer-health guard, and the type reads dead-letter streams (scalers.DeadLetterType).
//
// docs/scalers/nats-jetstream.md lists where ebb differs from KEDA.
package natsjetstream
