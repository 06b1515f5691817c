package controller

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

// testSC is a ScaledConsumer "orders" in namespace "shop" that scales Deployment "orders-worker", with
// the API defaults of minReplicas and maxReplicas left unset; mods adjust it.
func testSC(mods ...func(*ebbv1.ScaledConsumer)) *ebbv1.ScaledConsumer {
	sc := &ebbv1.ScaledConsumer{
		ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "shop", UID: types.UID("0f3c6a2e-uid")},
		Spec: ebbv1.ScaledConsumerSpec{
			ScaleTargetRef: ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "orders-worker"},
			Triggers:       []ebbv1.Trigger{{Type: "kafka"}},
		},
	}
	for _, m := range mods {
		m(sc)
	}
	return sc
}

// wantHPA describes the apply configuration expected for a ScaledConsumer; build writes it out field by
// field, without desiredHPA's builders, so that any change to desiredHPA shows up as a diff.
type wantHPA struct {
	name                     string
	namespace                string // default "shop"
	apiVersion, kind, target string // default apps/v1 Deployment orders-worker
	minReplicas, maxReplicas int32
	metrics                  [][2]string // metric name and AverageValue quantity
	ownerName                string      // the ScaledConsumer's name; default "orders"
	ownerUID                 types.UID   // default testSC's UID
}

func (w wantHPA) build() *autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration {
	or := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}
	sc := or(w.ownerName, "orders")
	uid := w.ownerUID
	if uid == "" {
		uid = "0f3c6a2e-uid"
	}
	var metrics []autoscalingv2ac.MetricSpecApplyConfiguration
	for _, m := range w.metrics {
		q := resource.MustParse(m[1])
		metrics = append(metrics, autoscalingv2ac.MetricSpecApplyConfiguration{
			Type: ptr(autoscalingv2.ExternalMetricSourceType),
			External: &autoscalingv2ac.ExternalMetricSourceApplyConfiguration{
				Metric: &autoscalingv2ac.MetricIdentifierApplyConfiguration{
					Name: ptr(m[0]),
					Selector: &metav1ac.LabelSelectorApplyConfiguration{
						MatchLabels: map[string]string{"ebb.dev/scaledconsumer": sc},
					},
				},
				Target: &autoscalingv2ac.MetricTargetApplyConfiguration{
					Type:         ptr(autoscalingv2.AverageValueMetricType),
					AverageValue: &q,
				},
			},
		})
	}
	return &autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration{
		TypeMetaApplyConfiguration: metav1ac.TypeMetaApplyConfiguration{
			Kind:       ptr("HorizontalPodAutoscaler"),
			APIVersion: ptr("autoscaling/v2"),
		},
		ObjectMetaApplyConfiguration: &metav1ac.ObjectMetaApplyConfiguration{
			Name:      ptr(w.name),
			Namespace: ptr(or(w.namespace, "shop")),
			Labels: map[string]string{
				"ebb.dev/scaledconsumer":       sc,
				"app.kubernetes.io/managed-by": "ebb",
			},
			OwnerReferences: []metav1ac.OwnerReferenceApplyConfiguration{{
				APIVersion:         ptr("ebb.dev/v1alpha1"),
				Kind:               ptr("ScaledConsumer"),
				Name:               ptr(sc),
				UID:                ptr(uid),
				Controller:         ptr(true),
				BlockOwnerDeletion: ptr(true),
			}},
		},
		Spec: &autoscalingv2ac.HorizontalPodAutoscalerSpecApplyConfiguration{
			ScaleTargetRef: &autoscalingv2ac.CrossVersionObjectReferenceApplyConfiguration{
				APIVersion: ptr(or(w.apiVersion, "apps/v1")),
				Kind:       ptr(or(w.kind, "Deployment")),
				Name:       ptr(or(w.target, "orders-worker")),
			},
			MinReplicas: ptr(w.minReplicas),
			MaxReplicas: ptr(w.maxReplicas),
			Metrics:     metrics,
		},
	}
}

