package controller

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/scalers"
)

// Ready=False reasons other than trigger problems, and Ready=True's.
const (
	ReasonTargetConflict    = "TargetConflict"
	ReasonForeignHPA        = "ForeignHPA"
	ReasonHPANameTaken      = "HPANameTaken"
	ReasonTargetNotFound    = "TargetNotFound"
	ReasonTargetNotScalable = "TargetNotScalable"
	ReasonHPAApplyFailed    = "HPAApplyFailed"
	ReasonInvalidPause      = "InvalidPausedReplicas"
	ReasonHPAReady          = "HPAReady"
	ReasonPaused            = "Paused"
	ReasonIdle              = "Idle"
)

// +kubebuilder:rbac:groups=ebb.dev,resources=scaledconsumers,verbs=get;list;watch
// +kubebuilder:rbac:groups=ebb.dev,resources=scaledconsumers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=ebb.dev,resources=scaledconsumers/finalizers,verbs=update
// +kubebuilder:rbac:groups=ebb.dev,resources=triggerauthentications,verbs=get;list;watch
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=*,resources=*/scale,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch;update
// Leader election (ebb run --leader-elect --leader-election-namespace=ebb-system): its Lease, and the core/v1
// Events client-go records on it. A Role in ebb-system, not a cluster-wide rule: write access to every Lease
// would let ebb take over the leader elections of other components (kube-controller-manager's included).
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=ebb-system,roleName=ebb-leader-election,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",namespace=ebb-system,roleName=ebb-leader-election,resources=events,verbs=create;patch

// Reconciler turns ScaledConsumers into HPAs and does what an HPA cannot: activation to and from zero,
// fallback from zero, pause. It is a thin shell: desiredHPA and decideActivation hold the logic.
type Reconciler struct {
	Client client.Client
	// APIReader reads Secrets without caching them.
	APIReader client.Reader
	Registry  scalers.Registry
	Poller    *Poller
	Clock     clock.PassiveClock
	Recorder  events.EventRecorder
	Metrics   *Metrics
	// StatusRefresh bounds how often status is written when only trigger values changed (default 30 s);
	// the live values are always in the metrics API and in ebb_trigger_value.
	StatusRefresh time.Duration

	mu          sync.Mutex
	lastWritten map[types.NamespacedName]time.Time
	applied     map[types.NamespacedName]appliedHPA
}

// Reconcile brings one ScaledConsumer's HPA, replicas and status in line with its spec and triggers.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	sc := &ebbv1.ScaledConsumer{}
	if err := r.Client.Get(ctx, req.NamespacedName, sc); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !sc.DeletionTimestamp.IsZero() {
		r.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	orig := sc.DeepCopy()
	res, err := r.reconcile(ctx, sc)
	if serr := r.writeStatus(ctx, orig, sc, &res); serr != nil && err == nil {
		err = serr
	}
	r.exportConditions(sc)
	return res, err
}

func (r *Reconciler) forget(key types.NamespacedName) {
	r.Poller.Remove(key)
	r.Metrics.forget(key.Namespace, key.Name)
	r.mu.Lock()
	delete(r.lastWritten, key)
	delete(r.applied, key)
	r.mu.Unlock()
}

// notReady records why the ScaledConsumer does not work, with an event when the reason or message is new.
func (r *Reconciler) notReady(sc *ebbv1.ScaledConsumer, reason, msg string) {
	old := meta.FindStatusCondition(sc.Status.Conditions, ebbv1.ConditionReady)
	if old == nil || old.Status != metav1.ConditionFalse || old.Reason != reason || old.Message != msg {
		r.Recorder.Eventf(sc, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", msg)
	}
	r.setCondition(sc, ebbv1.ConditionReady, metav1.ConditionFalse, reason, msg)
}

func (r *Reconciler) setCondition(sc *ebbv1.ScaledConsumer, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&sc.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: sc.Generation,
	})
}

