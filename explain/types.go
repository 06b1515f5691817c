package explain

import "time"

// Format names the JSON form of Explanation. Within one Format fields are only added.
const Format = "ebb.dev/explain/v1"

// State is what ebb is doing with a ScaledConsumer's target, in one word.
type State string

// The states, checked in this order: a pause wins over everything, fallback over activity.
const (
	// StatePaused: ebb.dev/paused is set; no HPA, no scaling.
	StatePaused State = "Paused"
	// StatePinned: ebb.dev/paused-replicas pins the target.
	StatePinned State = "Pinned"
	// StateNotReady: the ScaledConsumer does not work (Ready=False); the message says why.
	StateNotReady State = "NotReady"
	// StateFallback: failing triggers hold the target at fallback.replicas.
	StateFallback State = "Fallback"
	// StateWaiting: not every trigger has been sampled yet.
	StateWaiting State = "Waiting"
	// StateActive: a trigger is above its activation threshold; the HPA sizes the target.
	StateActive State = "Active"
	// StateCoolingDown: no trigger is active; ebb takes the target to its idle level when the cooldown ends.
	StateCoolingDown State = "CoolingDown"
	// StateIdle: no trigger is active and the target is at its idle level (zero, idleReplicas, or
	// minReplicas when that is above zero).
	StateIdle State = "Idle"
)

// Limit names: what can bound the replica count the HPA wants.
const (
	LimitTriggers       = "triggers"       // nothing bound it: the triggers' ask is the desired count
	LimitMaxReplicas    = "maxReplicas"    // spec.maxReplicas
	LimitMinReplicas    = "minReplicas"    // the HPA's minReplicas (spec.minReplicas, at least 1)
	LimitGuard          = "guard"          // the consumer-health guard holds the HPA's maxReplicas
	LimitFallback       = "fallback"       // failing triggers serve fallback.replicas x target
	LimitPaused         = "paused"         // a pause annotation: no HPA
	LimitNotReady       = "notReady"       // the ScaledConsumer does not work (Ready=False): ebb does not scale
	LimitIdle           = "idle"           // ebb parked the target at zero or idleReplicas
	LimitPartitions     = "partitions"     // a Kafka trigger capped its lag at partitions x lagThreshold
	LimitHPABehavior    = "hpaBehavior"    // the HPA's behavior (rate limits, stabilization window)
	LimitHPAUnavailable = "hpaUnavailable" // the HPA cannot compute (ScalingActive=False)
)

// Sizing kinds: how a trigger metric's value turns into replicas.
const (
	// SizingThreshold: the HPA asks for ceil(value / target), target being the trigger's threshold.
	SizingThreshold = "threshold"
)

// Explanation is why a ScaledConsumer's target has the replica count it has, and what comes next. It is
// the JSON printed by `ebb explain -o json`.
type Explanation struct {
	// Format is the version of this structure (Format).
	Format string `json:"format"`
	// Namespace and Name of the ScaledConsumer.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Time is when the explanation was made; every age is relative to it.
	Time time.Time `json:"time"`

	// Target is the scaled workload.
	Target Target `json:"target"`
	// Spec holds the settings that bound scaling, with their defaults filled in.
	Spec Spec `json:"spec"`

	// State is what ebb is doing, and StateMessage says it in a sentence.
	State        State  `json:"state"`
	StateMessage string `json:"stateMessage"`
	// LastActiveTime is status.lastActiveTime: the cooldown counts from it.
	LastActiveTime *time.Time `json:"lastActiveTime,omitempty"`
	// CooldownUntil is when ebb takes the target to its idle level, while cooling down.
	CooldownUntil *time.Time `json:"cooldownUntil,omitempty"`

	// Triggers: each trigger's value, math and health.
	Triggers []Trigger `json:"triggers"`
	// HPA is the HPA ebb manages, nil when there is none (paused, parked at idleReplicas, not ready).
	HPA *HPA `json:"hpa,omitempty"`
	// Asked is the most replicas any trigger metric asks for (nil when no value is known).
	Asked *int32 `json:"asked,omitempty"`
	// BoundBy is the limit that decided the replica count (one of the Limit* names); Limits lists every
	// limit that applies, binding or not.
	BoundBy string  `json:"boundBy"`
	Limits  []Limit `json:"limits"`

	// Guard is the consumer-health guard's reading.
	Guard *Guard `json:"guard,omitempty"`

	// Next is the next expected action.
	Next Next `json:"next"`

	// Notes are things the reader should know that fit nowhere else (a value that could not be read).
	Notes []string `json:"notes,omitempty"`
}

// Target is the workload ebb scales, read through its /scale.
type Target struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	// Replicas is /scale spec.replicas; CurrentReplicas its status.replicas. Nil when /scale could not be
	// read (Error says why).
	Replicas        *int32 `json:"replicas,omitempty"`
	CurrentReplicas *int32 `json:"currentReplicas,omitempty"`
	Error           string `json:"error,omitempty"`
}

