package controller

// The reasons of ebb's conditions and events, in one place: a person reads them in kubectl describe and in
// alerts, so each says what to look at.

// Reasons of the Ready condition. True: HPAReady, or Paused and Idle (no HPA by design). False: a problem
// with the target, the HPA or the pause annotation, or with the triggers (InvalidTrigger,
// AuthenticationNotFound, InvalidAuthentication, AuthenticationForbidden, InvalidDeadLetter).
const (
	ReasonHPAReady          = "HPAReady"
	ReasonPaused            = "Paused"
	ReasonIdle              = "Idle"
	ReasonTargetConflict    = "TargetConflict"
	ReasonForeignHPA        = "ForeignHPA"
	ReasonHPANameTaken      = "HPANameTaken"
	ReasonTargetNotFound    = "TargetNotFound"
	ReasonTargetNotScalable = "TargetNotScalable"
	ReasonHPAApplyFailed    = "HPAApplyFailed"
	ReasonInvalidPause      = "InvalidPausedReplicas"

	ReasonInvalidTrigger         = "InvalidTrigger"
	ReasonAuthenticationNotFound = "AuthenticationNotFound"
	ReasonInvalidDeadLetter      = "InvalidDeadLetter"
	// ReasonInvalidAuthentication: a TriggerAuthentication or Secret name that cannot name an object, or
	// a Secret key with an empty value.
	ReasonInvalidAuthentication = "InvalidAuthentication"
	// ReasonAuthenticationForbidden: ebb may not read a Secret a TriggerAuthentication names (RBAC).
	ReasonAuthenticationForbidden = "AuthenticationForbidden"
)

// Reasons of the Paused condition when not paused (Paused=True uses ReasonPaused or
// ReasonPausedReplicas).
const (
	ReasonNotPaused = "NotPaused"
)

// Reasons of the Active condition.
const (
	ReasonNotSampled    = "NotSampled"
	ReasonTriggerActive = "TriggerActive"
	ReasonNoActivity    = "NoActivity"
)

// Reasons of the Fallback condition.
const (
	ReasonTriggersFailing       = "TriggersFailing"
	ReasonNoFallbackConfigured  = "NoFallbackConfigured"
	ReasonBelowFailureThreshold = "BelowFailureThreshold"
	ReasonTriggersHealthy       = "TriggersHealthy"
)

// Reasons of the events that say a trigger started or stopped failing, and that fallback ended (entering
// fallback uses the Fallback condition's reason, TriggersFailing).
const (
	ReasonTriggerFailing   = "TriggerFailing"
	ReasonTriggerRecovered = "TriggerRecovered"
	ReasonFallbackEnded    = "FallbackEnded"
)

// Reasons of the ConsumersHealthy condition. False: the guard holds scale-up, and the reason names the
// signal. True: Healthy. Unknown: the guard is off or has nothing to watch. ConsumersHealthy is also the
// reason of the event that says the guard released.
const (
	ReasonDeadLetterInflow = "DeadLetterInflow"
	ReasonDeadLetterRatio  = "DeadLetterRatio"
	ReasonStalled          = "Stalled"
	ReasonRewound          = "Rewound"
	ReasonHealthy          = "Healthy"
	ReasonGuardDisabled    = "GuardDisabled"
	ReasonNothingToWatch   = "NothingToWatch"
	ReasonGuardReleased    = "ConsumersHealthy"
)

// Reasons for the scale actions ebb takes through /scale; they are event reasons and the reason label of
// ebb_scale_actions_total.
const (
	ReasonActivated      = "Activated"
	ReasonCooledDown     = "CooledDown"
	ReasonFallback       = "FallbackReplicas"
	ReasonPausedReplicas = "PausedReplicas"
)
