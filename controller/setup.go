package controller

import (
	"context"
	"fmt"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/metricstore"
	"github.com/ebbscale/ebb/scalers"
)

// Field indexes the reconciler lists by.
const (
	indexTarget = "ebb.dev/scale-target"
	indexAuth   = "ebb.dev/authentication-ref"
)

// Options configure the controller. The zero value of each optional field picks the default its comment
// gives.
type Options struct {
	// Registry holds the trigger types. Required.
	Registry scalers.Registry
	// Store receives the sampled values. Required.
	Store *metricstore.Store
	// Clock is what activation decisions (cooldowns) read, and what the poller stamps the activity and
	// recovery times they compare with; it defaults to the real clock. The poller always ticks on the
	// real clock.
	Clock clock.PassiveClock
	// Metrics defaults to NewMetrics registered with controller-runtime's registry (served on the
	// manager's metrics endpoint).
	Metrics *Metrics
	// MaxConcurrentReconciles defaults to 8.
	MaxConcurrentReconciles int
	// StatusRefresh bounds how often status is written when only numbers and texts changed (trigger
	// values, messages, errors, failure counts, the guard's numbers); default 30 s. A trigger's
	// lastPollTime alone is never a reason to write.
	StatusRefresh time.Duration
	// Recheck is how often a ScaledConsumer is reconciled when nothing it watches changed; default 5 min.
	// Such a reconcile costs no API request while ebb keeps an HPA for the target; without one (paused,
	// pinned, parked at idleReplicas) it reads the target's /scale.
	Recheck time.Duration
	// SkipNameValidation lets a process build this controller more than once (tests do).
	SkipNameValidation bool
}

