package controller

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

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
