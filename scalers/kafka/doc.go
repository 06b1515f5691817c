// Package kafka is the "kafka" trigger: consumer-group lag, read with franz-go.
//
// Every trigger on the same cluster with the same credentials shares one client (a Pool hands them out),
// and a poll tick costs the cluster the same few requests however many triggers watch it: one OffsetFetch
// per group coordinator for all watched groups, one Metadata request for the watched topics when their
// layout may have changed, and one ListOffsets per partition leader for every watched partition. Triggers
// that sample within a short window of each other share one such reading.
//
// Lag follows KEDA's Kafka scaler (metadata keys, defaults and semantics), so a ScaledObject's trigger
// moves over unchanged; docs/scalers/kafka.md lists where ebb differs.
package kafka