func TestDesiredHPA(t *testing.T) {
	lag := []HPAMetric{{Name: "s0-kafka-lag", Target: 5}}
	tests := []struct {
		name    string
		sc      *ebbv1.ScaledConsumer
		metrics []HPAMetric
		want    wantHPA
	}{
		{
			name:    "defaults",
			sc:      testSC(),
			metrics: lag,
			want:    wantHPA{name: "ebb-orders", minReplicas: 1, maxReplicas: 100, metrics: [][2]string{{"s0-kafka-lag", "5"}}},
		},
		{
			name: "hpa-name-from-spec",
			sc: testSC(func(sc *ebbv1.ScaledConsumer) {
				sc.Spec.HPA = &ebbv1.HPAConfig{Name: "orders-hpa"}
			}),
			metrics: lag,
			want:    wantHPA{name: "orders-hpa", minReplicas: 1, maxReplicas: 100, metrics: [][2]string{{"s0-kafka-lag", "5"}}},
		},
		{
			name: "empty-hpa-name-is-default",
			sc: testSC(func(sc *ebbv1.ScaledConsumer) {
				sc.Spec.HPA = &ebbv1.HPAConfig{}
			}),
			metrics: lag,
			want:    wantHPA{name: "ebb-orders", minReplicas: 1, maxReplicas: 100, metrics: [][2]string{{"s0-kafka-lag", "5"}}},
		},
		{
			name: "min-zero-is-one",
			sc: testSC(func(sc *ebbv1.ScaledConsumer) {
				sc.Spec.MinReplicas, sc.Spec.MaxReplicas = ptr(int32(0)), ptr(int32(10))
			}),
			metrics: lag,
			want:    wantHPA{name: "ebb-orders", minReplicas: 1, maxReplicas: 10, metrics: [][2]string{{"s0-kafka-lag", "5"}}},
		},
		{
			name: "min-three",
			sc: testSC(func(sc *ebbv1.ScaledConsumer) {
				sc.Spec.MinReplicas, sc.Spec.MaxReplicas = ptr(int32(3)), ptr(int32(7))
			}),
			metrics: lag,
			want:    wantHPA{name: "ebb-orders", minReplicas: 3, maxReplicas: 7, metrics: [][2]string{{"s0-kafka-lag", "5"}}},
		},
		{
			name: "min-three-max-default",
			sc: testSC(func(sc *ebbv1.ScaledConsumer) {
				sc.Spec.MinReplicas = ptr(int32(3))
			}),
			metrics: lag,
			want:    wantHPA{name: "ebb-orders", minReplicas: 3, maxReplicas: 100, metrics: [][2]string{{"s0-kafka-lag", "5"}}},
		},
		{
			name: "one-external-metric-per-metric",
			sc:   testSC(),
			metrics: []HPAMetric{
				{Name: "s0-kafka-lag", Target: 100},
				{Name: "s1-rabbitmq-depth", Target: 0.25},
				{Name: "s1-rabbitmq-rate", Target: 1.5},
			},
			want: wantHPA{name: "ebb-orders", minReplicas: 1, maxReplicas: 100, metrics: [][2]string{
				{"s0-kafka-lag", "100"},
				{"s1-rabbitmq-depth", "250m"},
				{"s1-rabbitmq-rate", "1500m"},
			}},
		},
		{
			// The same ScaledConsumer after its second trigger was removed: the HPA lists only what is left,
			// and server-side apply removes the rest.
			name:    "removed-trigger",
			sc:      testSC(),
			metrics: []HPAMetric{{Name: "s0-kafka-lag", Target: 100}},
			want:    wantHPA{name: "ebb-orders", minReplicas: 1, maxReplicas: 100, metrics: [][2]string{{"s0-kafka-lag", "100"}}},
		},
		{
			name:    "zero-target-is-one-milli",
			sc:      testSC(),
			metrics: []HPAMetric{{Name: "s0-kafka-lag", Target: 0}},
			want:    wantHPA{name: "ebb-orders", minReplicas: 1, maxReplicas: 100, metrics: [][2]string{{"s0-kafka-lag", "1m"}}},
		},
		{
			name: "statefulset",
			sc: testSC(func(sc *ebbv1.ScaledConsumer) {
				sc.Spec.ScaleTargetRef = ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "orders-db"}
			}),
			metrics: lag,
			want: wantHPA{name: "ebb-orders", kind: "StatefulSet", target: "orders-db", minReplicas: 1, maxReplicas: 100,
				metrics: [][2]string{{"s0-kafka-lag", "5"}}},
		},
		{
			name: "custom-resource",
			sc: testSC(func(sc *ebbv1.ScaledConsumer) {
				sc.Spec.ScaleTargetRef = ebbv1.ScaleTargetRef{APIVersion: "workers.example.com/v1beta2", Kind: "WorkerPool", Name: "pool-a"}
			}),
			metrics: lag,
			want: wantHPA{name: "ebb-orders", apiVersion: "workers.example.com/v1beta2", kind: "WorkerPool", target: "pool-a",
				minReplicas: 1, maxReplicas: 100, metrics: [][2]string{{"s0-kafka-lag", "5"}}},
		},
		{
			name: "other-name-namespace-and-uid",
			sc: testSC(func(sc *ebbv1.ScaledConsumer) {
				sc.Name, sc.Namespace, sc.UID = "payments", "billing", "7d1e-uid"
			}),
			metrics: lag,
			want: wantHPA{name: "ebb-payments", namespace: "billing", ownerName: "payments", ownerUID: "7d1e-uid",
				minReplicas: 1, maxReplicas: 100, metrics: [][2]string{{"s0-kafka-lag", "5"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := desiredHPA(tc.sc, tc.metrics)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want.build()); diff != "" {
				t.Errorf("desiredHPA (-got +want):\n%s", diff)
			}
		})
	}
}

