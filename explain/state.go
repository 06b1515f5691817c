package explain

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

// pause reads the pause annotations as ebb does: paused-replicas wins; a value ebb cannot read counts as
// paused.
func pause(sc *ebbv1.ScaledConsumer) (paused bool, pinned *int32) {
	if v, ok := sc.Annotations[ebbv1.PausedReplicasAnnotation]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil || n < 0 {
			return true, nil
		}
		return true, ptr(int32(n))
	}
	v, ok := sc.Annotations[ebbv1.PausedAnnotation]
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	return err != nil || b, nil
}

// idleLevel is the replica count ebb parks the target at with no activity: idleReplicas, else zero; with
// minReplicas above zero and no idleReplicas there is no parking (ok false).
func idleLevel(s Spec) (level int32, ok bool) {
	switch {
	case s.IdleReplicas != nil:
		return *s.IdleReplicas, true
	case s.MinReplicas > 0:
		return s.MinReplicas, false
	}
	return 0, true
}

func stateOf(in Input, e *Explanation) (State, string, *time.Time) {
	sc := in.ScaledConsumer
	conds := sc.Status.Conditions
	paused, pinned := pause(sc)
	switch {
	case pinned != nil:
		return StatePinned, fmt.Sprintf("annotation %s=%d pins the target; ebb removed the HPA and scales nothing else", ebbv1.PausedReplicasAnnotation, *pinned), nil
	case paused:
		return StatePaused, fmt.Sprintf("annotation %s stops every scaling action; ebb removed the HPA and the replica count stays where it is", ebbv1.PausedAnnotation), nil
	}
	if c := meta.FindStatusCondition(conds, ebbv1.ConditionReady); c != nil && c.Status == metav1.ConditionFalse {
		return StateNotReady, fmt.Sprintf("not ready (%s): %s", c.Reason, c.Message), nil
	}
	if c := meta.FindStatusCondition(conds, ebbv1.ConditionFallback); c != nil && c.Status == metav1.ConditionTrue {
		return StateFallback, c.Message, nil
	}
	active := meta.FindStatusCondition(conds, ebbv1.ConditionActive)
	switch {
	case active == nil || active.Status == metav1.ConditionUnknown:
		return StateWaiting, "waiting for the first sample of every trigger", nil
	case active.Status == metav1.ConditionTrue:
		// Named from the triggers' status, not the condition's message, whose numbers may be older.
		var names []string
		for _, t := range e.Triggers {
			if t.Active {
				names = append(names, t.Name)
			}
		}
		if len(names) == 0 {
			return StateActive, active.Message, nil
		}
		return StateActive, "above its activation threshold: trigger " + strings.Join(names, ", trigger "), nil
	}
	level, parks := idleLevel(e.Spec)
	replicas := int32(-1)
	if e.Target.Replicas != nil {
		replicas = *e.Target.Replicas
	}
	if !parks {
		return StateIdle, fmt.Sprintf("no trigger is active; minReplicas=%d keeps the target at %d or more (no scale to zero without idleReplicas)", level, level), nil
	}
	if replicas >= 0 && replicas <= level {
		return StateIdle, fmt.Sprintf("no trigger is active; the target is parked at %d", replicas), nil
	}
	until := sc.CreationTimestamp.Add(durationOr(sc.Spec.InitialCooldownPeriod, 0))
	if la := sc.Status.LastActiveTime; la != nil {
		if d := la.Add(durationOr(sc.Spec.CooldownPeriod, defaultCooldown)); d.After(until) {
			until = d
		}
	}
	until = until.UTC()
	var holds []string
	for _, t := range e.Triggers {
		switch {
		case t.LastError != "":
			holds = append(holds, fmt.Sprintf("trigger %s is failing", t.Name))
		case hasBacklog(t.StatusValue):
			holds = append(holds, fmt.Sprintf("trigger %s still reports backlog (%s) below its activation threshold", t.Name, t.StatusValue))
		}
	}
	msg := fmt.Sprintf("no trigger is active; cooling down until %s, then ebb scales the target to %d", until.Format(time.RFC3339), level)
	if !in.Now.Before(until) {
		msg = fmt.Sprintf("no trigger is active; the cooldown ended at %s, so ebb scales the target to %d at its next look", until.Format(time.RFC3339), level)
	}
	if len(holds) > 0 {
		msg = "no trigger is active, but ebb holds the target: " + strings.Join(holds, "; ")
	}
	return StateCoolingDown, msg, &until
}