func (r *Reconciler) reconcile(ctx context.Context, sc *ebbv1.ScaledConsumer) (ctrl.Result, error) {
	key := client.ObjectKeyFromObject(sc)
	hpaName := HPAName(sc)
	sc.Status.ObservedGeneration = sc.Generation
	sc.Status.HPAName = hpaName

	// One scaler per target: another ScaledConsumer or an HPA that is not ebb's is refused.
	if reason, msg, err := r.conflict(ctx, sc, hpaName); err != nil || reason != "" {
		if err != nil {
			return ctrl.Result{}, err
		}
		r.Poller.Remove(key)
		r.Metrics.forgetReplicas(key.Namespace, key.Name)
		sc.Status.Triggers = nil
		if err := r.deleteOwnedHPAs(ctx, sc, ""); err != nil {
			return ctrl.Result{}, err
		}
		r.notReady(sc, reason, msg)
		return ctrl.Result{}, nil
	}

	// Triggers: parse them and (re)start the poll when they changed.
	if res, err, ok := r.ensurePoll(ctx, sc); !ok {
		return res, err
	}
	states := r.Poller.States(key)

	// Pause annotations.
	paused, pausedReplicas, perr := pauseOf(sc)
	if perr != nil {
		r.notReady(sc, ReasonInvalidPause, perr.Error())
		paused = true
	}

	held := paused || pausedReplicas != nil
	if held {
		msg := "paused by annotation ebb.dev/paused; ebb removed the HPA and takes no scaling action until the annotation is removed"
		reason := ReasonPaused
		if pausedReplicas != nil {
			msg = "pinned by " + pausedReplicasText(*pausedReplicas) + "; ebb removed the HPA until the annotation is removed"
			reason = ReasonPausedReplicas
		}
		r.setCondition(sc, ebbv1.ConditionPaused, metav1.ConditionTrue, reason, msg)
	} else {
		r.setCondition(sc, ebbv1.ConditionPaused, metav1.ConditionFalse, "NotPaused", "no pause annotation")
	}

	target, scale, prob, err := r.getScale(ctx, sc)
	if err != nil {
		r.Metrics.ReconcileErrors.WithLabelValues("scale").Inc()
		return ctrl.Result{}, err
	}
	if prob != nil {
		// An HPA ebb applied before stays as it is (it reports the same problem in its status).
		if held {
			if err := r.deleteOwnedHPAs(ctx, sc, ""); err != nil {
				return ctrl.Result{}, err
			}
		}
		r.notReady(sc, prob.reason, prob.msg)
		r.Metrics.forgetReplicas(key.Namespace, key.Name)
		r.setTriggerStatus(sc, states)
		return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
	}
	r.Poller.SetReplicas(key, scaleReplicas(scale))
	r.setGuardStatus(sc, scaleReplicas(scale))
	in := r.activationInput(sc, scaleReplicas(scale), states, paused, pausedReplicas)
	act := decideActivation(in)
	if act.LastActive != nil {
		sc.Status.LastActiveTime = &metav1.Time{Time: *act.LastActive}
	}

	// The HPA: removed while paused (an HPA cannot be told to hold) and while parked at idleReplicas > 0
	// (an HPA raises a target below its minReplicas, and its minReplicas is at least 1); applied otherwise.
	// It is synced before ebb scales, so a parked target is not scaled back up by the HPA in between.
	after := scaleReplicas(scale)
	if act.Scale != nil {
		after = *act.Scale
	}
	parked := !held && sc.Spec.IdleReplicas != nil && *sc.Spec.IdleReplicas > 0 && after <= *sc.Spec.IdleReplicas && !act.Active
	// A failed apply does not stop ebb from waking the target or putting it on fallback replicas: those do
	// not need the HPA. A failed removal does stop it, since the HPA would undo the parking.
	hpaErr := r.syncHPA(ctx, sc, states, !held && !parked)
	if hpaErr != nil && (held || parked) {
		return ctrl.Result{}, hpaErr
	}
	switch {
	case hpaErr != nil:
		// syncHPA set Ready=False with the API server's message.
	case held && perr == nil:
		r.setCondition(sc, ebbv1.ConditionReady, metav1.ConditionTrue, ReasonPaused, "triggers are valid; scaling is paused")
	case parked:
		r.setCondition(sc, ebbv1.ConditionReady, metav1.ConditionTrue, ReasonIdle,
			fmt.Sprintf("%s %s is parked at idleReplicas=%d; ebb removed HPA %s until a trigger is active", sc.Spec.ScaleTargetRef.Kind, sc.Spec.ScaleTargetRef.Name, *sc.Spec.IdleReplicas, hpaName))
	case !held:
		r.setCondition(sc, ebbv1.ConditionReady, metav1.ConditionTrue, ReasonHPAReady,
			fmt.Sprintf("HPA %s scales %s %s on %d metric(s)", hpaName, sc.Spec.ScaleTargetRef.Kind, sc.Spec.ScaleTargetRef.Name, countMetrics(states)))
	}

	if act.Scale != nil {
		if err := r.setScale(ctx, target, scale, *act.Scale); err != nil {
			r.Metrics.ReconcileErrors.WithLabelValues("scale").Inc()
			return ctrl.Result{}, fmt.Errorf("scaling %s %s to %d: %w", sc.Spec.ScaleTargetRef.Kind, sc.Spec.ScaleTargetRef.Name, *act.Scale, err)
		}
		r.Poller.SetReplicas(key, *act.Scale)
		r.Metrics.ScaleActions.WithLabelValues(sc.Namespace, sc.Name, act.Reason).Inc()
		r.Recorder.Eventf(sc, nil, corev1.EventTypeNormal, act.Reason, "Scale", "%s %s: %s", sc.Spec.ScaleTargetRef.Kind, sc.Spec.ScaleTargetRef.Name, act.Message)
		log.FromContext(ctx).Info("scaled", "reason", act.Reason, "from", scaleReplicas(scale), "to", *act.Scale, "message", act.Message)
	}
	r.exportReplicas(ctx, sc, scale, act.Scale, !held && !parked)
	r.setActivityConditions(sc, states, act)
	r.setTriggerStatus(sc, states)

	res := ctrl.Result{RequeueAfter: r.statusRefresh()}
	if act.RecheckAfter > 0 && act.RecheckAfter < res.RequeueAfter {
		res.RequeueAfter = act.RecheckAfter
	}
	if hpaErr != nil && !apierrors.IsInvalid(hpaErr) && !apierrors.IsForbidden(hpaErr) {
		return res, hpaErr // transient: retried with backoff
	}
	// An HPA the API server refuses (an out-of-range spec.hpa.behavior, say) is fixed in the spec, which
	// reconciles again; retrying sooner would only repeat the refusal.
	return res, nil
}

