// Package devkafka runs a Kafka-protocol cluster in this process, for `ebb dev` and for tests: franz-go's
// kfake, which speaks the real wire protocol (so kcat and any Kafka client work against it) but keeps
// everything in memory. It is a development tool, not a broker to run in production.
package devkafka
