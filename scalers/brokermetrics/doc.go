// Package brokermetrics counts the requests ebb's shared broker clients send, as the Prometheus metrics
// ebb_broker_requests_total, ebb_broker_request_errors_total and ebb_broker_request_duration_seconds.
//
// Their labels are the trigger type, the broker (host:port) and the kind of request, never a
// ScaledConsumer or a queue: with clients shared per cluster, the request rate grows with brokers and
// topics, not with ScaledConsumers, and these metrics show it. The Kafka scaler's clients report through
// a franz-go hook (KafkaHook, given to kafka.NewPool); the RabbitMQ scaler through
// rabbitmq.ObserveRequests(Observer("rabbitmq")).
package brokermetrics
