package controller

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus metrics of the controller and the poller. Build them with NewMetrics and
// register them once.
type Metrics struct {
	TriggerValue     *prometheus.GaugeVec
	TriggerActive    *prometheus.GaugeVec
	TriggerErrors    *prometheus.CounterVec
	PollDuration     *prometheus.HistogramVec
	Condition        *prometheus.GaugeVec
	ScaleActions     *prometheus.CounterVec
	ReconcileErrors  *prometheus.CounterVec
	HPAApplyDuration prometheus.Histogram

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
		TriggerActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_trigger_active",
			Help: "1 while the trigger's last good sample was above its activation threshold.",
		}, tr),
		TriggerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_trigger_errors_total",
			Help: "Failed samples of a trigger.",
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
		ReconcileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_reconcile_errors_total",
			Help: "Reconcile steps that failed, by step (hpa, scale, status, triggers).",
		}, []string{"step"}),
		HPAApplyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ebb_hpa_apply_duration_seconds",
			Help:    "Time of one server-side apply of an HPA.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
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
			Help: "Polls in a row in which a Kafka trigger's group had lag but its committed offsets did not move.",
		}, tr),
	}
	if reg != nil {
		reg.MustRegister(m.TriggerValue, m.TriggerActive, m.TriggerErrors, m.PollDuration, m.Condition, m.ScaleActions, m.ReconcileErrors, m.HPAApplyDuration,
			m.GuardTripped, m.GuardTrips, m.DeadLetterDepth, m.DeadLetterInflow, m.DeadLetterRatio, m.StalledPolls)
	}
	return m
}

// forgetTriggers drops the per-trigger series of one ScaledConsumer.
func (m *Metrics) forgetTriggers(namespace, name string) {
	l := prometheus.Labels{"namespace": namespace, "scaledconsumer": name}
	m.TriggerValue.DeletePartialMatch(l)
	m.TriggerActive.DeletePartialMatch(l)
	m.TriggerErrors.DeletePartialMatch(l)
	m.StalledPolls.DeletePartialMatch(l)
}

// forget drops every series of one ScaledConsumer.
func (m *Metrics) forget(namespace, name string) {
	l := prometheus.Labels{"namespace": namespace, "scaledconsumer": name}
	m.forgetTriggers(namespace, name)
	m.Condition.DeletePartialMatch(l)
	m.ScaleActions.DeletePartialMatch(l)
	m.GuardTrips.DeletePartialMatch(l)
	m.forgetGuard(namespace, name)
}

// forgetGuard drops the guard's gauges of one ScaledConsumer (a new poll sets those it still has).
func (m *Metrics) forgetGuard(namespace, name string) {
	l := prometheus.Labels{"namespace": namespace, "scaledconsumer": name}
	m.GuardTripped.DeletePartialMatch(l)
	m.DeadLetterDepth.DeletePartialMatch(l)
	m.DeadLetterInflow.DeletePartialMatch(l)
	m.DeadLetterRatio.DeletePartialMatch(l)
}
