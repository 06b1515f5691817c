package v1alpha1

// Names other tools and users rely on. They are part of the API: do not change them.
const (
	// ScaledConsumerLabel is the label key of the selector that ebb's external metrics carry; its value is
	// the ScaledConsumer's name.
	ScaledConsumerLabel = "ebb.dev/scaledconsumer"

	// PausedAnnotation set to "true" on a ScaledConsumer stops every scaling action ebb or its HPA takes.
	PausedAnnotation = "ebb.dev/paused"

	// PausedReplicasAnnotation set to a non-negative integer pins the target at that many replicas.
	PausedReplicasAnnotation = "ebb.dev/paused-replicas"

	// HPANamePrefix prefixes the ScaledConsumer's name to form the default name of the HPA ebb owns.
	HPANamePrefix = "ebb-"
)

// Condition types of a ScaledConsumer.
const (
	// ConditionReady is True when the spec is valid and the HPA is in place.
	ConditionReady = "Ready"
	// ConditionActive is True while at least one trigger reports work above its activation threshold.
	ConditionActive = "Active"
	// ConditionFallback is True while failing triggers have put the target on fallback replicas.
	ConditionFallback = "Fallback"
	// ConditionPaused is True while a pause annotation is set.
	ConditionPaused = "Paused"
)

// ConditionConsumersHealthy is False while the consumer-health guard holds scale-up (its reason says which
// signal tripped it: DeadLetterInflow, DeadLetterRatio, Stalled, Rewound), True while it watches and sees
// nothing wrong, and Unknown when it is off or has nothing to watch.
const ConditionConsumersHealthy = "ConsumersHealthy"
