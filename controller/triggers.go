package controller

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/scalers"
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
// TriggerAuthentications they use and of the Secrets those read (when they changed since ebb started),
// the polling interval and the fallback. A missing TriggerAuthentication
// is a triggerError.
func (r *Reconciler) fingerprint(ctx context.Context, sc *ebbv1.ScaledConsumer) (string, error) {
	authVersions := map[string]string{}
	var errs []error
	reason := ""
	for _, ref := range authRefs(sc) {
		if err := checkName(ref.Name); err != nil {
			reason = cmp.Or(reason, ReasonInvalidAuthentication)
			errs = append(errs, fmt.Errorf("%s: authenticationRef %q is not a valid TriggerAuthentication name: %w", ref.Who, ref.Name, err))
			continue
		}
		ta := &ebbv1.TriggerAuthentication{}
		err := r.Client.Get(ctx, types.NamespacedName{Namespace: sc.Namespace, Name: ref.Name}, ta)
		switch {
		case apierrors.IsNotFound(err):
			reason = cmp.Or(reason, ReasonAuthenticationNotFound)
			errs = append(errs, fmt.Errorf("%s: TriggerAuthentication %q not found in namespace %s", ref.Who, ref.Name, sc.Namespace))
		case err != nil:
			return "", fmt.Errorf("reading TriggerAuthentication %s: %w", ref.Name, err)
		default:
			// The versions of the Secrets it reads that changed since ebb started (secrets.go).
			v := ta.ResourceVersion
			for _, name := range secretNames(ta) {
				v += "," + r.secrets.version(sc.Namespace, name)
			}
			authVersions[ta.Name] = v
		}
	}
	if len(errs) > 0 {
		return "", &triggerError{Reason: reason, Err: errors.Join(errs...)}
	}
	raw, err := json.Marshal(struct {
		Triggers   []ebbv1.Trigger
		Auth       map[string]string
		Interval   string
		Fallback   *ebbv1.Fallback
		DeadLetter *ebbv1.DeadLetter
		Guard      *ebbv1.Guard
	}{sc.Spec.Triggers, authVersions, pollingInterval(sc).String(), sc.Spec.Fallback, sc.Spec.DeadLetter, sc.Spec.Guard})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), nil
}

// buildPoll parses every trigger (reading the Secrets of their TriggerAuthentications) into a pollSpec.
// Every trigger's problem is reported at once, in a triggerError.
func (r *Reconciler) buildPoll(ctx context.Context, sc *ebbv1.ScaledConsumer, fp string) (pollSpec, error) {
	spec := pollSpec{Fingerprint: fp, Interval: pollingInterval(sc)}
	for _, ts := range sc.Status.Triggers {
		if ts.LastError != "" {
			if spec.Failing == nil {
				spec.Failing = map[string]failedSample{}
			}
			spec.Failing[ts.Name] = failedSample{Err: ts.LastError, Failures: max(ts.ConsecutiveFailures, 1)}
		}
	}
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
			return pollSpec{}, err
		}
		s, err := r.Registry.New(t.Type, scalers.Config{TriggerName: t.TriggerName(), Metadata: t.Metadata, Auth: auth, PollingInterval: spec.Interval, Progress: wantsConsumeRate(sc)})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		spec.Triggers = append(spec.Triggers, polledTrigger{Name: t.TriggerName(), Type: t.Type, Scaler: s})
	}
	if len(errs) > 0 {
		closeAll(spec.Triggers)
		return pollSpec{}, &triggerError{Reason: reason, Err: errors.Join(errs...)}
	}
	if err := r.buildGuard(ctx, sc, &spec); err != nil {
		closeAll(spec.Triggers)
		return pollSpec{}, err
	}
	return spec, nil
}

// wantsConsumeRate says whether the guard judges a dead-letter ratio, whose denominator is the consume
// rate the triggers report.
func wantsConsumeRate(sc *ebbv1.ScaledConsumer) bool {
	g := sc.Spec.Guard
	return (g == nil || g.Enabled == nil || *g.Enabled) && sc.Spec.DeadLetter != nil && sc.Spec.DeadLetter.MaxRatio != nil
}

// buildGuard adds the consumer-health guard and the dead-letter reader to spec. A bad deadLetter is a
// triggerError (InvalidDeadLetter, or AuthenticationNotFound).
func (r *Reconciler) buildGuard(ctx context.Context, sc *ebbv1.ScaledConsumer, spec *pollSpec) error {
	g := sc.Spec.Guard
	off := g != nil && g.Enabled != nil && !*g.Enabled
	if off && sc.Spec.DeadLetter == nil {
		return nil
	}
	cfg := guardConfig{StalledAfterPolls: 24, ReleaseAfter: 2 * time.Minute}
	if g != nil {
		if g.StalledAfterPolls != nil {
			cfg.StalledAfterPolls = max(*g.StalledAfterPolls, 0)
		}
		cfg.ReleaseAfter = durationOr(g.ReleaseAfter, cfg.ReleaseAfter)
	}
	if dl := sc.Spec.DeadLetter; dl != nil {
		cfg.Window = durationOr(dl.Window, time.Minute)
		var errs []error
		if q := dl.MaxInflowPerMinute; q != nil {
			if v := q.AsApproximateFloat64(); v < 0 {
				errs = append(errs, fmt.Errorf("deadLetter.maxInflowPerMinute must not be negative, got %s", q))
			} else {
				cfg.MaxInflowPerMinute = ptr(v)
			}
		}
		if q := dl.MaxRatio; q != nil {
			if v := q.AsApproximateFloat64(); v <= 0 || v >= 1 {
				errs = append(errs, fmt.Errorf("deadLetter.maxRatio is a share of the messages consumed, above 0 and below 1 (0.5 is half), got %s", q))
			} else {
				cfg.MaxRatio = ptr(v)
			}
		}
		auth, err := r.resolveAuth(ctx, sc.Namespace, dl.AuthenticationRef)
		if err != nil {
			var te *triggerError
			if errors.As(err, &te) {
				return &triggerError{Reason: te.Reason, Err: fmt.Errorf("deadLetter: %w", err)}
			}
			return err
		}
		if reader, err := r.Registry.NewDeadLetter(dl.Type, scalers.Config{TriggerName: "deadLetter", Metadata: dl.Metadata, Auth: auth, PollingInterval: spec.Interval}); err != nil {
			errs = append(errs, err)
		} else {
			spec.DeadLetter = reader
		}
		if len(errs) > 0 {
			closeReader(spec.DeadLetter)
			spec.DeadLetter = nil
			return &triggerError{Reason: ReasonInvalidDeadLetter, Err: errors.Join(errs...)}
		}
		cfg.DeadLetter = spec.DeadLetter.Name()
	}
	if off {
		// A guard turned off still has its deadLetter checked (above), so a typo does not wait for the day
		// the guard is turned on; the reader is not kept.
		closeReader(spec.DeadLetter)
		spec.DeadLetter = nil
		return nil
	}
	spec.Guard = &cfg
	if c := meta.FindStatusCondition(sc.Status.Conditions, ebbv1.ConditionConsumersHealthy); c != nil && c.Status == metav1.ConditionFalse {
		spec.GuardTripped = c.Reason
	}
	return nil
}

func closeAll(ts []polledTrigger) {
	for _, t := range ts {
		if c, ok := t.Scaler.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
}

// closeReader closes a dead-letter reader that holds a shared resource (nil: nothing to close).
func closeReader(d scalers.DeadLetterReader) {
	if c, ok := d.(interface{ Close() error }); ok {
		_ = c.Close()
	}
}
