package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/scalers"
)

// Ready=False reasons for trigger problems.
const (
	ReasonInvalidTrigger         = "InvalidTrigger"
	ReasonAuthenticationNotFound = "AuthenticationNotFound"
)

// triggerError is a problem with the triggers that the user fixes in the spec or its
// TriggerAuthentication; Reason is the Ready condition's reason.
type triggerError struct {
	Reason string
	Err    error
}

func (e *triggerError) Error() string { return e.Err.Error() }
func (e *triggerError) Unwrap() error { return e.Err }

// fingerprint identifies what a poll is built from: the triggers, the resource versions of the
// TriggerAuthentications they use, the polling interval and the fallback. A missing TriggerAuthentication
// is a triggerError.
func (r *Reconciler) fingerprint(ctx context.Context, sc *ebbv1.ScaledConsumer) (string, error) {
	authVersions := map[string]string{}
	var errs []error
	for _, t := range sc.Spec.Triggers {
		if t.AuthenticationRef == nil {
			continue
		}
		ta := &ebbv1.TriggerAuthentication{}
		err := r.Client.Get(ctx, types.NamespacedName{Namespace: sc.Namespace, Name: t.AuthenticationRef.Name}, ta)
		switch {
		case apierrors.IsNotFound(err):
			errs = append(errs, fmt.Errorf("trigger %q: TriggerAuthentication %q not found in namespace %s", t.TriggerName(), t.AuthenticationRef.Name, sc.Namespace))
		case err != nil:
			return "", fmt.Errorf("reading TriggerAuthentication %s: %w", t.AuthenticationRef.Name, err)
		default:
			authVersions[ta.Name] = ta.ResourceVersion
		}
	}
	if len(errs) > 0 {
		return "", &triggerError{Reason: ReasonAuthenticationNotFound, Err: errors.Join(errs...)}
	}
	raw, err := json.Marshal(struct {
		Triggers []ebbv1.Trigger
		Auth     map[string]string
		Interval string
		Fallback *ebbv1.Fallback
	}{sc.Spec.Triggers, authVersions, pollingInterval(sc).String(), sc.Spec.Fallback})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), nil
}

// buildPoll parses every trigger (reading the Secrets of their TriggerAuthentications) into a PollSpec.
// Every trigger's problem is reported at once, in a triggerError.
func (r *Reconciler) buildPoll(ctx context.Context, sc *ebbv1.ScaledConsumer, fp string) (PollSpec, error) {
	spec := PollSpec{Fingerprint: fp, Interval: pollingInterval(sc)}
	if f := sc.Spec.Fallback; f != nil {
		spec.FailureThreshold = max(f.FailureThreshold, 1)
		spec.FallbackReplicas = ptr(f.Replicas)
	}
	var errs []error
	reason := ReasonInvalidTrigger
	for _, t := range sc.Spec.Triggers {
		auth, err := r.resolveAuth(ctx, sc.Namespace, t.AuthenticationRef)
		if err != nil {
			var te *triggerError
			if errors.As(err, &te) {
				reason = te.Reason
				errs = append(errs, fmt.Errorf("trigger %q: %w", t.TriggerName(), err))
				continue
			}
			closeAll(spec.Triggers)
			return PollSpec{}, err
		}
		s, err := r.Registry.New(t.Type, scalers.Config{TriggerName: t.TriggerName(), Metadata: t.Metadata, Auth: auth, PollingInterval: spec.Interval})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		spec.Triggers = append(spec.Triggers, PolledTrigger{Name: t.TriggerName(), Type: t.Type, Scaler: s})
	}
	if len(errs) > 0 {
		closeAll(spec.Triggers)
		return PollSpec{}, &triggerError{Reason: reason, Err: errors.Join(errs...)}
	}
	return spec, nil
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

func closeAll(ts []PolledTrigger) {
	for _, t := range ts {
		if c, ok := t.Scaler.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
}
