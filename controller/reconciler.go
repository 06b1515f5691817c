package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/scalers"
)

// +kubebuilder:rbac:groups=ebb.dev,resources=scaledconsumers,verbs=get;list;watch
// +kubebuilder:rbac:groups=ebb.dev,resources=scaledconsumers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=ebb.dev,resources=scaledconsumers/finalizers,verbs=update
// +kubebuilder:rbac:groups=ebb.dev,resources=triggerauthentications,verbs=get;list;watch
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=*,resources=*/scale,verbs=get;update;patch
// Secrets: get to read a TriggerAuthentication's values (uncached); list and watch for the metadata-only
// watch that notices a changed Secret (secrets.go).
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
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
	poller    *poller
	Clock     clock.PassiveClock
	Recorder  events.EventRecorder
	Metrics   *Metrics
	// StatusRefresh bounds how often status is written when only trigger values changed (default 30 s);
	// the live values are always in the metrics API and in ebb_trigger_value.
	StatusRefresh time.Duration
	// Recheck is how often a ScaledConsumer is reconciled when nothing it watches changed (default 5 min).
	// Such a reconcile reads the target's /scale only when ebb keeps no HPA for it (see scaleOf).
	Recheck time.Duration

	secrets     *secretWatch
	mu          sync.Mutex
	lastWritten map[types.NamespacedName]time.Time
	applied     map[types.NamespacedName]appliedHPA
	announced   map[types.NamespacedName]failureView
	scales      map[types.NamespacedName]knownScale
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
	r.poller.Remove(key)
	r.Metrics.forget(key.Namespace, key.Name)
	r.mu.Lock()
	delete(r.lastWritten, key)
	delete(r.applied, key)
	delete(r.announced, key)
	delete(r.scales, key)
	r.mu.Unlock()
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
		r.poller.Remove(key)
		r.forgetAnnounced(key)
		r.Metrics.forgetReplicas(key.Namespace, key.Name)
		sc.Status.Triggers = nil
		if err := r.deleteOwnedHPAs(ctx, sc, ""); err != nil {
			return ctrl.Result{}, err
		}
		r.notReady(sc, reason, msg)
		return ctrl.Result{}, nil
	}

	// Triggers: parse them and (re)start the poll when they changed.
	if err := r.ensurePoll(ctx, sc); err != nil {
		var te *triggerError
		if !errors.As(err, &te) {
			r.Metrics.ReconcileErrors.WithLabelValues("triggers").Inc()
			return ctrl.Result{}, err
		}
		return r.invalidTriggers(sc, te), nil
	}
	states := r.poller.States(key)

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
		r.setCondition(sc, ebbv1.ConditionPaused, metav1.ConditionFalse, ReasonNotPaused, "no pause annotation")
	}

	// The target's replicas: the /scale ebb knows, read again before ebb acts on it.
	sv, prob, err := r.scaleOf(ctx, sc, false)
	var act activationResult
	if err == nil && prob == nil {
		act = decideActivation(r.activationInput(sc, scaleReplicas(sv.scale), states, paused, pausedReplicas))
		if act.Scale != nil && !sv.fresh {
			sv, prob, err = r.scaleOf(ctx, sc, true)
			if err == nil && prob == nil {
				act = decideActivation(r.activationInput(sc, scaleReplicas(sv.scale), states, paused, pausedReplicas))
			}
		}
	}
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
	target, scale := sv.target, sv.scale
	r.poller.SetReplicas(key, scaleReplicas(scale))
	r.setGuardStatus(sc, scaleReplicas(scale))
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
		r.scaled(sc, sv, *act.Scale)
		r.poller.SetReplicas(key, *act.Scale)
		r.Metrics.ScaleActions.WithLabelValues(sc.Namespace, sc.Name, act.Reason).Inc()
		r.Recorder.Eventf(sc, nil, corev1.EventTypeNormal, act.Reason, "Scale", "%s %s: %s", sc.Spec.ScaleTargetRef.Kind, sc.Spec.ScaleTargetRef.Name, act.Message)
		log.FromContext(ctx).Info("scaled", "reason", act.Reason, "from", scaleReplicas(scale), "to", *act.Scale, "message", act.Message)
	}
	r.exportReplicas(ctx, sc, scale, act.Scale, !held && !parked)
	before := r.failuresBefore(sc)
	r.setActivityConditions(sc, states, act)
	r.setTriggerStatus(sc, states)
	r.announceFailures(ctx, sc, before, states)

	// Nothing needs a look before Recheck unless something changes: the poller reports changes of the
	// triggers (status.go throttles fast-moving values), the watches those of the spec, the HPA and the
	// authentication, and a cooldown asks for its end.
	// The recheck is routine work; the end of a cooldown goes before it (priority.go).
	res := ctrl.Result{RequeueAfter: r.recheck(), Priority: ptr(priorityRoutine)}
	if act.RecheckAfter > 0 && act.RecheckAfter < res.RequeueAfter {
		res.RequeueAfter, res.Priority = act.RecheckAfter, ptr(priorityWake)
	}
	if hpaErr != nil && !apierrors.IsInvalid(hpaErr) && !apierrors.IsForbidden(hpaErr) {
		return res, hpaErr // transient: retried with backoff
	}
	// An HPA the API server refuses (an out-of-range spec.hpa.behavior, say) is fixed in the spec, which
	// reconciles again; retrying sooner would only repeat the refusal.
	return res, nil
}

