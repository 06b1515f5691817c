package scalers

import "time"

// RequestObserver is told about each request a shared broker client sends, for ebb's broker request
// metrics (package brokermetrics). server is the broker's host:port, never with credentials; request is
// the kind of request in the broker's own terms (a Kafka API key, an AMQP method, a management API path),
// so both stay bounded by the brokers and the code, not by the number of triggers. took is the time to
// the answer and err why there was none, or why it was a failure (nil on success). It is called from many
// goroutines at once and must return quickly.
type RequestObserver func(server, request string, took time.Duration, err error)
