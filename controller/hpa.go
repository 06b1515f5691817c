package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

// FieldManager is the field manager of every server-side apply ebb makes.
const FieldManager = "ebb"

// ManagedByLabel marks the objects ebb creates.
const ManagedByLabel = "app.kubernetes.io/managed-by"

// HPAHashAnnotation on an HPA ebb applied holds a hash of what ebb applied, so an unchanged HPA is not
// applied again.
const HPAHashAnnotation = "ebb.dev/applied-hash"

// applyHash is a short hash of an apply configuration.
func applyHash(hpa *autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration) (string, error) {
	raw, err := json.Marshal(hpa)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8]), nil
}

// HPAMetric is one external metric of the HPA: its name and its per-replica target.
type HPAMetric struct {
	Name   string
	Target float64
}

// HPAName is the name of the HPA ebb owns for sc: spec.hpa.name, or "ebb-" and the ScaledConsumer's name.
func HPAName(sc *ebbv1.ScaledConsumer) string {
	if sc.Spec.HPA != nil && sc.Spec.HPA.Name != "" {
		return sc.Spec.HPA.Name
	}
	return ebbv1.HPANamePrefix + sc.Name
}

// desiredHPA builds the HPA ebb applies for sc: one External metric per trigger metric, each with the
// ebb.dev/scaledconsumer selector and an AverageValue target (so the HPA computes
// ceil(value / target) replicas), minReplicas at least 1 (ebb itself takes the target to and from zero),
// the behavior passed through, and sc as its controlling owner. While the consumer-health guard holds
// scale-up (status.guard.heldReplicas), maxReplicas is held there: the HPA may scale down, not up.
func desiredHPA(sc *ebbv1.ScaledConsumer, metrics []HPAMetric) (*autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration, error) {
	ref := sc.Spec.ScaleTargetRef
	hpa := autoscalingv2ac.HorizontalPodAutoscaler(HPAName(sc), sc.Namespace).
		WithLabels(map[string]string{ebbv1.ScaledConsumerLabel: sc.Name, ManagedByLabel: "ebb"}).
		WithOwnerReferences(metav1ac.OwnerReference().
			WithAPIVersion(ebbv1.GroupVersion.String()).
			WithKind("ScaledConsumer").
			WithName(sc.Name).
			WithUID(sc.UID).
			WithController(true).
			WithBlockOwnerDeletion(true))
	spec := autoscalingv2ac.HorizontalPodAutoscalerSpec().
		WithScaleTargetRef(autoscalingv2ac.CrossVersionObjectReference().
			WithAPIVersion(ref.APIVersion).WithKind(ref.Kind).WithName(ref.Name)).
		WithMinReplicas(max(minReplicas(sc), 1)).
		WithMaxReplicas(hpaMaxReplicas(sc))
	for _, m := range metrics {
		spec.WithMetrics(autoscalingv2ac.MetricSpec().
			WithType(autoscalingv2.ExternalMetricSourceType).
			WithExternal(autoscalingv2ac.ExternalMetricSource().
				WithMetric(autoscalingv2ac.MetricIdentifier().
					WithName(m.Name).
					WithSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{ebbv1.ScaledConsumerLabel: sc.Name}))).
				WithTarget(autoscalingv2ac.MetricTarget().
					WithType(autoscalingv2.AverageValueMetricType).
					WithAverageValue(milli(m.Target)))))
	}
	if sc.Spec.HPA != nil && sc.Spec.HPA.Behavior != nil {
		b, err := behavior(sc.Spec.HPA.Behavior)
		if err != nil {
			return nil, err
		}
		spec.WithBehavior(b)
	}
	return hpa.WithSpec(spec), nil
}

// behavior converts the API type to its apply configuration; both have the same JSON form.
func behavior(b *autoscalingv2.HorizontalPodAutoscalerBehavior) (*autoscalingv2ac.HorizontalPodAutoscalerBehaviorApplyConfiguration, error) {
	raw, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encoding spec.hpa.behavior: %w", err)
	}
	out := &autoscalingv2ac.HorizontalPodAutoscalerBehaviorApplyConfiguration{}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("decoding spec.hpa.behavior: %w", err)
	}
	return out, nil
}

// milli renders v as a quantity with milli precision, at least 1m: an AverageValue target of 0 would
// make the HPA divide by zero.
func milli(v float64) resource.Quantity {
	m := math.Round(v * 1000)
	switch {
	case math.IsNaN(m) || m < 1:
		m = 1
	case m >= float64(math.MaxInt64):
		return *resource.NewMilliQuantity(math.MaxInt64, resource.DecimalSI)
	}
	return *resource.NewMilliQuantity(int64(m), resource.DecimalSI)
}

func minReplicas(sc *ebbv1.ScaledConsumer) int32 {
	if sc.Spec.MinReplicas == nil {
		return 0
	}
	return *sc.Spec.MinReplicas
}

// hpaMaxReplicas is the HPA's maxReplicas: spec.maxReplicas, or the replica count the guard holds (never
// below the HPA's minReplicas, which the API server requires).
func hpaMaxReplicas(sc *ebbv1.ScaledConsumer) int32 {
	hi := maxReplicas(sc)
	if g := sc.Status.Guard; g != nil && g.HeldReplicas != nil {
		hi = min(hi, max(*g.HeldReplicas, minReplicas(sc), 1))
	}
	return hi
}

func maxReplicas(sc *ebbv1.ScaledConsumer) int32 {
	if sc.Spec.MaxReplicas == nil {
		return 100
	}
	return *sc.Spec.MaxReplicas
}

// syncHPA applies the HPA (and deletes any other HPA this ScaledConsumer controls) when want, and deletes
// every HPA it controls otherwise.
func (r *Reconciler) syncHPA(ctx context.Context, sc *ebbv1.ScaledConsumer, states []triggerState, want bool) error {
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
func (r *Reconciler) applyHPA(ctx context.Context, sc *ebbv1.ScaledConsumer, states []triggerState) error {
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