// ensurePoll makes the poller run the ScaledConsumer's triggers, (re)built when what they are built from
// changed. Triggers the user must fix are a *triggerError.
func (r *Reconciler) ensurePoll(ctx context.Context, sc *ebbv1.ScaledConsumer) error {
	key := client.ObjectKeyFromObject(sc)
	fp, err := r.fingerprint(ctx, sc)
	if err != nil {
		return err
	}
	if running, ok := r.poller.Fingerprint(key); ok && running == fp {
		return nil
	}
	spec, err := r.buildPoll(ctx, sc, fp)
	if err != nil {
		return err
	}
	r.poller.Ensure(key, spec)
	return nil
}

// invalidTriggers stops the poll of a ScaledConsumer whose triggers the user must fix and says why in
// its status; it returns when to look again.
func (r *Reconciler) invalidTriggers(sc *ebbv1.ScaledConsumer, te *triggerError) ctrl.Result {
	// The HPA is left as it is: with its metrics gone from the store, it holds the current replicas.
	r.poller.Remove(client.ObjectKeyFromObject(sc))
	r.forgetAnnounced(client.ObjectKeyFromObject(sc))
	sc.Status.Triggers = nil
	r.notReady(sc, te.Reason, te.Error())
	meta.RemoveStatusCondition(&sc.Status.Conditions, ebbv1.ConditionActive)
	meta.RemoveStatusCondition(&sc.Status.Conditions, ebbv1.ConditionFallback)
	switch te.Reason {
	case ReasonAuthenticationNotFound, ReasonInvalidAuthentication, ReasonAuthenticationForbidden:
		// A Secret's change wakes the ScaledConsumer (secrets.go), but RBAC changes do not, and the
		// watch may be refused: look again.
		return ctrl.Result{RequeueAfter: 30 * time.Second}
	}
	return ctrl.Result{}
}

func (r *Reconciler) activationInput(sc *ebbv1.ScaledConsumer, current int32, states []triggerState, paused bool, pausedReplicas *int32) activationInput {
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
		v := triggerView{Sampled: s.Sampled, Active: s.Active, Failing: s.Err != nil, FallbackDue: s.FallbackDue, Backlog: s.Backlog, LastActive: s.LastActive, Recovered: s.Recovered}
		in.Triggers = append(in.Triggers, v)
	}
	return in
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
