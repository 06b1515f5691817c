// Package rabbitmq is the "rabbitmq" trigger: a queue's length, or its publish rate, read over AMQP or
// from the management API.
//
// Every trigger on the same server shares what it can, and a poll tick costs the server the same few
// requests however many triggers watch it:
//
//   - AMQP (protocol amqp, an amqp:// or amqps:// host): one connection per server, credentials and vhost,
//     and per tick one passive queue declare per watched queue, spread over a few channels of that
//     connection (one per 64 queues, at most 16). A passive declare counts ready messages only (not
//     unacknowledged ones). A missing queue closes its channel with 404, which becomes ErrQueueNotFound
//     for that queue's triggers; the channel is replaced and the connection kept. A lost connection
//     (NotifyClose) is dialed again on the next sample, with backoff while dials fail.
//   - http (protocol http, an http:// or https:// host): one HTTP client per management API and
//     credentials, and per tick one queue list per vhost (every page of it) that serves every trigger on the
//     vhost, regular expressions included, matched here over the full list.
//
// Triggers that sample within a short window of each other share one reading. Rates are RabbitMQ's mean
// over the last RateWindow, not its latest rate, which flaps; Pool.DeadLetter exposes a dead-letter
// queue's depth and inflow from the same readings.
//
// Metadata keys follow KEDA's RabbitMQ scaler, so a ScaledObject's trigger moves over with few changes;
// docs/scalers/rabbitmq.md lists where ebb differs.
package rabbitmq