// Setup adds the ScaledConsumer controller and its poller to mgr.
func Setup(mgr ctrl.Manager, opts Options) (*Reconciler, error) {
	if opts.Registry == nil || opts.Store == nil {
		return nil, fmt.Errorf("controller: Registry and Store are required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(ctrlmetrics.Registry)
	}
	if opts.StatusRefresh <= 0 {
		opts.StatusRefresh = 30 * time.Second
	}
	if opts.MaxConcurrentReconciles == 0 {
		opts.MaxConcurrentReconciles = 8
	}
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &ebbv1.ScaledConsumer{}, indexTarget, func(o client.Object) []string {
		ref := o.(*ebbv1.ScaledConsumer).Spec.ScaleTargetRef
		return []string{targetKey(ref.APIVersion, ref.Kind, ref.Name)}
	}); err != nil {
		return nil, err
	}
	if err := idx.IndexField(ctx, &autoscalingv2.HorizontalPodAutoscaler{}, indexTarget, func(o client.Object) []string {
		ref := o.(*autoscalingv2.HorizontalPodAutoscaler).Spec.ScaleTargetRef
		return []string{targetKey(ref.APIVersion, ref.Kind, ref.Name)}
	}); err != nil {
		return nil, err
	}
	if err := idx.IndexField(ctx, &ebbv1.ScaledConsumer{}, indexAuth, func(o client.Object) []string {
		return authIndex(o.(*ebbv1.ScaledConsumer))
	}); err != nil {
		return nil, err
	}

	if err := idx.IndexField(ctx, &ebbv1.TriggerAuthentication{}, indexSecret, func(o client.Object) []string {
		return secretNames(o.(*ebbv1.TriggerAuthentication))
	}); err != nil {
		return nil, err
	}

	wake := make(chan event.TypedGenericEvent[wakeUp], 1024)
	wakeFn := func(ctx context.Context, key types.NamespacedName, priority int) {
		// The controller may stop listening first at shutdown; the poll's context ends then too.
		select {
		case wake <- event.TypedGenericEvent[wakeUp]{Object: wakeUp{key: key, priority: priority}}:
		case <-ctx.Done():
		}
	}
	p := newPoller(clock.RealClock{}, opts.Store, opts.Metrics, wakeFn)
	p.stamps = opts.Clock
	p.refresh = opts.StatusRefresh
	if err := mgr.Add(p); err != nil {
		return nil, err
	}
	mc, err := metadata.NewForConfig(mgr.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("controller: metadata client for the Secret watch: %w", err)
	}
	secrets := &secretWatch{meta: mc, c: mgr.GetClient(), wake: func(ctx context.Context, key types.NamespacedName) {
		wakeFn(ctx, key, priorityDefault)
	}}
	if err := mgr.Add(secrets); err != nil {
		return nil, err
	}
	r := &Reconciler{
		Client:        mgr.GetClient(),
		APIReader:     mgr.GetAPIReader(),
		Registry:      opts.Registry,
		poller:        p,
		Clock:         opts.Clock,
		Recorder:      mgr.GetEventRecorder("ebb"),
		Metrics:       opts.Metrics,
		StatusRefresh: opts.StatusRefresh,
		Recheck:       opts.Recheck,
		secrets:       secrets,
	}
	c := mgr.GetClient()
	// A ScaledConsumer's change may free or take the target of another.
	sameTarget := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		var ref ebbv1.ScaleTargetRef
		switch o := o.(type) {
		case *ebbv1.ScaledConsumer:
			ref = o.Spec.ScaleTargetRef
		case *autoscalingv2.HorizontalPodAutoscaler:
			ref = ebbv1.ScaleTargetRef{APIVersion: o.Spec.ScaleTargetRef.APIVersion, Kind: o.Spec.ScaleTargetRef.Kind, Name: o.Spec.ScaleTargetRef.Name}
		}
		list := &ebbv1.ScaledConsumerList{}
		if err := c.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexTarget: targetKey(ref.APIVersion, ref.Kind, ref.Name)}); err != nil {
			return nil
		}
		reqs := requests(list)
		if h, ok := o.(*autoscalingv2.HorizontalPodAutoscaler); ok {
			if owner := metav1ControllerName(h); owner != "" {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: h.Namespace, Name: owner}})
			}
			if name := h.Labels[ebbv1.ScaledConsumerLabel]; name != "" {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: h.Namespace, Name: name}})
			}
		}
		return reqs
	})
	byAuth := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &ebbv1.ScaledConsumerList{}
		if err := c.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexAuth: o.GetName()}); err != nil {
			return nil
		}
		return requests(list)
	})
	copts := controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles}
	if opts.SkipNameValidation {
		copts.SkipNameValidation = ptr(true) // else the manager's setting applies
	}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("scaledconsumer").
		For(&ebbv1.ScaledConsumer{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&ebbv1.ScaledConsumer{}, sameTarget, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// The HPA's status matters when it reports that its target's replicas changed (replicas.go).
		Watches(&autoscalingv2.HorizontalPodAutoscaler{}, sameTarget, builder.WithPredicates(predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, hpaReplicasChanged))).
		Watches(&ebbv1.TriggerAuthentication{}, byAuth).
		WatchesRawSource(source.Channel(wake, enqueueWakeUp)).
		WithOptions(copts).
		Complete(r)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func requests(list *ebbv1.ScaledConsumerList) []reconcile.Request {
	reqs := make([]reconcile.Request, len(list.Items))
	for i, sc := range list.Items {
		reqs[i] = reconcile.Request{NamespacedName: types.NamespacedName{Namespace: sc.Namespace, Name: sc.Name}}
	}
	return reqs
}

func metav1ControllerName(h *autoscalingv2.HorizontalPodAutoscaler) string {
	for _, o := range h.OwnerReferences {
		if o.Controller != nil && *o.Controller && o.Kind == "ScaledConsumer" {
			return o.Name
		}
	}
	return ""
}

// targetKey identifies a scale target independent of its API version: group/kind/name.
func targetKey(apiVersion, kind, name string) string {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return apiVersion + "/" + kind + "/" + name
	}
	return gv.Group + "/" + kind + "/" + name
}
