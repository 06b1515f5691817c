package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

// authRef is a TriggerAuthentication a ScaledConsumer uses, and who uses it, for messages.
type authRef struct {
	Who, Name string
}

// authRefs lists the TriggerAuthentications sc uses, in spec order: its triggers' and its deadLetter's.
// The poll's fingerprint reads each of them, and the watch index maps each back to sc, so a change to any
// TriggerAuthentication a poll is built from reaches the ScaledConsumer at once.
func authRefs(sc *ebbv1.ScaledConsumer) []authRef {
	var refs []authRef
	for _, t := range sc.Spec.Triggers {
		if t.AuthenticationRef != nil {
			refs = append(refs, authRef{fmt.Sprintf("trigger %q", t.TriggerName()), t.AuthenticationRef.Name})
		}
	}
	if dl := sc.Spec.DeadLetter; dl != nil && dl.AuthenticationRef != nil {
		refs = append(refs, authRef{"deadLetter", dl.AuthenticationRef.Name})
	}
	return refs
}

// authIndex is the value of the indexAuth field index of sc: the names of the TriggerAuthentications it
// uses, each once.
func authIndex(sc *ebbv1.ScaledConsumer) []string {
	var names []string
	seen := map[string]bool{}
	for _, ref := range authRefs(sc) {
		if !seen[ref.Name] {
			seen[ref.Name] = true
			names = append(names, ref.Name)
		}
	}
	return names
}

// resolveAuth reads a TriggerAuthentication's parameters from its Secrets. Secrets are read with the
// uncached reader, so ebb does not hold every Secret of the cluster in memory.
func (r *Reconciler) resolveAuth(ctx context.Context, namespace string, ref *ebbv1.AuthenticationRef) (map[string]string, error) {
	if ref == nil {
		return nil, nil
	}
	ta := &ebbv1.TriggerAuthentication{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, ta); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &triggerError{Reason: ReasonAuthenticationNotFound, Err: fmt.Errorf("TriggerAuthentication %q not found", ref.Name)}
		}
		return nil, err
	}
	params := map[string]string{}
	for _, s := range ta.Spec.SecretTargetRef {
		secret := &corev1.Secret{}
		if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: s.Name}, secret); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, &triggerError{Reason: ReasonAuthenticationNotFound, Err: fmt.Errorf("TriggerAuthentication %q: parameter %q: Secret %q not found", ta.Name, s.Parameter, s.Name)}
			}
			return nil, fmt.Errorf("reading Secret %s: %w", s.Name, err)
		}
		v, ok := secret.Data[s.Key]
		if !ok {
			return nil, &triggerError{Reason: ReasonAuthenticationNotFound, Err: fmt.Errorf("TriggerAuthentication %q: parameter %q: Secret %q has no key %q", ta.Name, s.Parameter, s.Name, s.Key)}
		}
		params[s.Parameter] = string(v)
	}
	return params, nil
}
