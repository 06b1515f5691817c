package controller

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

// Values of the step label of ebb_reconcile_errors_total.
var reconcileSteps = []string{"hpa", "scale", "status", "triggers"}

// Metrics are the Prometheus metrics of the controller and the poller. Build them with NewMetrics and
// register them once.
type Metrics struct {
	TriggerValue     *prometheus.GaugeVec
	TriggerTarget    *prometheus.GaugeVec
	TriggerActive    *prometheus.GaugeVec
	TriggerErrors    *prometheus.CounterVec
	TriggerFailures  *prometheus.GaugeVec
	PollDuration     *prometheus.HistogramVec
	Condition        *prometheus.GaugeVec
	ScaleActions     *prometheus.CounterVec
	FallbackEntries  *prometheus.CounterVec
	ReconcileErrors  *prometheus.CounterVec
	HPAApplyDuration prometheus.Histogram

	// Replicas, for "why is it at N replicas?" (exportReplicas).
	HPADesiredReplicas    *prometheus.GaugeVec
	TargetReplicas        *prometheus.GaugeVec
	TargetCurrentReplicas *prometheus.GaugeVec
	MinReplicas           *prometheus.GaugeVec
	MaxReplicas           *prometheus.GaugeVec

	// The consumer-health guard (guard.go).
	GuardTripped     *prometheus.GaugeVec
	GuardTrips       *prometheus.CounterVec
	DeadLetterDepth  *prometheus.GaugeVec
	DeadLetterInflow *prometheus.GaugeVec
	DeadLetterRatio  *prometheus.GaugeVec
	StalledPolls     *prometheus.GaugeVec
}

// NewMetrics builds the metrics and registers them with reg (nil: not registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	sc := []string{"namespace", "scaledconsumer"}
	tr := []string{"namespace", "scaledconsumer", "trigger"}
	m := &Metrics{
		TriggerValue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_trigger_value",
			Help: "Last value sampled for a trigger's metric (the backlog the HPA sees, before fallback).",
		}, append(tr, "metric")),
		TriggerTarget: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_trigger_target",
			Help: "The backlog one replica should face for a trigger's metric (the HPA's AverageValue target): the HPA asks for ceil(value / target) replicas.",
		}, append(tr, "metric")),
		TriggerActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_trigger_active",
			Help: "1 while the trigger's last good sample was above its activation threshold.",
		}, tr),
		TriggerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_trigger_errors_total",
			Help: "Failed samples of a trigger.",
		}, tr),
		TriggerFailures: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_trigger_consecutive_failures",
			Help: "Failed samples of a trigger since its last good one (0 while it samples fine); fallback starts at fallback.failureThreshold.",
		}, tr),
		PollDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ebb_trigger_poll_duration_seconds",
			Help:    "Time to sample one trigger, by trigger type.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"type"}),
		Condition: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_scaledconsumer_condition",
			Help: "1 while the ScaledConsumer's condition (Ready, Active, Fallback, Paused) is True.",
		}, append(sc, "condition")),
		ScaleActions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_scale_actions_total",
			Help: "Replica changes ebb made itself through /scale, by reason (Activated, CooledDown, FallbackReplicas, PausedReplicas).",
		}, append(sc, "reason")),
		FallbackEntries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_fallback_entries_total",
			Help: "Times the ScaledConsumer entered fallback (its Fallback condition turned True): a trigger failed fallback.failureThreshold times in a row.",
		}, sc),
		ReconcileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_reconcile_errors_total",
			Help: "Reconcile steps that failed, by step (hpa, scale, status, triggers).",
		}, []string{"step"}),
		HPAApplyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ebb_hpa_apply_duration_seconds",
			Help:    "Time of one server-side apply of an HPA.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		HPADesiredReplicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_hpa_desired_replicas",
			Help: "The desired replicas in the status of the ScaledConsumer's HPA, as of ebb's last reconcile; absent while ebb keeps no HPA (paused, parked at idleReplicas).",
		}, sc),
		TargetReplicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_target_replicas",
			Help: "The replicas the scale target is asked for (its /scale spec.replicas, after ebb's own scaling), as of ebb's last reconcile.",
		}, sc),
		TargetCurrentReplicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_target_current_replicas",
			Help: "The replicas the scale target runs (its /scale status.replicas), as of ebb's last reconcile.",
		}, sc),
		MinReplicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_scaledconsumer_min_replicas",
			Help: "The ScaledConsumer's minReplicas (0: scale to zero when idle).",
		}, sc),
		MaxReplicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_scaledconsumer_max_replicas",
			Help: "The HPA's upper bound: spec.maxReplicas, or the count the consumer-health guard holds while it holds scale-up.",
		}, sc),
		GuardTripped: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_guard_tripped",
			Help: "1 while the consumer-health guard holds the ScaledConsumer's scale-up.",
		}, sc),
		GuardTrips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_guard_trips_total",
			Help: "Times the consumer-health guard tripped, by reason (DeadLetterInflow, DeadLetterRatio, Stalled, Rewound).",
		}, append(sc, "reason")),
		DeadLetterDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_deadletter_depth",
			Help: "Messages waiting in the ScaledConsumer's dead-letter queue or topic.",
		}, sc),
		DeadLetterInflow: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_deadletter_inflow_per_minute",
			Help: "Messages dead-lettered per minute, averaged over the guard's window.",
		}, sc),
		DeadLetterRatio: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_deadletter_ratio",
			Help: "Messages dead-lettered per message consumed over the guard's window.",
		}, sc),
		StalledPolls: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_consumer_stalled_polls",
			Help: "Polls in a row in which a trigger's consumers had a backlog but their position (a Kafka group's committed offsets, a NATS JetStream consumer's ack floor) did not move.",
		}, tr),
	}
	if reg != nil {
		reg.MustRegister(m.TriggerValue, m.TriggerActive, m.TriggerErrors, m.PollDuration, m.Condition, m.ScaleActions, m.ReconcileErrors, m.HPAApplyDuration,
			m.TriggerTarget, m.TriggerFailures, m.HPADesiredReplicas, m.TargetReplicas, m.TargetCurrentReplicas, m.MinReplicas, m.MaxReplicas,
			m.GuardTripped, m.GuardTrips, m.DeadLetterDepth, m.DeadLetterInflow, m.DeadLetterRatio, m.StalledPolls, m.FallbackEntries)
	}
	// Every step's series exists from the start, so an alert on increase() sees the first error.
	for _, step := range reconcileSteps {
		m.ReconcileErrors.WithLabelValues(step)
	}
	return m
}