func TestDesiredHPAMetricsAreNotMerged(t *testing.T) {
	sc := testSC()
	two := []HPAMetric{{Name: "s0-kafka-lag", Target: 100}, {Name: "s1-rabbitmq-depth", Target: 10}}
	if _, err := desiredHPA(sc, two); err != nil {
		t.Fatal(err)
	}
	got, err := desiredHPA(sc, two[1:])
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range got.Spec.Metrics {
		names = append(names, *m.External.Metric.Name)
	}
	if diff := cmp.Diff(names, []string{"s1-rabbitmq-depth"}); diff != "" {
		t.Errorf("metric names after removing a trigger (-got +want):\n%s", diff)
	}
}

func TestDesiredHPABehavior(t *testing.T) {
	tolerance := resource.MustParse("50m")
	tests := []struct {
		name string
		hpa  *ebbv1.HPAConfig
		want *autoscalingv2.HorizontalPodAutoscalerBehavior // nil: no spec.behavior
	}{
		{name: "no-hpa-config", hpa: nil, want: nil},
		{name: "no-behavior", hpa: &ebbv1.HPAConfig{Name: "orders-hpa"}, want: nil},
		{
			name: "scale-down-only",
			hpa: &ebbv1.HPAConfig{Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr(int32(60))},
			}},
			want: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr(int32(60))},
			},
		},
		{
			name: "full",
			hpa: &ebbv1.HPAConfig{Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleUp: &autoscalingv2.HPAScalingRules{
					StabilizationWindowSeconds: ptr(int32(0)),
					SelectPolicy:               ptr(autoscalingv2.MaxChangePolicySelect),
					Policies: []autoscalingv2.HPAScalingPolicy{
						{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
						{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
					},
					Tolerance: &tolerance,
				},
				ScaleDown: &autoscalingv2.HPAScalingRules{
					StabilizationWindowSeconds: ptr(int32(300)),
					SelectPolicy:               ptr(autoscalingv2.DisabledPolicySelect),
				},
			}},
			want: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleUp: &autoscalingv2.HPAScalingRules{
					StabilizationWindowSeconds: ptr(int32(0)),
					SelectPolicy:               ptr(autoscalingv2.MaxChangePolicySelect),
					Policies: []autoscalingv2.HPAScalingPolicy{
						{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
						{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
					},
					Tolerance: ptr(resource.MustParse("50m")),
				},
				ScaleDown: &autoscalingv2.HPAScalingRules{
					StabilizationWindowSeconds: ptr(int32(300)),
					SelectPolicy:               ptr(autoscalingv2.DisabledPolicySelect),
				},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := testSC(func(sc *ebbv1.ScaledConsumer) { sc.Spec.HPA = tc.hpa })
			orig := sc.DeepCopy()
			hpa, err := desiredHPA(sc, []HPAMetric{{Name: "s0-kafka-lag", Target: 5}})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(sc, orig); diff != "" {
				t.Errorf("desiredHPA changed its ScaledConsumer (-got +want):\n%s", diff)
			}
			gotAC := hpa.Spec.Behavior
			if tc.want == nil {
				if gotAC != nil {
					t.Errorf("spec.behavior = %+v, want none", gotAC)
				}
				return
			}
			if gotAC == nil {
				t.Fatal("spec.behavior is missing")
			}
			// The apply configuration and the API type share their JSON form: convert back and compare.
			raw, err := json.Marshal(gotAC)
			if err != nil {
				t.Fatal(err)
			}
			got := &autoscalingv2.HorizontalPodAutoscalerBehavior{}
			if err := json.Unmarshal(raw, got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("spec.behavior (-got +want):\n%s", diff)
			}
		})
	}
}

