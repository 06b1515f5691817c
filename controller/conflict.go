package controller

import (
	"context"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

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
