package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

// failureView is what status said about failures before this reconcile: whether the ScaledConsumer was
// on fallback, and the last error of each trigger. It is persisted, so a restart of ebb announces nothing
// that was announced before.
type failureView struct {
	fallback bool
	errs     map[string]string
}

// failuresBefore is what was last announced for sc: what this process announced last (the informer cache
// may not hold the status it wrote yet, and announcing from a stale status would repeat the event), or,
// after a restart, what status says.
func (r *Reconciler) failuresBefore(sc *ebbv1.ScaledConsumer) failureView {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.announced[client.ObjectKeyFromObject(sc)]; ok {
		return v
	}
	return failuresOf(sc.Status)
}

// forgetAnnounced drops what was announced for key: its triggers stopped (invalid, or another scaler owns
// the target) and status no longer lists them.
func (r *Reconciler) forgetAnnounced(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.announced, key)
}

func failuresOf(st ebbv1.ScaledConsumerStatus) failureView {
	v := failureView{fallback: meta.IsStatusConditionTrue(st.Conditions, ebbv1.ConditionFallback), errs: map[string]string{}}
	for _, t := range st.Triggers {
		v.errs[t.Name] = t.LastError
	}
	return v
}

// announceFailures tells a person, once per transition, what changed in the triggers' failures since
// before: a Warning event and a log line when a trigger starts failing and when the ScaledConsumer enters
// fallback, a Normal event and a log line when a trigger samples again and when fallback ends. The
// Fallback condition and status.triggers, written in the same status patch, carry the transition, so
// polls that change nothing send nothing.
func (r *Reconciler) announceFailures(ctx context.Context, sc *ebbv1.ScaledConsumer, before failureView, states []triggerState) {
	lg := log.FromContext(ctx)
	defer func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.announced == nil {
			r.announced = map[types.NamespacedName]failureView{}
		}
		r.announced[client.ObjectKeyFromObject(sc)] = failuresOf(sc.Status)
	}()
	for _, s := range states {
		old, known := before.errs[s.Name]
		switch {
		case s.Err != nil && (!known || old == ""):
			msg := fmt.Sprintf("trigger %q is failing: %v; %s", s.Name, s.Err, failureConsequence(sc))
			r.Recorder.Eventf(sc, nil, corev1.EventTypeWarning, ReasonTriggerFailing, "Sample", "%s", eventNote(msg))
			lg.Info("trigger failing", "trigger", s.Name, "error", s.Err.Error())
		case s.Err == nil && s.Sampled && known && old != "":
			msg := fmt.Sprintf("trigger %q samples again (value %s) after failing with: %s", s.Name, formatValues(s), old)
			r.Recorder.Eventf(sc, nil, corev1.EventTypeNormal, ReasonTriggerRecovered, "Sample", "%s", eventNote(msg))
			lg.Info("trigger recovered", "trigger", s.Name, "value", formatValues(s))
		}
	}
	c := meta.FindStatusCondition(sc.Status.Conditions, ebbv1.ConditionFallback)
	if c == nil {
		return
	}
	now := c.Status == metav1.ConditionTrue
	switch {
	case now && !before.fallback:
		r.Metrics.FallbackEntries.WithLabelValues(sc.Namespace, sc.Name).Inc()
		r.Recorder.Eventf(sc, nil, corev1.EventTypeWarning, c.Reason, "Fallback", "%s", eventNote("entering fallback: "+c.Message))
		lg.Info("entering fallback", "fallbackReplicas", sc.Spec.Fallback.Replicas, "message", c.Message)
	case !now && before.fallback:
		r.Recorder.Eventf(sc, nil, corev1.EventTypeNormal, ReasonFallbackEnded, "Fallback", "%s", eventNote("leaving fallback: "+c.Message))
		lg.Info("leaving fallback", "message", c.Message)
	}
}

// failureConsequence says what a failing trigger does to the scaling.
func failureConsequence(sc *ebbv1.ScaledConsumer) string {
	if f := sc.Spec.Fallback; f != nil {
		return fmt.Sprintf("ebb does not scale to idle while it fails, and after %d consecutive failures it drives the HPA to fallback.replicas=%d", max(f.FailureThreshold, 1), f.Replicas)
	}
	return "ebb does not scale to idle while it fails, and without spec.fallback the HPA holds its current replicas"
}