func TestMilli(t *testing.T) {
	tests := []struct {
		name string
		v    float64
		want string
	}{
		{name: "zero", v: 0, want: "1m"},
		{name: "negative", v: -3, want: "1m"},
		{name: "nan", v: math.NaN(), want: "1m"},
		{name: "minus-inf", v: math.Inf(-1), want: "1m"},
		{name: "below-half-milli", v: 0.0004, want: "1m"},
		{name: "one-milli", v: 0.001, want: "1m"},
		{name: "fraction", v: 0.25, want: "250m"},
		{name: "rounded-to-milli", v: 0.1234, want: "123m"},
		{name: "whole", v: 5, want: "5"},
		{name: "large", v: 1e6, want: "1M"},
		{name: "huge-capped", v: 1e300, want: "9223372036854775807m"},
		{name: "just-above-int64-capped", v: 9.3e15, want: "9223372036854775807m"},
		{name: "plus-inf-capped", v: math.Inf(1), want: "9223372036854775807m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := milli(tc.v)
			if got.String() != tc.want {
				t.Errorf("milli(%v) = %s, want %s", tc.v, got.String(), tc.want)
			}
		})
	}
}

// While the guard holds scale-up, the HPA's maxReplicas is the held count, kept where an HPA can have it:
// not below its minReplicas (at least 1), not above spec.maxReplicas.
func TestHPAMaxReplicasHeldByGuard(t *testing.T) {
	tests := []struct {
		name          string
		min, max      int32
		held          *int32
		wantMin, want int32
	}{
		{name: "not-held", min: 0, max: 10, want: 10, wantMin: 1},
		{name: "held", min: 0, max: 10, held: ptr[int32](3), want: 3, wantMin: 1},
		{name: "held-at-zero", min: 0, max: 10, held: ptr[int32](0), want: 1, wantMin: 1},
		{name: "held-below-min", min: 4, max: 10, held: ptr[int32](2), want: 4, wantMin: 4},
		{name: "held-above-max", min: 1, max: 5, held: ptr[int32](8), want: 5, wantMin: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := &ebbv1.ScaledConsumer{Spec: ebbv1.ScaledConsumerSpec{MinReplicas: &tc.min, MaxReplicas: &tc.max}}
			if tc.held != nil {
				sc.Status.Guard = &ebbv1.GuardStatus{HeldReplicas: tc.held}
			}
			hpa, err := desiredHPA(sc, []HPAMetric{{Name: "lag", Target: 10}})
			if err != nil {
				t.Fatal(err)
			}
			if got := *hpa.Spec.MaxReplicas; got != tc.want {
				t.Errorf("maxReplicas = %d, want %d", got, tc.want)
			}
			if got := *hpa.Spec.MinReplicas; got != tc.wantMin {
				t.Errorf("minReplicas = %d, want %d (the guard does not touch it)", got, tc.wantMin)
			}
		})
	}
}