// ensurePoll makes the poller run the ScaledConsumer's triggers. ok is false when the triggers are
// invalid (the condition and event are set) or an error occurred.
func (r *Reconciler) ensurePoll(ctx context.Context, sc *ebbv1.ScaledConsumer) (ctrl.Result, error, bool) {
	key := client.ObjectKeyFromObject(sc)
	fp, err := r.fingerprint(ctx, sc)
	if err == nil {
		if running, ok := r.Poller.Fingerprint(key); ok && running == fp {
			return ctrl.Result{}, nil, true
		}
		var spec PollSpec
		if spec, err = r.buildPoll(ctx, sc, fp); err == nil {
			r.Poller.Ensure(key, spec)
			return ctrl.Result{}, nil, true
		}
	}
	var te *triggerError
	if !errors.As(err, &te) {
		r.Metrics.ReconcileErrors.WithLabelValues("triggers").Inc()
		return ctrl.Result{}, err, false
	}
	// The HPA is left as it is: with its metrics gone from the store, it holds the current replicas.
	r.Poller.Remove(key)
	sc.Status.Triggers = nil
	r.notReady(sc, te.Reason, te.Error())
	meta.RemoveStatusCondition(&sc.Status.Conditions, ebbv1.ConditionActive)
	meta.RemoveStatusCondition(&sc.Status.Conditions, ebbv1.ConditionFallback)
	if te.Reason == ReasonAuthenticationNotFound {
		// Secrets are not watched: look again.
		return ctrl.Result{RequeueAfter: 30 * time.Second}, nil, false
	}
	return ctrl.Result{}, nil, false
}