// Spec is the part of the ScaledConsumer's spec that bounds scaling, defaults filled in.
type Spec struct {
	MinReplicas  int32  `json:"minReplicas"`
	MaxReplicas  int32  `json:"maxReplicas"`
	IdleReplicas *int32 `json:"idleReplicas,omitempty"`
	// The durations are Go durations ("5s", "5m0s").
	PollingInterval       string `json:"pollingInterval"`
	CooldownPeriod        string `json:"cooldownPeriod"`
	InitialCooldownPeriod string `json:"initialCooldownPeriod"`
	// FallbackReplicas and FailureThreshold are set when spec.fallback is.
	FallbackReplicas *int32 `json:"fallbackReplicas,omitempty"`
	FailureThreshold int32  `json:"failureThreshold,omitempty"`
}

// Trigger is one trigger: its status and the HPA metrics it serves.
type Trigger struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Active is whether the last good sample was above the activation threshold (status).
	Active bool `json:"active"`
	// StatusValue and Message are the trigger's status.value and status.message.
	StatusValue string `json:"statusValue,omitempty"`
	Message     string `json:"message,omitempty"`
	// LastPollTime is status.triggers[].lastPollTime: status is written at most every so often, so it can
	// be older than the last sample; the metric values' Time is fresher.
	LastPollTime *time.Time `json:"lastPollTime,omitempty"`
	// LastError is the last sample's error, and ConsecutiveFailures how many samples failed in a row, as
	// of LastPollTime.
	LastError           string `json:"lastError,omitempty"`
	ConsecutiveFailures int32  `json:"consecutiveFailures,omitempty"`
	// Metrics are the HPA's metrics of this trigger (one, or several for a trigger with several).
	Metrics []TriggerMetric `json:"metrics"`
	// Asked is the most replicas this trigger's metrics ask for.
	Asked *int32 `json:"asked,omitempty"`
}

// TriggerMetric is one external metric of the HPA: the value it reads and the replicas that value asks.
type TriggerMetric struct {
	// Metric is the external metric's name.
	Metric string `json:"metric"`
	// Sizing is how the value becomes replicas (SizingThreshold).
	Sizing string `json:"sizing"`
	// Value is what the metrics API serves the HPA, as a quantity; ValueTime is when ebb sampled it.
	// Source says where the value was read: "metricsAPI" (as the HPA reads it), "hpaStatus" (the value the
	// HPA last read, when the metrics API could not be asked) or "" when unknown.
	Value     string     `json:"value,omitempty"`
	ValueTime *time.Time `json:"valueTime,omitempty"`
	Source    string     `json:"source,omitempty"`
	// Target is the HPA's AverageValue target: the threshold.
	Target string `json:"target,omitempty"`
	// Replicas is ceil(Value / Target): what this metric asks the HPA for.
	Replicas *int32 `json:"replicas,omitempty"`
	// Math is the arithmetic, for a person: "35 / 10 = 3.5 -> 4 replicas".
	Math string `json:"math,omitempty"`
	// Fallback is true when the value is the fallback value (fallback.replicas x target) served while the
	// trigger fails.
	Fallback bool `json:"fallback,omitempty"`
	// Error is why the value could not be read from the metrics API.
	Error string `json:"error,omitempty"`
}

// HPA is what the HPA ebb manages says.
type HPA struct {
	Name            string     `json:"name"`
	MinReplicas     int32      `json:"minReplicas"`
	MaxReplicas     int32      `json:"maxReplicas"`
	CurrentReplicas int32      `json:"currentReplicas"`
	DesiredReplicas int32      `json:"desiredReplicas"`
	LastScaleTime   *time.Time `json:"lastScaleTime,omitempty"`
	// Behavior is true when spec.hpa.behavior is set (rate limits or stabilization windows of its own).
	Behavior bool `json:"behavior"`
	// Conditions are the HPA's AbleToScale, ScalingActive and ScalingLimited conditions.
	Conditions []Condition `json:"conditions,omitempty"`
}

// Condition is a condition of the HPA or the ScaledConsumer.
type Condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// Limit is one bound on the replica count.
type Limit struct {
	// Name is one of the Limit* names.
	Name string `json:"name"`
	// Replicas is the bound, when it is a number.
	Replicas *int32 `json:"replicas,omitempty"`
	// Binding is true for the limit that decided the replica count.
	Binding bool   `json:"binding"`
	Message string `json:"message"`
}

// Guard is the consumer-health guard's reading (the ConsumersHealthy condition and status.guard).
type Guard struct {
	// Tripped is true while the guard holds scale-up; HeldReplicas is the HPA's maxReplicas then.
	Tripped      bool   `json:"tripped"`
	HeldReplicas *int32 `json:"heldReplicas,omitempty"`
	// Status, Reason and Message are the ConsumersHealthy condition's.
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Since is when the condition last changed status.
	Since *time.Time `json:"since,omitempty"`
}

// Next is the next action expected, by ebb or by the HPA.
type Next struct {
	// Actor is who acts: "ebb", "hpa" or "user".
	Actor string `json:"actor"`
	// Action says what happens, for a person.
	Action string `json:"action"`
	// Replicas is the replica count after the action, when known.
	Replicas *int32 `json:"replicas,omitempty"`
	// At is when, when it is a time (the end of a cooldown); nil when it depends on the backlog.
	At *time.Time `json:"at,omitempty"`
}
