// Package controller is ebb's ScaledConsumer controller: it turns each ScaledConsumer into an HPA "ebb-X"
// with external metrics, and does what an HPA cannot.
//
// The Reconciler is a thin shell around pure decisions. Each reconcile reads the ScaledConsumer, makes
// sure its poll runs (triggers.go, auth.go: the triggers parsed by their trigger types, the
// TriggerAuthentications they use read and watched), reads the target's /scale (scale.go), decides
// activation to and from zero, fallback and pause (activation.go, pause.go: decideActivation, a pure
// function of the spec, the trigger states and an injected clock), applies the HPA with server-side
// apply, skipping an unchanged one (hpa.go: desiredHPA builds it), detects targets other owners scale
// (conflict.go), and writes status, conditions and events (status.go; the reasons are in reasons.go).
//
// The poller (poller.go) samples every ScaledConsumer's triggers at its polling interval, aligned to the
// wall clock so triggers on one broker are read together, writes the values to the metric store the
// metrics API serves, and wakes the reconciler only for changes it acts on. It runs on the leader only.
// The consumer-health guard (guard.go) is a pure state machine fed one observation per tick: dead-letter
// growth and stalled or rewound consumers hold the HPA's maxReplicas.
//
// The controller knows no trigger type's metadata keys: it asks the scalers.Registry for Scalers and,
// for spec.deadLetter, for a scalers.DeadLetterReader.
package controller