func (r *Reconciler) statusRefresh() time.Duration {
	if r.StatusRefresh > 0 {
		return r.StatusRefresh
	}
	return 30 * time.Second
}

// pauseOf reads the pause annotations. A paused-replicas value that is not a non-negative integer is an
// error (and ebb treats the ScaledConsumer as paused: the safe reading of "pin it").
func pauseOf(sc *ebbv1.ScaledConsumer) (paused bool, replicas *int32, err error) {
	if v, ok := sc.Annotations[ebbv1.PausedReplicasAnnotation]; ok {
		n, perr := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if perr != nil || n < 0 {
			return true, nil, fmt.Errorf("annotation %s=%q is not a non-negative integer; ebb holds the target as it is until it is fixed or removed", ebbv1.PausedReplicasAnnotation, v)
		}
		return true, ptr(int32(n)), nil
	}
	v, ok := sc.Annotations[ebbv1.PausedAnnotation]
	if !ok {
		return false, nil, nil
	}
	b, perr := strconv.ParseBool(strings.TrimSpace(v))
	if perr != nil {
		return true, nil, fmt.Errorf("annotation %s=%q is not true or false; ebb treats it as paused until it is fixed or removed", ebbv1.PausedAnnotation, v)
	}
	return b, nil, nil
}

func (r *Reconciler) activationInput(sc *ebbv1.ScaledConsumer, current int32, states []TriggerState, paused bool, pausedReplicas *int32) activationInput {
	in := activationInput{
		Now:             r.Clock.Now(),
		Created:         sc.CreationTimestamp.Time,
		Min:             minReplicas(sc),
		Idle:            sc.Spec.IdleReplicas,
		Cooldown:        durationOr(sc.Spec.CooldownPeriod, 300*time.Second),
		InitialCooldown: durationOr(sc.Spec.InitialCooldownPeriod, 0),
		Current:         current,
		Paused:          paused,
		PausedReplicas:  pausedReplicas,
	}
	if sc.Spec.Fallback != nil {
		in.Fallback = ptr(sc.Spec.Fallback.Replicas)
	}
	if t := sc.Status.LastActiveTime; t != nil {
		in.LastActive = ptr(t.Time)
	}
	for _, s := range states {
		v := triggerView{Sampled: s.Sampled, Active: s.Active, Failing: s.Err != nil, FallbackDue: s.FallbackDue, Backlog: s.Backlog, LastActive: s.LastActive}
		in.Triggers = append(in.Triggers, v)
	}
	return in
}

func (r *Reconciler) setActivityConditions(sc *ebbv1.ScaledConsumer, states []TriggerState, act activationResult) {
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
		r.setCondition(sc, ebbv1.ConditionActive, metav1.ConditionUnknown, "NotSampled", "waiting for the first sample of every trigger")
	case len(active) > 0:
		r.setCondition(sc, ebbv1.ConditionActive, metav1.ConditionTrue, "TriggerActive", "above activation threshold: "+strings.Join(active, ", "))
	default:
		msg := "no trigger is above its activation threshold"
		if act.Message != "" && act.Scale == nil {
			msg += "; " + act.Message
		}
		r.setCondition(sc, ebbv1.ConditionActive, metav1.ConditionFalse, "NoActivity", msg)
	}
	fallbackDue := false
	for _, s := range states {
		fallbackDue = fallbackDue || s.FallbackDue
	}
	switch {
	case fallbackDue:
		r.setCondition(sc, ebbv1.ConditionFallback, metav1.ConditionTrue, "TriggersFailing",
			fmt.Sprintf("%s; the HPA is driven to fallback.replicas=%d until the next good sample", strings.Join(failing, "; "), sc.Spec.Fallback.Replicas))
	case len(failing) > 0 && sc.Spec.Fallback == nil:
		r.setCondition(sc, ebbv1.ConditionFallback, metav1.ConditionFalse, "NoFallbackConfigured",
			strings.Join(failing, "; ")+"; without spec.fallback the HPA holds its current replicas")
	case len(failing) > 0:
		r.setCondition(sc, ebbv1.ConditionFallback, metav1.ConditionFalse, "BelowFailureThreshold",
			fmt.Sprintf("%s; fallback starts after %d consecutive failures", strings.Join(failing, "; "), sc.Spec.Fallback.FailureThreshold))
	default:
		r.setCondition(sc, ebbv1.ConditionFallback, metav1.ConditionFalse, "TriggersHealthy", "every trigger's last sample succeeded")
	}
}

