package explain

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func cond(typ string, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(now.Add(-time.Minute))}
}

// fixture is a ScaledConsumer "orders" with one trigger "lag" (threshold 10), maxReplicas 5, cooldown
// 5m, created an hour ago, its HPA (min 1, max 5) and its target at replicas.
func fixture(replicas int32, value string, active bool) Input {
	sc := &ebbv1.ScaledConsumer{
		ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "shop", CreationTimestamp: metav1.NewTime(now.Add(-time.Hour))},
		Spec: ebbv1.ScaledConsumerSpec{
			ScaleTargetRef: ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "consumer"},
			MaxReplicas:    ptr(int32(5)),
			Triggers:       []ebbv1.Trigger{{Name: "lag", Type: "kafka"}},
		},
		Status: ebbv1.ScaledConsumerStatus{
			HPAName: "ebb-orders",
			Conditions: []metav1.Condition{
				cond(ebbv1.ConditionReady, metav1.ConditionTrue, "HPAReady", "HPA ebb-orders scales Deployment consumer on 1 metric(s)"),
				cond(ebbv1.ConditionFallback, metav1.ConditionFalse, "TriggersHealthy", "every trigger's last sample succeeded"),
			},
			Triggers: []ebbv1.TriggerStatus{{Name: "lag", Value: value, Active: active, LastPollTime: &metav1.Time{Time: now.Add(-20 * time.Second)}}},
		},
	}
	if active {
		sc.Status.Conditions = append(sc.Status.Conditions, cond(ebbv1.ConditionActive, metav1.ConditionTrue, "TriggerActive", "above activation threshold: lag="+value))
		sc.Status.LastActiveTime = &metav1.Time{Time: now.Add(-2 * time.Second)}
	} else {
		sc.Status.Conditions = append(sc.Status.Conditions, cond(ebbv1.ConditionActive, metav1.ConditionFalse, "NoActivity", "no trigger is above its activation threshold"))
		sc.Status.LastActiveTime = &metav1.Time{Time: now.Add(-2 * time.Minute)}
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "ebb-orders", Namespace: "shop"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			MinReplicas: ptr(int32(1)), MaxReplicas: 5,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
				Metric: autoscalingv2.MetricIdentifier{Name: "lag"},
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr(resource.MustParse("10"))},
			}}},
		},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: replicas, DesiredReplicas: replicas},
	}
	q := resource.MustParse(value)
	return Input{
		Now: now, ScaledConsumer: sc, HPA: hpa, Scale: &Scale{Replicas: replicas, CurrentReplicas: replicas},
		Metrics: map[string]MetricReading{"lag": {Value: &q, Time: now.Add(-time.Second)}},
	}
}

// summary is what the table compares: the decision, not the wording.
type summary struct {
	State      State
	BoundBy    string
	Asked      *int32
	Cooldown   *time.Time
	NextActor  string
	NextTo     *int32
	NextAt     *time.Time
	Fallback   bool
	GuardTrips bool
}

func summarize(e Explanation) summary {
	s := summary{State: e.State, BoundBy: e.BoundBy, Asked: e.Asked, Cooldown: e.CooldownUntil,
		NextActor: e.Next.Actor, NextTo: e.Next.Replicas, NextAt: e.Next.At}
	for _, t := range e.Triggers {
		for _, m := range t.Metrics {
			s.Fallback = s.Fallback || m.Fallback
		}
	}
	s.GuardTrips = e.Guard != nil && e.Guard.Tripped
	return s
}