// hasBacklog: a status value (a number, or metric=value pairs) above zero.
func hasBacklog(v string) bool {
	for _, part := range strings.Split(v, ",") {
		if i := strings.IndexByte(part, '='); i >= 0 {
			part = part[i+1:]
		}
		if q, err := resource.ParseQuantity(strings.TrimSpace(part)); err == nil && q.Sign() > 0 {
			return true
		}
	}
	return false
}

// limitsOf lists the bounds on the replica count and says which one decided it.
func limitsOf(in Input, e *Explanation) ([]Limit, string) {
	var ls []Limit
	bound := ""
	add := func(name string, replicas *int32, binding bool, msg string) {
		binding = binding && bound == ""
		if binding {
			bound = name
		}
		ls = append(ls, Limit{Name: name, Replicas: replicas, Binding: binding, Message: msg})
	}
	switch e.State {
	case StatePinned, StatePaused:
		add(LimitPaused, e.Target.Replicas, true, e.StateMessage)
		return ls, bound
	case StateNotReady:
		add(LimitNotReady, e.Target.Replicas, true, e.StateMessage)
		return ls, bound
	}
	h := e.HPA
	level, parks := idleLevel(e.Spec)
	atIdle := parks && e.Target.Replicas != nil && *e.Target.Replicas <= level && e.State != StateActive && e.State != StateFallback
	if atIdle {
		add(LimitIdle, ptr(level), true, fmt.Sprintf("ebb parked the target at %d; the HPA does not scale a target at zero, and ebb wakes it on activity", level))
	}
	for _, t := range e.Triggers {
		for _, m := range t.Metrics {
			if m.Fallback {
				add(LimitFallback, e.Spec.FallbackReplicas, true, fmt.Sprintf("trigger %s has failed %d samples in a row; ebb serves %s = fallback.replicas x target", t.Name, t.ConsecutiveFailures, m.Value))
			}
		}
	}
	if h == nil {
		if bound == "" {
			bound = LimitTriggers
		}
		return ls, bound
	}
	// ScalingDisabled on a target above zero is the HPA's status from before ebb woke the target: it
	// changes at the HPA's next sync.
	if c := h.condition(autoscalingv2.ScalingActive); c != nil && c.Status == string(metav1.ConditionFalse) && !atIdle &&
		(c.Reason != "ScalingDisabled" || e.Target.Replicas == nil || *e.Target.Replicas == 0) {
		add(LimitHPAUnavailable, nil, true, fmt.Sprintf("the HPA is not computing (%s): %s", c.Reason, c.Message))
	}
	asked := int32(-1)
	if e.Asked != nil {
		asked = *e.Asked
	}
	if g := e.Guard; g != nil && g.Tripped {
		held := h.MaxReplicas
		add(LimitGuard, ptr(held), asked > held, fmt.Sprintf("the consumer-health guard holds the HPA's maxReplicas at %d (%s; see Guard)", held, g.Reason))
	}
	add(LimitMaxReplicas, ptr(e.Spec.MaxReplicas), asked > h.MaxReplicas, fmt.Sprintf("spec.maxReplicas=%d", e.Spec.MaxReplicas))
	for _, t := range e.Triggers {
		// The kafka trigger says in its status message when it capped the lag (scalers/kafka).
		if t.Type == "kafka" && strings.HasPrefix(t.Message, "lag capped at ") && t.Asked != nil && *t.Asked == asked {
			add(LimitPartitions, t.Asked, asked <= h.MaxReplicas, fmt.Sprintf("trigger %s: %s", t.Name, t.Message))
		}
	}
	add(LimitMinReplicas, ptr(h.MinReplicas), asked >= 0 && asked < h.MinReplicas, fmt.Sprintf("the HPA's minReplicas=%d (spec.minReplicas, at least 1: ebb itself goes to and from zero)", h.MinReplicas))
	want := min(max(asked, h.MinReplicas), h.MaxReplicas)
	limited := h.condition(autoscalingv2.ScalingLimited)
	switch {
	case bound != "":
		// Idle, fallback or an HPA that cannot compute decided; the HPA's own numbers say nothing more.
	case asked >= 0 && h.DesiredReplicas != want:
		msg := fmt.Sprintf("the HPA wants %d where the triggers ask %d", h.DesiredReplicas, want)
		switch {
		case limited != nil && limited.Status == string(metav1.ConditionTrue):
			msg += fmt.Sprintf(" (%s: %s)", limited.Reason, limited.Message)
		case h.CurrentReplicas > 0 && within(float64(want)/float64(h.CurrentReplicas), hpaTolerance):
			msg += fmt.Sprintf(": %d is within the HPA's 10%% tolerance of the current %d", want, h.CurrentReplicas)
		case want < h.DesiredReplicas:
			msg += ": the HPA's scale-down stabilization window (5m unless spec.hpa.behavior says otherwise) keeps the highest recent recommendation"
		default:
			msg += ": the HPA has not synced since the value changed, or its behavior limits the rate of scaling"
		}
		add(LimitHPABehavior, ptr(h.DesiredReplicas), true, msg)
	case limited != nil && limited.Status == string(metav1.ConditionTrue) && limited.Reason != "TooManyReplicas" && limited.Reason != "TooFewReplicas":
		add(LimitHPABehavior, ptr(h.DesiredReplicas), true, fmt.Sprintf("%s: %s", limited.Reason, limited.Message))
	}
	if bound == "" {
		bound = LimitTriggers
	}
	return ls, bound
}