func (r *Reconciler) setTriggerStatus(sc *ebbv1.ScaledConsumer, states []TriggerState) {
	out := make([]ebbv1.TriggerStatus, 0, len(states))
	for _, s := range states {
		ts := ebbv1.TriggerStatus{Name: s.Name, Active: s.Active && s.Err == nil, ConsecutiveFailures: s.ConsecutiveFailures}
		if s.Sampled {
			ts.Value = formatValues(s)
		}
		if !s.LastPoll.IsZero() {
			ts.LastPollTime = &metav1.Time{Time: s.LastPoll}
		}
		if s.Err != nil {
			ts.LastError = s.Err.Error()
		}
		out = append(out, ts)
	}
	sc.Status.Triggers = out
}

func formatValues(s TriggerState) string {
	if len(s.Values) == 1 {
		return strconv.FormatFloat(s.Values[0], 'f', -1, 64)
	}
	parts := make([]string, len(s.Values))
	for i, v := range s.Values {
		parts[i] = s.MetricNames[i] + "=" + strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strings.Join(parts, ",")
}

func countMetrics(states []TriggerState) int {
	n := 0
	for _, s := range states {
		n += len(s.MetricNames)
	}
	return n
}

// writeStatus patches status when it changed. When only trigger values and poll times changed, it writes
// at most once per StatusRefresh.
func (r *Reconciler) writeStatus(ctx context.Context, orig, sc *ebbv1.ScaledConsumer, res *ctrl.Result) error {
	if equality.Semantic.DeepEqual(orig.Status, sc.Status) {
		return nil
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

func onlyValuesChanged(a, b ebbv1.ScaledConsumerStatus) bool {
	strip := func(s ebbv1.ScaledConsumerStatus) ebbv1.ScaledConsumerStatus {
		s = *s.DeepCopy()
		for i := range s.Triggers {
			t := &s.Triggers[i]
			t.Value, t.LastPollTime, t.ConsecutiveFailures, t.LastError = "", nil, 0, ""
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

// syncHPA applies the HPA (and deletes any other HPA this ScaledConsumer controls) when want, and deletes
// every HPA it controls otherwise.
func (r *Reconciler) syncHPA(ctx context.Context, sc *ebbv1.ScaledConsumer, states []TriggerState, want bool) error {
	if !want {
		return r.deleteOwnedHPAs(ctx, sc, "")
	}
	if err := r.applyHPA(ctx, sc, states); err != nil {
		r.Metrics.ReconcileErrors.WithLabelValues("hpa").Inc()
		r.notReady(sc, ReasonHPAApplyFailed, fmt.Sprintf("applying HPA %s: %v", HPAName(sc), err))
		return err
	}
	return r.deleteOwnedHPAs(ctx, sc, HPAName(sc))
}

// applyHPA server-side applies the desired HPA for the metrics the poller serves.
func (r *Reconciler) applyHPA(ctx context.Context, sc *ebbv1.ScaledConsumer, states []TriggerState) error {
	var metrics []HPAMetric
	for _, s := range states {
		for i, n := range s.MetricNames {
			metrics = append(metrics, HPAMetric{Name: n, Target: s.Specs[i].Target})
		}
	}
	hpa, err := desiredHPA(sc, metrics)
	if err != nil {
		return err
	}
	// Skip the write when ebb applied exactly this (same hash) and nobody changed the HPA's spec since
	// (same generation as ebb's apply left it). Not a diff: any change to the spec, by anyone, makes ebb
	// apply again. This saves one write per ScaledConsumer per reconcile.
	hash, err := applyHash(hpa)
	if err != nil {
		return err
	}
	hpa.WithAnnotations(map[string]string{HPAHashAnnotation: hash})
	key := client.ObjectKeyFromObject(sc)
	r.mu.Lock()
	last, seen := r.applied[key]
	r.mu.Unlock()
	cached := &autoscalingv2.HorizontalPodAutoscaler{}
	if seen && last.hash == hash {
		if err := r.Client.Get(ctx, types.NamespacedName{Namespace: sc.Namespace, Name: *hpa.Name}, cached); err == nil &&
			metav1.IsControlledBy(cached, sc) && cached.Annotations[HPAHashAnnotation] == hash && cached.Generation == last.generation {
			return nil
		}
	}
	start := time.Now()
	err = r.Client.Apply(ctx, hpa, client.FieldOwner(FieldManager), client.ForceOwnership)
	r.Metrics.HPAApplyDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		return err
	}
	if hpa.Generation != nil {
		r.mu.Lock()
		if r.applied == nil {
			r.applied = map[types.NamespacedName]appliedHPA{}
		}
		r.applied[key] = appliedHPA{hash: hash, generation: *hpa.Generation}
		r.mu.Unlock()
	}
	return nil
}

// appliedHPA is what ebb last applied for a ScaledConsumer: its hash and the generation it left.
type appliedHPA struct {
	hash       string
	generation int64
}

// deleteOwnedHPAs deletes the HPAs this ScaledConsumer controls, except the one named keep.
func (r *Reconciler) deleteOwnedHPAs(ctx context.Context, sc *ebbv1.ScaledConsumer, keep string) error {
	list := &autoscalingv2.HorizontalPodAutoscalerList{}
	if err := r.Client.List(ctx, list, client.InNamespace(sc.Namespace), client.MatchingLabels{ebbv1.ScaledConsumerLabel: sc.Name}); err != nil {
		return err
	}
	for i := range list.Items {
		h := &list.Items[i]
		if h.Name == keep || !metav1.IsControlledBy(h, sc) {
			continue
		}
		if err := r.Client.Delete(ctx, h); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting HPA %s: %w", h.Name, err)
		}
		log.FromContext(ctx).Info("deleted HPA", "hpa", h.Name)
	}
	return nil
}

// conflict says why sc may not scale its target: another ScaledConsumer (created earlier) scales it, an
// HPA that is not ebb's scales it, or the HPA name is taken. Adoption of an existing HPA needs
// spec.hpa.name to name it.
func (r *Reconciler) conflict(ctx context.Context, sc *ebbv1.ScaledConsumer, hpaName string) (reason, msg string, err error) {
	ref := sc.Spec.ScaleTargetRef
	tk := targetKey(ref.APIVersion, ref.Kind, ref.Name)
	scs := &ebbv1.ScaledConsumerList{}
	if err := r.Client.List(ctx, scs, client.InNamespace(sc.Namespace), client.MatchingFields{indexTarget: tk}); err != nil {
		return "", "", err
	}
	for i := range scs.Items {
		o := &scs.Items[i]
		if o.UID == sc.UID || !o.DeletionTimestamp.IsZero() {
			continue
		}
		if older(o, sc) {
			return ReasonTargetConflict, fmt.Sprintf("%s %s is already scaled by ScaledConsumer %s; a target can have one ScaledConsumer: delete one of them",
				ref.Kind, ref.Name, o.Name), nil
		}
	}
	explicit := sc.Spec.HPA != nil && sc.Spec.HPA.Name != ""
	hpas := &autoscalingv2.HorizontalPodAutoscalerList{}
	if err := r.Client.List(ctx, hpas, client.InNamespace(sc.Namespace), client.MatchingFields{indexTarget: tk}); err != nil {
		return "", "", err
	}
	for i := range hpas.Items {
		h := &hpas.Items[i]
		if metav1.IsControlledBy(h, sc) || (explicit && h.Name == hpaName) {
			continue
		}
		return ReasonForeignHPA, fmt.Sprintf("HPA %s, which ebb does not own, already scales %s %s; delete it, or set spec.hpa.name: %s to let ebb adopt it",
			h.Name, ref.Kind, ref.Name, h.Name), nil
	}
	h := &autoscalingv2.HorizontalPodAutoscaler{}
	switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: sc.Namespace, Name: hpaName}, h); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return "", "", err
	case metav1.IsControlledBy(h, sc):
	case !explicit:
		return ReasonHPANameTaken, fmt.Sprintf("HPA %s exists and is not owned by this ScaledConsumer; delete it, or set spec.hpa.name: %s to let ebb adopt it",
			hpaName, hpaName), nil
	case targetKey(h.Spec.ScaleTargetRef.APIVersion, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name) != tk:
		// Adopting would retarget another workload's HPA (and delete it with this ScaledConsumer).
		return ReasonHPANameTaken, fmt.Sprintf("spec.hpa.name names HPA %s, which scales %s %s, not %s %s; ebb adopts only an HPA of the same target",
			hpaName, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name, ref.Kind, ref.Name), nil
	case metav1.GetControllerOf(h) != nil:
		owner := metav1.GetControllerOf(h)
		return ReasonHPANameTaken, fmt.Sprintf("spec.hpa.name names HPA %s, which %s %s controls; remove that owner first", hpaName, owner.Kind, owner.Name), nil
	}
	return "", "", nil
}

func older(a, b *ebbv1.ScaledConsumer) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// problem is why a ScaledConsumer is not Ready: a reason and a message a person can act on.
type problem struct{ reason, msg string }

// getScale reads the target's /scale. A missing target or one without /scale is a problem, not an error.
func (r *Reconciler) getScale(ctx context.Context, sc *ebbv1.ScaledConsumer) (*unstructured.Unstructured, *unstructured.Unstructured, *problem, error) {
	ref := sc.Spec.ScaleTargetRef
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, nil, &problem{ReasonTargetNotFound, fmt.Sprintf("scaleTargetRef.apiVersion %q: %v", ref.APIVersion, err)}, nil
	}
	target := &unstructured.Unstructured{}
	target.SetGroupVersionKind(gv.WithKind(ref.Kind))
	target.SetNamespace(sc.Namespace)
	target.SetName(ref.Name)
	// The client wants an unstructured body for an unstructured object.
	scale := &unstructured.Unstructured{}
	scale.SetGroupVersionKind(autoscalingv1.SchemeGroupVersion.WithKind("Scale"))
	err = r.Client.SubResource("scale").Get(ctx, target, scale)
	switch {
	case err == nil:
		return target, scale, nil, nil
	case meta.IsNoMatchError(err):
		return nil, nil, &problem{ReasonTargetNotFound, fmt.Sprintf("the API server does not serve kind %s in %s", ref.Kind, ref.APIVersion)}, nil
	case apierrors.IsNotFound(err):
		// A missing object's 404 names it; a missing /scale subresource's 404 does not. (ebb is not
		// allowed to read arbitrary objects, only their /scale, so it cannot look the object up.)
		var status apierrors.APIStatus
		if errors.As(err, &status) && status.Status().Details != nil && status.Status().Details.Name == ref.Name {
			return nil, nil, &problem{ReasonTargetNotFound, fmt.Sprintf("%s %s not found in namespace %s", ref.Kind, ref.Name, sc.Namespace)}, nil
		}
		return nil, nil, &problem{ReasonTargetNotScalable, fmt.Sprintf("%s %s has no /scale subresource; ebb and the HPA scale only through /scale", ref.Kind, ref.Name)}, nil
	default:
		return nil, nil, nil, fmt.Errorf("reading /scale of %s %s: %w", ref.Kind, ref.Name, err)
	}
}

// scaleReplicas is a /scale's spec.replicas.
func scaleReplicas(scale *unstructured.Unstructured) int32 {
	n, _, _ := unstructured.NestedInt64(scale.Object, "spec", "replicas")
	return int32(n)
}

func (r *Reconciler) setScale(ctx context.Context, target, scale *unstructured.Unstructured, replicas int32) error {
	scale = scale.DeepCopy()
	if err := unstructured.SetNestedField(scale.Object, int64(replicas), "spec", "replicas"); err != nil {
		return err
	}
	return r.Client.SubResource("scale").Update(ctx, target, client.WithSubResourceBody(scale))
}

func pollingInterval(sc *ebbv1.ScaledConsumer) time.Duration {
	return durationOr(sc.Spec.PollingInterval, 5*time.Second)
}

func durationOr(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.Duration
}
