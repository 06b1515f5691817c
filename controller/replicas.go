package controller

import (
	"context"
	"fmt"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

// knownScale is the target's /scale as ebb last read (or wrote) it, and what the HPA's status said then.
// The reconciler decides on it without reading /scale again while nothing says the target changed.
type knownScale struct {
	target string // targetKey of the scaleTargetRef it was read for
	scale  *unstructured.Unstructured
	obj    *unstructured.Unstructured // the target, for setScale
	read   time.Time                  // on the reconciler's Clock
	hpa    string                     // hpaSignal at the time of the read
}

// scaleView is the /scale a reconcile decides on; fresh when it was read in this reconcile.
type scaleView struct {
	target, scale *unstructured.Unstructured
	fresh         bool
}

// hpaSignal sums up what an HPA's status says about its target's replicas: the replicas it saw and asked
// for, and whether it could read the target's /scale. Empty when ebb has no HPA for the target or the HPA
// controller has not synced it yet.
func hpaSignal(hpa *autoscalingv2.HorizontalPodAutoscaler) string {
	if hpa == nil || hpa.Status.ObservedGeneration == nil {
		return ""
	}
	able := ""
	for _, c := range hpa.Status.Conditions {
		if c.Type == autoscalingv2.AbleToScale {
			able = string(c.Status) + "/" + c.Reason
		}
	}
	return fmt.Sprintf("%d/%d/%s", hpa.Status.CurrentReplicas, hpa.Status.DesiredReplicas, able)
}

// ownedHPA returns ebb's HPA for sc from the informer cache, or nil.
func (r *Reconciler) ownedHPA(ctx context.Context, sc *ebbv1.ScaledConsumer) *autoscalingv2.HorizontalPodAutoscaler {
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: sc.Namespace, Name: HPAName(sc)}, hpa); err != nil || !metav1.IsControlledBy(hpa, sc) {
		return nil
	}
	return hpa
}

// scaleOf returns the target's /scale: the one ebb knows when nothing says it changed, else (and always
// when fresh is true) a new read. Nothing says it changed while the HPA's status reports the same
// replicas as at the last read (the HPA controller reads the target's /scale at every sync, so a change
// by anyone shows there); without an HPA that has synced (paused, pinned, parked, or not synced yet), a
// read is good for Recheck.
func (r *Reconciler) scaleOf(ctx context.Context, sc *ebbv1.ScaledConsumer, fresh bool) (scaleView, *problem, error) {
	key := client.ObjectKeyFromObject(sc)
	ref := sc.Spec.ScaleTargetRef
	tk := targetKey(ref.APIVersion, ref.Kind, ref.Name)
	signal := hpaSignal(r.ownedHPA(ctx, sc))
	now := r.Clock.Now()
	if !fresh {
		r.mu.Lock()
		k, ok := r.scales[key]
		r.mu.Unlock()
		if ok && k.target == tk && k.hpa == signal && (signal != "" || now.Sub(k.read) < r.recheck()) {
			return scaleView{target: k.obj, scale: k.scale}, nil, nil
		}
	}
	target, scale, prob, err := r.getScale(ctx, sc)
	if err != nil || prob != nil {
		r.forgetScale(key)
		return scaleView{}, prob, err
	}
	r.rememberScale(key, knownScale{target: tk, scale: scale, obj: target, read: now, hpa: signal})
	return scaleView{target: target, scale: scale, fresh: true}, nil, nil
}

// scaled records ebb's own write of replicas to the target's /scale.
func (r *Reconciler) scaled(sc *ebbv1.ScaledConsumer, v scaleView, replicas int32) {
	key := client.ObjectKeyFromObject(sc)
	scale := v.scale.DeepCopy()
	if err := unstructured.SetNestedField(scale.Object, int64(replicas), "spec", "replicas"); err != nil {
		r.forgetScale(key)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if k, ok := r.scales[key]; ok {
		k.scale = scale
		r.scales[key] = k
	}
}

func (r *Reconciler) rememberScale(key types.NamespacedName, k knownScale) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.scales == nil {
		r.scales = map[types.NamespacedName]knownScale{}
	}
	r.scales[key] = k
}

func (r *Reconciler) forgetScale(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.scales, key)
}

// recheck is how long a reconcile's result stands when nothing it watches changes.
func (r *Reconciler) recheck() time.Duration {
	if r.Recheck > 0 {
		return r.Recheck
	}
	return 5 * time.Minute
}

// hpaReplicasChanged passes an HPA update whose status reports other replicas (or another AbleToScale
// state) than before: the target was scaled, or can no longer be read.
var hpaReplicasChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*autoscalingv2.HorizontalPodAutoscaler)
		n, ok2 := e.ObjectNew.(*autoscalingv2.HorizontalPodAutoscaler)
		return ok1 && ok2 && hpaSignal(o) != hpaSignal(n)
	},
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}