func within(ratio, tol float64) bool { return ratio != 1 && ratio >= 1-tol && ratio <= 1+tol }

func nextOf(in Input, e *Explanation) Next {
	interval := e.Spec.PollingInterval
	switch e.State {
	case StatePinned:
		return Next{Actor: "user", Action: fmt.Sprintf("nothing until annotation %s is removed", ebbv1.PausedReplicasAnnotation), Replicas: e.Target.Replicas}
	case StatePaused:
		return Next{Actor: "user", Action: fmt.Sprintf("nothing until annotation %s is removed", ebbv1.PausedAnnotation), Replicas: e.Target.Replicas}
	case StateNotReady:
		return Next{Actor: "user", Action: "fix what the Ready condition names; ebb looks again when the ScaledConsumer changes"}
	case StateWaiting:
		return Next{Actor: "ebb", Action: fmt.Sprintf("samples every trigger within pollingInterval (%s)", interval)}
	case StateFallback:
		return Next{Actor: "hpa", Action: fmt.Sprintf("holds fallback.replicas=%d until the failing trigger samples successfully (ebb retries every %s); then the HPA follows the triggers again", deref(e.Spec.FallbackReplicas, 0), interval), Replicas: e.Spec.FallbackReplicas}
	case StateCoolingDown:
		level, _ := idleLevel(e.Spec)
		if strings.Contains(e.StateMessage, "holds the target") {
			return Next{Actor: "ebb", Action: "holds until every trigger reads zero without errors, then waits out the cooldown"}
		}
		return Next{Actor: "ebb", Action: fmt.Sprintf("scales the target to %d, unless a trigger becomes active first", level), Replicas: ptr(level), At: e.CooldownUntil}
	case StateIdle:
		if _, parks := idleLevel(e.Spec); !parks {
			return Next{Actor: "hpa", Action: fmt.Sprintf("holds minReplicas=%d until a trigger asks for more", e.Spec.MinReplicas), Replicas: ptr(e.Spec.MinReplicas)}
		}
		woken := max(e.Spec.MinReplicas, 1)
		return Next{Actor: "ebb", Action: fmt.Sprintf("wakes the target to %d on the first sample above a trigger's activation threshold (sampled every %s)", woken, interval), Replicas: ptr(woken)}
	}
	// Active.
	h := e.HPA
	if h == nil {
		return Next{Actor: "ebb", Action: "applies the HPA at its next look"}
	}
	current := h.CurrentReplicas
	if e.Target.Replicas != nil {
		current = *e.Target.Replicas
	}
	if g := e.Guard; g != nil && g.Tripped && e.BoundBy == LimitGuard {
		return Next{Actor: "ebb", Action: fmt.Sprintf("keeps scale-up held at %d until the consumers are healthy for the guard's releaseAfter; scaling down stays possible", h.MaxReplicas), Replicas: ptr(h.MaxReplicas)}
	}
	if e.BoundBy == LimitHPAUnavailable {
		return Next{Actor: "hpa", Action: fmt.Sprintf("keeps %d until it can compute again (its ScalingActive condition says why)", current), Replicas: ptr(current)}
	}
	if h.DesiredReplicas != current && h.DesiredReplicas > 0 {
		return Next{Actor: "hpa", Action: fmt.Sprintf("scales the target from %d to %d (%s)", current, h.DesiredReplicas, e.BoundBy), Replicas: ptr(h.DesiredReplicas)}
	}
	if e.Asked != nil {
		want := min(max(*e.Asked, h.MinReplicas), h.MaxReplicas)
		if want < current {
			return Next{Actor: "hpa", Action: fmt.Sprintf("scales down to %d once its scale-down stabilization window has passed", want), Replicas: ptr(want)}
		}
	}
	return Next{Actor: "hpa", Action: fmt.Sprintf("holds %d (%s) while the backlog asks for it; when no trigger is active, ebb's cooldown (%s) starts", current, e.BoundBy, e.Spec.CooldownPeriod), Replicas: ptr(current)}
}