func TestBuild(t *testing.T) {
	cooldownEnd := now.Add(3 * time.Minute) // last active 2m ago + 5m default cooldown
	tests := []struct {
		name string
		in   func() Input
		want summary
	}{{
		name: "active-sized-by-trigger",
		in:   func() Input { return fixture(4, "35", true) },
		want: summary{State: StateActive, BoundBy: LimitTriggers, Asked: ptr(int32(4)), NextActor: "hpa", NextTo: ptr(int32(4))},
	}, {
		name: "active-capped-by-maxReplicas",
		in:   func() Input { return fixture(5, "1k", true) },
		want: summary{State: StateActive, BoundBy: LimitMaxReplicas, Asked: ptr(int32(100)), NextActor: "hpa", NextTo: ptr(int32(5))},
	}, {
		name: "active-capped-by-kafka-partitions",
		in: func() Input {
			in := fixture(3, "30", true)
			in.ScaledConsumer.Status.Triggers[0].Message = "lag capped at 3 partitions x lagThreshold 10 = 30 (the HPA never asks for more replicas than partitions; allowIdleConsumers lifts the cap)"
			return in
		},
		want: summary{State: StateActive, BoundBy: LimitPartitions, Asked: ptr(int32(3)), NextActor: "hpa", NextTo: ptr(int32(3))},
	}, {
		name: "active-hpa-about-to-scale",
		in: func() Input {
			in := fixture(2, "35", true)
			in.HPA.Status.DesiredReplicas = 4
			return in
		},
		want: summary{State: StateActive, BoundBy: LimitTriggers, Asked: ptr(int32(4)), NextActor: "hpa", NextTo: ptr(int32(4))},
	}, {
		name: "active-held-by-stabilization",
		in: func() Input {
			in := fixture(4, "12", true)
			return in // the HPA still wants 4 where the triggers ask 2
		},
		want: summary{State: StateActive, BoundBy: LimitHPABehavior, Asked: ptr(int32(2)), NextActor: "hpa", NextTo: ptr(int32(2))},
	}, {
		name: "cooling-down",
		in:   func() Input { return fixture(1, "0", false) },
		want: summary{State: StateCoolingDown, BoundBy: LimitMinReplicas, Asked: ptr(int32(0)), Cooldown: &cooldownEnd, NextActor: "ebb", NextTo: ptr(int32(0)), NextAt: &cooldownEnd},
	}, {
		name: "idle-at-zero",
		in: func() Input {
			in := fixture(0, "0", false)
			in.HPA.Status.Conditions = []autoscalingv2.HorizontalPodAutoscalerCondition{{Type: autoscalingv2.ScalingActive, Status: corev1.ConditionFalse, Reason: "ScalingDisabled"}}
			return in
		},
		want: summary{State: StateIdle, BoundBy: LimitIdle, Asked: ptr(int32(0)), NextActor: "ebb", NextTo: ptr(int32(1))},
	}, {
		name: "idle-at-minReplicas",
		in: func() Input {
			in := fixture(2, "0", false)
			in.ScaledConsumer.Spec.MinReplicas = ptr(int32(2))
			in.HPA.Spec.MinReplicas = ptr(int32(2))
			return in
		},
		want: summary{State: StateIdle, BoundBy: LimitMinReplicas, Asked: ptr(int32(0)), NextActor: "hpa", NextTo: ptr(int32(2))},
	}, {
		name: "fallback",
		in: func() Input {
			in := fixture(3, "30", false)
			sc := in.ScaledConsumer
			sc.Spec.Fallback = &ebbv1.Fallback{FailureThreshold: 2, Replicas: 3}
			sc.Status.Triggers[0].LastError = "dial tcp 127.0.0.1:9: connection refused"
			sc.Status.Triggers[0].ConsecutiveFailures = 4
			sc.Status.Triggers[0].Value = "0"
			sc.Status.Conditions[1] = cond(ebbv1.ConditionFallback, metav1.ConditionTrue, "TriggersFailing", `trigger "lag" is failing`)
			return in
		},
		want: summary{State: StateFallback, BoundBy: LimitFallback, Asked: ptr(int32(3)), NextActor: "hpa", NextTo: ptr(int32(3)), Fallback: true},
	}, {
		name: "paused",
		in: func() Input {
			in := fixture(3, "35", true)
			in.ScaledConsumer.Annotations = map[string]string{ebbv1.PausedAnnotation: "true"}
			in.HPA = nil
			return in
		},
		want: summary{State: StatePaused, BoundBy: LimitPaused, NextActor: "user", NextTo: ptr(int32(3))},
	}, {
		name: "pinned",
		in: func() Input {
			in := fixture(2, "35", true)
			in.ScaledConsumer.Annotations = map[string]string{ebbv1.PausedReplicasAnnotation: "2"}
			in.HPA = nil
			return in
		},
		want: summary{State: StatePinned, BoundBy: LimitPaused, NextActor: "user", NextTo: ptr(int32(2))},
	}, {
		name: "guard-holds-scale-up",
		in: func() Input {
			in := fixture(2, "80", true)
			sc := in.ScaledConsumer
			sc.Status.Guard = &ebbv1.GuardStatus{HeldReplicas: ptr(int32(2))}
			sc.Status.Conditions = append(sc.Status.Conditions, cond(ebbv1.ConditionConsumersHealthy, metav1.ConditionFalse, "Stalled", "group workers has lag and its commits have not moved"))
			in.HPA.Spec.MaxReplicas = 2
			return in
		},
		want: summary{State: StateActive, BoundBy: LimitGuard, Asked: ptr(int32(8)), NextActor: "ebb", NextTo: ptr(int32(2)), GuardTrips: true},
	}, {
		name: "cooling-down-held-by-failing-trigger",
		in: func() Input {
			in := fixture(1, "0", false)
			in.ScaledConsumer.Status.Triggers[0].LastError = "connection refused"
			return in
		},
		want: summary{State: StateCoolingDown, BoundBy: LimitMinReplicas, Asked: ptr(int32(0)), Cooldown: &cooldownEnd, NextActor: "ebb"},
	}, {
		name: "hpa-cannot-read-the-metric",
		in: func() Input {
			in := fixture(2, "35", true)
			in.HPA.Status.DesiredReplicas = 2
			in.HPA.Status.Conditions = []autoscalingv2.HorizontalPodAutoscalerCondition{{Type: autoscalingv2.ScalingActive, Status: corev1.ConditionFalse,
				Reason: "FailedGetExternalMetric", Message: "the HPA was unable to compute the replica count"}}
			return in
		},
		want: summary{State: StateActive, BoundBy: LimitHPAUnavailable, Asked: ptr(int32(4)), NextActor: "hpa", NextTo: ptr(int32(2))},
	}, {
		name: "parked-at-idleReplicas",
		in: func() Input {
			in := fixture(1, "0", false)
			in.ScaledConsumer.Spec.MinReplicas = ptr(int32(2))
			in.ScaledConsumer.Spec.IdleReplicas = ptr(int32(1))
			in.HPA = nil // ebb removes the HPA while parked
			return in
		},
		want: summary{State: StateIdle, BoundBy: LimitIdle, NextActor: "ebb", NextTo: ptr(int32(2))},
	}, {
		name: "not-ready",
		in: func() Input {
			in := fixture(0, "0", false)
			in.ScaledConsumer.Status.Conditions[0] = cond(ebbv1.ConditionReady, metav1.ConditionFalse, "TargetNotFound", "Deployment consumer not found in namespace shop")
			in.HPA, in.Scale, in.ScaleError = nil, nil, `deployments.apps "consumer" not found`
			return in
		},
		want: summary{State: StateNotReady, BoundBy: LimitNotReady, NextActor: "user"},
	}, {
		name: "waiting-for-first-sample",
		in: func() Input {
			in := fixture(1, "0", false)
			in.ScaledConsumer.Status.Conditions[2] = cond(ebbv1.ConditionActive, metav1.ConditionUnknown, "NotSampled", "waiting for the first sample of every trigger")
			return in
		},
		want: summary{State: StateWaiting, BoundBy: LimitMinReplicas, Asked: ptr(int32(0)), NextActor: "ebb"},
	}, {
		name: "value-from-hpa-status-when-metrics-api-fails",
		in: func() Input {
			in := fixture(4, "35", true)
			in.Metrics = map[string]MetricReading{"lag": {Err: "the server is currently unable to handle the request"}}
			in.HPA.Status.CurrentMetrics = []autoscalingv2.MetricStatus{{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricStatus{
				Metric: autoscalingv2.MetricIdentifier{Name: "lag"}, Current: autoscalingv2.MetricValueStatus{AverageValue: ptr(resource.MustParse("8750m"))},
			}}}
			return in
		},
		want: summary{State: StateActive, BoundBy: LimitTriggers, Asked: ptr(int32(4)), NextActor: "hpa", NextTo: ptr(int32(4))},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Build(tt.in())
			if diff := cmp.Diff(summarize(e), tt.want); diff != "" {
				t.Errorf("Build (-got +want):\n%s\nexplanation: %+v", diff, e)
			}
			var buf bytes.Buffer
			if err := Text(&buf, e); err != nil {
				t.Fatal(err)
			}
			for _, line := range []string{"State:     " + string(e.State), "Decided by: " + e.BoundBy, "Next:      "} {
				if !strings.Contains(buf.String(), line) {
					t.Errorf("text lacks %q:\n%s", line, buf.String())
				}
			}
		})
	}
}

func TestMath(t *testing.T) {
	e := Build(fixture(4, "35", true))
	m := e.Triggers[0].Metrics[0]
	want := TriggerMetric{Metric: "lag", Sizing: SizingThreshold, Value: "35", ValueTime: ptr(now.Add(-time.Second)), Source: "metricsAPI",
		Target: "10", Replicas: ptr(int32(4)), Math: "35 / 10 = 3.5 -> 4 replicas"}
	if diff := cmp.Diff(m, want); diff != "" {
		t.Errorf("metric (-got +want):\n%s", diff)
	}
}

// The JSON form is an interface for tools: a field renamed or removed fails this test. Regenerate with
// go test ./explain -run TestJSONFormat -update after adding a field.
func TestJSONFormat(t *testing.T) {
	in := fixture(5, "1k", true)
	in.ScaledConsumer.Spec.Fallback = &ebbv1.Fallback{FailureThreshold: 3, Replicas: 2}
	var buf bytes.Buffer
	if err := JSON(&buf, Build(in)); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	const path = "testdata/active.json"
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(got), string(want)); diff != "" {
		t.Errorf("JSON (-got +want):\n%s", diff)
	}
}

var update = flag.Bool("update", false, "rewrite testdata/active.json")
