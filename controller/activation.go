package controller

import (
	"fmt"
	"time"
)

// triggerView is what the activation decision needs to know about one trigger.
type triggerView struct {
	// Sampled: the trigger has had at least one good sample since ebb started polling it.
	Sampled bool
	// Active: the last good sample was above the activation threshold.
	Active bool
	// Failing: the last sample failed.
	Failing bool
	// Backlog: the last good sample had any value above zero.
	Backlog bool
	// FallbackDue: the trigger has failed failureThreshold times in a row.
	FallbackDue bool
	// LastActive is when the trigger's sample was last active (zero: unknown).
	LastActive time.Time
	// Recovered is when the trigger's first good sample after a failed one was taken (zero: none since
	// its poll started).
	Recovered time.Time
}

// activationInput is everything the activation decision reads. It holds no clients: the decision is a
// pure function of it, so it is tested with any clock.
type activationInput struct {
	Now     time.Time
	Created time.Time
	// Min, Idle (nil when unset), Fallback (nil when unset) come from the spec.
	Min             int32
	Idle            *int32
	Fallback        *int32
	Cooldown        time.Duration
	InitialCooldown time.Duration
	// LastActive is status.lastActiveTime (nil when no trigger was ever seen active).
	LastActive *time.Time
	// Current is the scale target's spec.replicas.
	Current  int32
	Triggers []triggerView
	// Paused is the ebb.dev/paused annotation; PausedReplicas the ebb.dev/paused-replicas one.
	Paused         bool
	PausedReplicas *int32
}

// activationResult is what ebb does, and why.
type activationResult struct {
	// Scale, when not nil, is the replica count to set through /scale.
	Scale *int32
	// Reason and Message explain Scale (one of the Reason* constants), or why ebb holds when Scale is nil
	// and Message is set.
	Reason, Message string
	// Active is whether any trigger is active; LastActive is the new status.lastActiveTime.
	Active     bool
	LastActive *time.Time
	// RecheckAfter, when positive, is when the decision changes with time alone (the end of a cooldown).
	RecheckAfter time.Duration
}

// decideActivation is ebb's part of scaling, what the HPA cannot do: wake the target from zero (or from
// idleReplicas) when a trigger is active, put it on fallback replicas from zero when triggers keep failing,
// and take it back to idleReplicas or zero after the cooldown — never while a trigger fails or reports
// backlog, never before a whole cooldown of good samples after a failure, and never to zero when
// minReplicas > 0. Between those, the HPA sizes the target.
func decideActivation(in activationInput) activationResult {
	var res activationResult
	res.LastActive = in.LastActive
	sampledAll, failing, backlog, fallbackDue := len(in.Triggers) > 0, false, false, false
	for _, t := range in.Triggers {
		res.Active = res.Active || (t.Active && !t.Failing)
		sampledAll = sampledAll && t.Sampled
		failing = failing || t.Failing
		backlog = backlog || t.Backlog
		fallbackDue = fallbackDue || t.FallbackDue
	}
	// The cooldown runs from the last active sample, not from this decision: while steadily active, ebb
	// decides only now and then, and stamping decisions would shorten the cooldown by up to that gap.
	// Time without a good reading is not idle time either: the first good sample after a failure counts
	// as activity, so after an outage the cooldown starts again, from the moment ebb can see the
	// queue is idle. It goes into status.lastActiveTime with the rest, so a restart keeps it.
	recovered := ""
	for _, t := range in.Triggers {
		if !t.LastActive.IsZero() && (res.LastActive == nil || t.LastActive.After(*res.LastActive)) {
			la := t.LastActive
			res.LastActive, recovered = &la, ""
		}
		if !t.Recovered.IsZero() && (res.LastActive == nil || t.Recovered.After(*res.LastActive)) {
			rt := t.Recovered
			res.LastActive, recovered = &rt, t.Recovered.UTC().Format(time.RFC3339)
		}
	}
	if res.Active && !anySampleTime(in.Triggers) {
		now := in.Now
		res.LastActive = &now
	}

	if in.PausedReplicas != nil {
		if in.Current != *in.PausedReplicas {
			res.Scale, res.Reason = ptr(*in.PausedReplicas), ReasonPausedReplicas
			res.Message = fmt.Sprintf("pinned by %s", pausedReplicasText(*in.PausedReplicas))
		}
		return res
	}
	if in.Paused {
		return res
	}

	woken := max(in.Min, 1)
	// The level ebb wakes from: idleReplicas when set, else zero.
	idleLevel := int32(0)
	if in.Idle != nil {
		idleLevel = *in.Idle
	}
	atIdle := in.Current <= idleLevel

	switch {
	case res.Active && atIdle && in.Current < woken:
		res.Scale, res.Reason = ptr(woken), ReasonActivated
		res.Message = fmt.Sprintf("a trigger is active; waking the target from %d to %d replicas", in.Current, woken)
		return res
	case fallbackDue && in.Fallback != nil && atIdle && in.Current < *in.Fallback:
		res.Scale, res.Reason = ptr(*in.Fallback), ReasonFallback
		res.Message = fmt.Sprintf("triggers keep failing; scaling from %d to fallback.replicas %d", in.Current, *in.Fallback)
		return res
	}

	// Scale-in to idle: only when there is an idle level to go to.
	if in.Idle == nil && in.Min > 0 {
		return res
	}
	if in.Current <= idleLevel || res.Active {
		return res
	}
	switch {
	case failing:
		res.Message = "holding: a trigger is failing, so ebb does not scale to idle"
		return res
	case !sampledAll:
		res.Message = "holding: waiting for the first sample of every trigger"
		return res
	case backlog:
		res.Message = "holding: a trigger still reports backlog below its activation threshold"
		return res
	}
	due := in.Created.Add(in.InitialCooldown)
	if res.LastActive != nil {
		if d := res.LastActive.Add(in.Cooldown); d.After(due) {
			due = d
		}
	}
	if in.Now.Before(due) {
		res.RecheckAfter = due.Sub(in.Now)
		res.Message = fmt.Sprintf("cooling down: idle until %s", due.UTC().Format(time.RFC3339))
		if recovered != "" {
			res.Message += fmt.Sprintf(" (the cooldown started again when a trigger's samples recovered at %s)", recovered)
		}
		return res
	}
	res.Scale, res.Reason = ptr(idleLevel), ReasonCooledDown
	res.Message = fmt.Sprintf("no trigger active since %s; scaling from %d to %d", since(res.LastActive), in.Current, idleLevel)
	return res
}

func anySampleTime(ts []triggerView) bool {
	for _, t := range ts {
		if !t.LastActive.IsZero() {
			return true
		}
	}
	return false
}

func since(last *time.Time) string {
	if last == nil {
		return "creation"
	}
	return last.UTC().Format(time.RFC3339)
}

func pausedReplicasText(n int32) string {
	return fmt.Sprintf("annotation ebb.dev/paused-replicas=%d", n)
}

func ptr[T any](v T) *T { return &v }
