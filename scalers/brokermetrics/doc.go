// Package brokermetrics counts the requests ebb's shared broker clients send, as the Prometheus metrics
// ebb_broker_requests_total, ebb_broker_request_errors_total and ebb_broker_request_duration_seconds.
//
// Their labels are the trigger type, the broker (host:port) and the kind of request, never a
// ScaledConsumer or a queue: with clients shared per cluster, the request rate grows with brokers and
// topics, not with ScaledConsumers, and these metrics show it. Each trigger type's clients report through
// its own option (kafka.ObserveRequests, rabbitmq.ObserveRequests), which the table of trigger types
// (package builtin) sets from Metrics.Observer; this package knows no broker's client library.
package brokermetrics
