package controller

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

// notReady records why the ScaledConsumer does not work, with an event when the reason or message is new.
// The condition and the event carry as much of msg as their limits allow.
func (r *Reconciler) notReady(sc *ebbv1.ScaledConsumer, reason, msg string) {
	msg = truncate(msg, conditionMessageLimit)
	old := meta.FindStatusCondition(sc.Status.Conditions, ebbv1.ConditionReady)
	if old == nil || old.Status != metav1.ConditionFalse || old.Reason != reason || old.Message != msg {
		r.Recorder.Eventf(sc, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", truncate(msg, eventNoteLimit))
	}
	r.setCondition(sc, ebbv1.ConditionReady, metav1.ConditionFalse, reason, msg)
}

// setCondition sets a condition, its message cut to the API's limit so that the status write cannot fail
// on it.
func (r *Reconciler) setCondition(sc *ebbv1.ScaledConsumer, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&sc.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: truncate(msg, conditionMessageLimit), ObservedGeneration: sc.Generation,
	})
}

func (r *Reconciler) statusRefresh() time.Duration {
	if r.StatusRefresh > 0 {
		return r.StatusRefresh
	}
	return 30 * time.Second
}

func (r *Reconciler) setActivityConditions(sc *ebbv1.ScaledConsumer, states []triggerState, act activationResult) {
	var active, failing []string
	sampled := len(states) > 0
	for _, s := range states {
		sampled = sampled && (s.Sampled || s.Err != nil)
		if s.Active && s.Err == nil {
			active = append(active, fmt.Sprintf("%s=%s", s.Name, formatValues(s)))
		}
		if s.Err != nil {
			failing = append(failing, fmt.Sprintf("trigger %q is failing: %v", s.Name, s.Err))
		}
	}
	switch {
	case !sampled:
		r.setCondition(sc, ebbv1.ConditionActive, metav1.ConditionUnknown, ReasonNotSampled, "waiting for the first sample of every trigger")
	case len(active) > 0:
		r.setCondition(sc, ebbv1.ConditionActive, metav1.ConditionTrue, ReasonTriggerActive, "above activation threshold: "+strings.Join(active, ", "))
	default:
		msg := "no trigger is above its activation threshold"
		if act.Message != "" && act.Scale == nil {
			msg += "; " + act.Message
		}
		r.setCondition(sc, ebbv1.ConditionActive, metav1.ConditionFalse, ReasonNoActivity, msg)
	}
	fallbackDue := false
	for _, s := range states {
		fallbackDue = fallbackDue || s.FallbackDue
	}
	switch {
	case fallbackDue:
		r.setCondition(sc, ebbv1.ConditionFallback, metav1.ConditionTrue, ReasonTriggersFailing,
			fmt.Sprintf("%s; the HPA is driven to fallback.replicas=%d until the next good sample", strings.Join(failing, "; "), sc.Spec.Fallback.Replicas))
	case len(failing) > 0 && sc.Spec.Fallback == nil:
		r.setCondition(sc, ebbv1.ConditionFallback, metav1.ConditionFalse, ReasonNoFallbackConfigured,
			strings.Join(failing, "; ")+"; without spec.fallback the HPA holds its current replicas")
	case len(failing) > 0:
		r.setCondition(sc, ebbv1.ConditionFallback, metav1.ConditionFalse, ReasonBelowFailureThreshold,
			fmt.Sprintf("%s; fallback starts after %d consecutive failures", strings.Join(failing, "; "), sc.Spec.Fallback.FailureThreshold))
	default:
		r.setCondition(sc, ebbv1.ConditionFallback, metav1.ConditionFalse, ReasonTriggersHealthy, "every trigger's last sample succeeded")
	}
}

func (r *Reconciler) setTriggerStatus(sc *ebbv1.ScaledConsumer, states []triggerState) {
	out := make([]ebbv1.TriggerStatus, 0, len(states))
	for _, s := range states {
		ts := ebbv1.TriggerStatus{Name: s.Name, Active: s.Active && s.Err == nil, ConsecutiveFailures: s.ConsecutiveFailures}
		if s.Sampled {
			ts.Value, ts.Message = truncate(formatValues(s), triggerValueLimit), truncate(s.Message, triggerMessageLimit)
		}
		if !s.LastPoll.IsZero() {
			ts.LastPollTime = &metav1.Time{Time: s.LastPoll}
		}
		if s.Err != nil {
			ts.LastError = truncate(s.Err.Error(), triggerErrorLimit)
		}
		out = append(out, ts)
	}
	sc.Status.Triggers = out
}

