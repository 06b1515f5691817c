// Package dev is the root of ebb's development and test tooling, kept apart from what runs in a cluster:
//
//   - localcluster: a real control plane on this machine, and optionally a real node;
//   - devkafka: the in-memory Kafka-protocol broker (franz-go's kfake) of `ebb dev kafka`;
//   - demo: `ebb dev --demo`;
//   - loadgen: the paced producers of `ebb load`;
//   - imagebuild: container images without Docker;
//   - ebbinstall: ebb installed from manifests/ as a user does;
//   - tcprelay: a loopback-only broker relayed to the node address;
//   - testenv: test helpers over all of these and the brokers.
//
// The serving packages (controller, metricsapi, metricstore, scalers, valuesync, internal/app) import none
// of them, and ebb's image is built without the commands that do (the ebb_nodev tag); cmd/ebb's tests check
// both with `go list -deps`.
package dev
