// Package demo runs the demonstration of `ebb dev --demo` on a running development environment: it
// applies the Kafka sample of manifests/samples (a consumer Deployment and its ScaledConsumer), produces
// a burst with the load generator (internal/dev/loadgen), and records a timeline — backlog, the HPA's desired
// replicas, the Deployment's replicas, the pods Running, the consumers and what ebb and the HPA decided —
// from 0 replicas up and back to 0, printed live and drawn as an SVG at the end.
//
// With a node (Config.ConsumerImage set: `ebb dev --demo --node`), the Deployment's pods run the example
// consumer (examples/consumer) and the timeline counts them and the consumer group's members. Without
// one, no pod ever runs, and the demo stands in for them: Consumers keeps one Kafka consumer-group member
// per replica of the Deployment, each consuming at a fixed rate and committing what it consumed, so the
// backlog drains faster as ebb and the HPA add replicas, as it would with real pods (minus their
// start-up time).
//
// The timeline's rendering (Timeline.Line, WriteSVG) and its verdict (Timeline.Shape) are pure and tested
// without a cluster; Run is tested end to end through `ebb dev --demo` in internal/cli.
package demo
