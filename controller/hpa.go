package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

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
