// Package v1alpha1 holds the ebb.dev/v1alpha1 API: ScaledConsumer, which asks ebb to size a workload to the
// backlog its triggers report, and TriggerAuthentication, which holds the secrets those triggers use.
//
// What the API server can check on its own is checked at admission, by OpenAPI schema and CEL rules
// generated from the markers here into manifests/crd: replica bounds, positive durations, unique trigger
// names, a complete scaleTargetRef. What needs a scaler's knowledge (trigger metadata) is checked by the
// controller, which reports it in the Ready condition and an event.
//
// +kubebuilder:object:generate=true
// +groupName=ebb.dev
package v1alpha1