// forgetTriggers drops the per-trigger series of one ScaledConsumer.
func (m *Metrics) forgetTriggers(namespace, name string) {
	l := prometheus.Labels{"namespace": namespace, "scaledconsumer": name}
	m.TriggerValue.DeletePartialMatch(l)
	m.TriggerTarget.DeletePartialMatch(l)
	m.TriggerActive.DeletePartialMatch(l)
	m.TriggerErrors.DeletePartialMatch(l)
	m.TriggerFailures.DeletePartialMatch(l)
	m.StalledPolls.DeletePartialMatch(l)
}

// forget drops every series of one ScaledConsumer.
func (m *Metrics) forget(namespace, name string) {
	l := prometheus.Labels{"namespace": namespace, "scaledconsumer": name}
	m.forgetTriggers(namespace, name)
	m.Condition.DeletePartialMatch(l)
	m.ScaleActions.DeletePartialMatch(l)
	m.FallbackEntries.DeletePartialMatch(l)
	m.forgetReplicas(namespace, name)
	m.GuardTrips.DeletePartialMatch(l)
	m.forgetGuard(namespace, name)
}

// forgetReplicas drops the replica gauges of one ScaledConsumer: it is gone, or ebb cannot say (its
// target is missing, or another scaler owns it).
func (m *Metrics) forgetReplicas(namespace, name string) {
	l := prometheus.Labels{"namespace": namespace, "scaledconsumer": name}
	m.HPADesiredReplicas.DeletePartialMatch(l)
	m.TargetReplicas.DeletePartialMatch(l)
	m.TargetCurrentReplicas.DeletePartialMatch(l)
	m.MinReplicas.DeletePartialMatch(l)
	m.MaxReplicas.DeletePartialMatch(l)
}

// forgetGuard drops the guard's gauges of one ScaledConsumer (a new poll sets those it still has).
func (m *Metrics) forgetGuard(namespace, name string) {
	l := prometheus.Labels{"namespace": namespace, "scaledconsumer": name}
	m.GuardTripped.DeletePartialMatch(l)
	m.DeadLetterDepth.DeletePartialMatch(l)
	m.DeadLetterInflow.DeletePartialMatch(l)
	m.DeadLetterRatio.DeletePartialMatch(l)
}

// exportReplicas sets the replica gauges of sc from what the reconcile already read: the target's /scale
// (scaledTo, when ebb just scaled it itself) and the HPA from the cache, so it costs no API call. withHPA is
// false while ebb keeps no HPA (paused, parked), which drops ebb_hpa_desired_replicas. The HPA's status
// is as fresh as the last reconcile: at most StatusRefresh old, and current whenever activity changes.
func (r *Reconciler) exportReplicas(ctx context.Context, sc *ebbv1.ScaledConsumer, scale *unstructured.Unstructured, scaledTo *int32, withHPA bool) {
	m := r.Metrics
	spec := scaleReplicas(scale)
	if scaledTo != nil {
		spec = *scaledTo
	}
	current, _, _ := unstructured.NestedInt64(scale.Object, "status", "replicas")
	m.TargetReplicas.WithLabelValues(sc.Namespace, sc.Name).Set(float64(spec))
	m.TargetCurrentReplicas.WithLabelValues(sc.Namespace, sc.Name).Set(float64(current))
	m.MinReplicas.WithLabelValues(sc.Namespace, sc.Name).Set(float64(minReplicas(sc)))
	// The HPA's bound as applied: the count the consumer-health guard holds while it holds scale-up.
	m.MaxReplicas.WithLabelValues(sc.Namespace, sc.Name).Set(float64(hpaMaxReplicas(sc)))
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	// An HPA the HPA controller has not synced yet has no desired replicas to show (not 0).
	if !withHPA || r.Client.Get(ctx, types.NamespacedName{Namespace: sc.Namespace, Name: HPAName(sc)}, hpa) != nil ||
		!metav1.IsControlledBy(hpa, sc) || hpa.Status.ObservedGeneration == nil {
		m.HPADesiredReplicas.DeleteLabelValues(sc.Namespace, sc.Name)
		return
	}
	m.HPADesiredReplicas.WithLabelValues(sc.Namespace, sc.Name).Set(float64(hpa.Status.DesiredReplicas))
}