func formatValues(s triggerState) string {
	if len(s.Values) == 1 {
		return strconv.FormatFloat(s.Values[0], 'f', -1, 64)
	}
	parts := make([]string, len(s.Values))
	for i, v := range s.Values {
		parts[i] = s.MetricNames[i] + "=" + strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strings.Join(parts, ",")
}

func countMetrics(states []triggerState) int {
	n := 0
	for _, s := range states {
		n += len(s.MetricNames)
	}
	return n
}

// writeStatus patches status when something in it other than the triggers' lastPollTime changed. When
// only numbers and texts changed (onlyValuesChanged), it writes at most once per StatusRefresh.
func (r *Reconciler) writeStatus(ctx context.Context, orig, sc *ebbv1.ScaledConsumer, res *ctrl.Result) error {
	if equality.Semantic.DeepEqual(withoutPollTimes(orig.Status), withoutPollTimes(sc.Status)) {
		return nil // a newer lastPollTime alone is not worth a write (see TriggerStatus.LastPollTime)
	}
	key := client.ObjectKeyFromObject(sc)
	now := r.Clock.Now()
	if onlyValuesChanged(orig.Status, sc.Status) {
		r.mu.Lock()
		last := r.lastWritten[key]
		r.mu.Unlock()
		if wait := last.Add(r.statusRefresh()).Sub(now); wait > 0 {
			if res.RequeueAfter == 0 || wait < res.RequeueAfter {
				res.RequeueAfter = wait
			}
			return nil
		}
	}
	if err := r.Client.Status().Patch(ctx, sc, client.MergeFrom(orig)); err != nil {
		r.Metrics.ReconcileErrors.WithLabelValues("status").Inc()
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("writing status: %w", err)
	}
	r.mu.Lock()
	if r.lastWritten == nil {
		r.lastWritten = map[types.NamespacedName]time.Time{}
	}
	r.lastWritten[key] = now
	r.mu.Unlock()
	return nil
}

// withoutPollTimes is s without its triggers' lastPollTime.
func withoutPollTimes(s ebbv1.ScaledConsumerStatus) ebbv1.ScaledConsumerStatus {
	s = *s.DeepCopy()
	for i := range s.Triggers {
		s.Triggers[i].LastPollTime = nil
	}
	return s
}

func onlyValuesChanged(a, b ebbv1.ScaledConsumerStatus) bool {
	strip := func(s ebbv1.ScaledConsumerStatus) ebbv1.ScaledConsumerStatus {
		s = *s.DeepCopy()
		// lastActiveTime moves at every sample while a trigger is active; the first one, and the change of
		// activity that ends it, are written at once (Active changes with them).
		if s.LastActiveTime != nil {
			s.LastActiveTime = &metav1.Time{}
		}
		for i := range s.Triggers {
			t := &s.Triggers[i]
			t.Value, t.Message, t.LastPollTime, t.ConsecutiveFailures, t.LastError = "", "", nil, 0, ""
		}
		if g := s.Guard; g != nil {
			g.DeadLetterDepth, g.DeadLetterInflowPerMinute, g.DeadLetterRatio = "", "", ""
		}
		// The guard's message carries its numbers; its status and reason are what matter at once.
		if c := meta.FindStatusCondition(s.Conditions, ebbv1.ConditionConsumersHealthy); c != nil {
			c.Message = ""
		}
		return s
	}
	return equality.Semantic.DeepEqual(strip(a), strip(b))
}

func (r *Reconciler) exportConditions(sc *ebbv1.ScaledConsumer) {
	for _, t := range []string{ebbv1.ConditionReady, ebbv1.ConditionActive, ebbv1.ConditionFallback, ebbv1.ConditionPaused, ebbv1.ConditionConsumersHealthy} {
		v := 0.0
		if meta.IsStatusConditionTrue(sc.Status.Conditions, t) {
			v = 1
		}
		r.Metrics.Condition.WithLabelValues(sc.Namespace, sc.Name, t).Set(v)
	}
}
