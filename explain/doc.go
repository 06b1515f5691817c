// Package explain says why a ScaledConsumer's target has the replica count it has and what comes next.
//
// Build is a pure function from what a user can read with their kubeconfig (the ScaledConsumer, its HPA,
// the target's /scale and the values ebb's metrics API serves the HPA) and the time to an Explanation;
// Read fetches those inputs from a cluster; Text renders an Explanation for a person, and the
// Explanation's JSON form (Format) is for tools: fields are added, never renamed or removed, within one
// Format.
//
// A trigger's sizing is one Sizing kind (threshold today); another kind (drain time) adds its own fields
// to TriggerMetric without changing the others.
package explain
