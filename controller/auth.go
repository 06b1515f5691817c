package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
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
// uncached reader, so ebb does not hold every Secret of the cluster in memory. Every way a referenced
// object can be wrong is a *triggerError naming it (and so a Ready=False condition and a Warning event):
// a name that cannot name an object, a TriggerAuthentication or Secret that does not exist in the
// namespace, a Secret without the key or with an empty value, a Secret ebb may not read. Other errors
// (the API server not answering) are returned as they are, to be retried.
func (r *Reconciler) resolveAuth(ctx context.Context, namespace string, ref *ebbv1.AuthenticationRef) (map[string]string, error) {
	if ref == nil {
		return nil, nil
	}
	if err := checkName(ref.Name); err != nil {
		return nil, &triggerError{Reason: ReasonInvalidAuthentication, Err: fmt.Errorf("authenticationRef %q is not a valid TriggerAuthentication name: %w", ref.Name, err)}
	}
	ta := &ebbv1.TriggerAuthentication{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, ta); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &triggerError{Reason: ReasonAuthenticationNotFound, Err: fmt.Errorf("TriggerAuthentication %q not found in namespace %s", ref.Name, namespace)}
		}
		return nil, fmt.Errorf("reading TriggerAuthentication %s: %w", ref.Name, err)
	}
	params := map[string]string{}
	var errs []error
	reason := ""
	for _, s := range ta.Spec.SecretTargetRef {
		v, te := r.secretValue(ctx, namespace, ta.Name, s)
		var t *triggerError
		switch {
		case te == nil:
			params[s.Parameter] = v
			continue
		case !errors.As(te, &t):
			return nil, te
		}
		// The first problem's reason stands for all, as in buildPoll.
		if reason == "" {
			reason = t.Reason
		}
		errs = append(errs, t.Err)
	}
	if len(errs) > 0 {
		return nil, &triggerError{Reason: reason, Err: errors.Join(errs...)}
	}
	return params, nil
}

// secretValue reads the value one SecretTargetRef of TriggerAuthentication taName names. Its problems
// are *triggerError, whose messages name the TriggerAuthentication, the parameter and the Secret; errors
// the API server may not repeat are returned as they are.
func (r *Reconciler) secretValue(ctx context.Context, namespace, taName string, s ebbv1.SecretTargetRef) (string, error) {
	where := fmt.Sprintf("TriggerAuthentication %q: parameter %q", taName, s.Parameter)
	if err := checkName(s.Name); err != nil {
		return "", &triggerError{Reason: ReasonInvalidAuthentication, Err: fmt.Errorf("%s: %q is not a valid Secret name: %w", where, s.Name, err)}
	}
	secret := &corev1.Secret{}
	err := r.APIReader.Get(withoutBodies(ctx), client.ObjectKey{Namespace: namespace, Name: s.Name}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return "", &triggerError{Reason: ReasonAuthenticationNotFound, Err: fmt.Errorf("%s: Secret %q not found in namespace %s", where, s.Name, namespace)}
	case apierrors.IsForbidden(err):
		return "", &triggerError{Reason: ReasonAuthenticationForbidden, Err: fmt.Errorf("%s: ebb may not read Secret %q in namespace %s (its RBAC needs get on secrets): %w", where, s.Name, namespace, err)}
	case err != nil:
		return "", fmt.Errorf("reading Secret %s: %w", s.Name, err)
	}
	v, ok := secret.Data[s.Key]
	switch {
	case !ok:
		return "", &triggerError{Reason: ReasonAuthenticationNotFound, Err: fmt.Errorf("%s: Secret %q has no key %q (its keys: %s)", where, s.Name, s.Key, keysOf(secret.Data))}
	case len(v) == 0:
		return "", &triggerError{Reason: ReasonInvalidAuthentication, Err: fmt.Errorf("%s: Secret %q key %q is empty", where, s.Name, s.Key)}
	}
	return string(v), nil
}

// checkName says why name cannot be the name of a TriggerAuthentication or a Secret (a DNS subdomain,
// which has no slash: "chaos/rmq-user" is a namespace and a name, and the reference takes a name only).
func checkName(name string) error {
	if strings.Contains(name, "/") {
		return errors.New("a name has no slash; the object must be in the ScaledConsumer's namespace")
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}

// keysOf lists a Secret's keys, sorted, for messages; never its values.
func keysOf(data map[string][]byte) string {
	if len(data) == 0 {
		return "none"
	}
	keys := slices.Sorted(maps.Keys(data))
	return strings.Join(keys, ", ")
}
