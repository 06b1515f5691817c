package explain

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

// Input is everything Build reads: what a user with read access sees, and the time.
type Input struct {
	Now            time.Time
	ScaledConsumer *ebbv1.ScaledConsumer
	// HPA is the HPA ebb manages, nil when there is none.
	HPA *autoscalingv2.HorizontalPodAutoscaler
	// Scale is the target's /scale, nil when it could not be read (ScaleError says why).
	Scale      *Scale
	ScaleError string
	// Metrics are the metrics API's answers, by external metric name, asked as the HPA asks.
	Metrics map[string]MetricReading
}

// Scale is the part of a /scale that matters here.
type Scale struct {
	Replicas, CurrentReplicas int32
}

// MetricReading is one answer of the metrics API: a value and when ebb sampled it, or an error.
type MetricReading struct {
	Value *resource.Quantity
	Time  time.Time
	Err   string
}

// Defaults of the spec, as the API server fills them in (repeated so that an object written before a
// default existed reads the same).
const (
	defaultMaxReplicas     = 100
	defaultPollingInterval = 5 * time.Second
	defaultCooldown        = 300 * time.Second
	// hpaTolerance is the HPA controller's default tolerance: it leaves the replica count alone while
	// the ratio of asked to current replicas is within 10% of 1.
	hpaTolerance = 0.1
)

// Build explains in.ScaledConsumer. It reads nothing but in.
func Build(in Input) Explanation {
	sc := in.ScaledConsumer
	e := Explanation{Format: Format, Namespace: sc.Namespace, Name: sc.Name, Time: in.Now.UTC()}
	ref := sc.Spec.ScaleTargetRef
	e.Target = Target{APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name, Error: in.ScaleError}
	if in.Scale != nil {
		e.Target.Replicas, e.Target.CurrentReplicas = ptr(in.Scale.Replicas), ptr(in.Scale.CurrentReplicas)
	}
	e.Spec = specOf(sc)
	if t := sc.Status.LastActiveTime; t != nil {
		e.LastActiveTime = ptr(t.UTC())
	}
	e.HPA = hpaOf(in.HPA)
	e.Triggers = triggersOf(in, e.Spec)
	for _, t := range e.Triggers {
		if t.Asked != nil && (e.Asked == nil || *t.Asked > *e.Asked) {
			e.Asked = ptr(*t.Asked)
		}
		for _, m := range t.Metrics {
			if m.Error != "" {
				e.Notes = append(e.Notes, fmt.Sprintf("metric %s: %s", m.Metric, m.Error))
			}
		}
	}
	if in.ScaleError != "" {
		e.Notes = append(e.Notes, "reading /scale: "+in.ScaleError)
	}
	e.Guard = guardOf(sc)
	e.State, e.StateMessage, e.CooldownUntil = stateOf(in, &e)
	e.Limits, e.BoundBy = limitsOf(in, &e)
	e.Next = nextOf(in, &e)
	return e
}

func specOf(sc *ebbv1.ScaledConsumer) Spec {
	s := Spec{
		MinReplicas:           deref(sc.Spec.MinReplicas, 0),
		MaxReplicas:           deref(sc.Spec.MaxReplicas, defaultMaxReplicas),
		IdleReplicas:          sc.Spec.IdleReplicas,
		PollingInterval:       durationOr(sc.Spec.PollingInterval, defaultPollingInterval).String(),
		CooldownPeriod:        durationOr(sc.Spec.CooldownPeriod, defaultCooldown).String(),
		InitialCooldownPeriod: durationOr(sc.Spec.InitialCooldownPeriod, 0).String(),
	}
	if f := sc.Spec.Fallback; f != nil {
		s.FallbackReplicas, s.FailureThreshold = ptr(f.Replicas), max(f.FailureThreshold, 1)
	}
	return s
}

func hpaOf(h *autoscalingv2.HorizontalPodAutoscaler) *HPA {
	if h == nil {
		return nil
	}
	out := &HPA{
		Name:            h.Name,
		MinReplicas:     deref(h.Spec.MinReplicas, 1),
		MaxReplicas:     h.Spec.MaxReplicas,
		CurrentReplicas: h.Status.CurrentReplicas,
		DesiredReplicas: h.Status.DesiredReplicas,
		Behavior:        h.Spec.Behavior != nil,
	}
	if t := h.Status.LastScaleTime; t != nil {
		out.LastScaleTime = ptr(t.UTC())
	}
	for _, c := range h.Status.Conditions {
		out.Conditions = append(out.Conditions, Condition{Type: string(c.Type), Status: string(c.Status), Reason: c.Reason, Message: c.Message})
	}
	return out
}

// hpaCondition returns the HPA's condition of type typ, or nil.
func (h *HPA) condition(typ autoscalingv2.HorizontalPodAutoscalerConditionType) *Condition {
	if h == nil {
		return nil
	}
	for i := range h.Conditions {
		if h.Conditions[i].Type == string(typ) {
			return &h.Conditions[i]
		}
	}
	return nil
}

func triggersOf(in Input, spec Spec) []Trigger {
	sc := in.ScaledConsumer
	status := map[string]ebbv1.TriggerStatus{}
	for _, s := range sc.Status.Triggers {
		status[s.Name] = s
	}
	out := make([]Trigger, 0, len(sc.Spec.Triggers))
	for _, st := range sc.Spec.Triggers {
		name := st.TriggerName()
		s := status[name]
		t := Trigger{Name: name, Type: st.Type, Active: s.Active, StatusValue: s.Value, Message: s.Message,
			LastError: s.LastError, ConsecutiveFailures: s.ConsecutiveFailures, Metrics: []TriggerMetric{}}
		if s.LastPollTime != nil {
			t.LastPollTime = ptr(s.LastPollTime.UTC())
		}
		fallbackDue := spec.FallbackReplicas != nil && s.ConsecutiveFailures >= spec.FailureThreshold
		if in.HPA != nil {
			for _, ms := range in.HPA.Spec.Metrics {
				if ms.External == nil || !ownsMetric(name, ms.External.Metric.Name) {
					continue
				}
				m := metricOf(in, ms.External)
				if fallbackDue && m.Replicas != nil && *m.Replicas == *spec.FallbackReplicas {
					m.Fallback = true
				}
				if m.Replicas != nil && (t.Asked == nil || *m.Replicas > *t.Asked) {
					t.Asked = ptr(*m.Replicas)
				}
				t.Metrics = append(t.Metrics, m)
			}
		}
		out = append(out, t)
	}
	return out
}

// ownsMetric: the HPA metric named metric belongs to the trigger named trigger (scalers.MetricName: the
// trigger's name, or the trigger's name, a dot and the metric's).
func ownsMetric(trigger, metric string) bool {
	return metric == trigger || strings.HasPrefix(metric, trigger+".")
}

// metricOf reads one external metric's value: from the metrics API as the HPA asks it, else from what the
// HPA last read (its status).
func metricOf(in Input, ext *autoscalingv2.ExternalMetricSource) TriggerMetric {
	name := ext.Metric.Name
	m := TriggerMetric{Metric: name, Sizing: SizingThreshold}
	target := ext.Target.AverageValue
	if target != nil {
		m.Target = target.String()
	}
	var value *resource.Quantity
	if r, ok := in.Metrics[name]; ok {
		if r.Value != nil {
			value, m.Source = r.Value, "metricsAPI"
			if !r.Time.IsZero() {
				m.ValueTime = ptr(r.Time.UTC())
			}
		}
		m.Error = r.Err
	}
	if value == nil && in.HPA != nil {
		for _, cur := range in.HPA.Status.CurrentMetrics {
			if cur.External == nil || cur.External.Metric.Name != name {
				continue
			}
			switch c := cur.External.Current; {
			case c.Value != nil:
				value = c.Value
			case c.AverageValue != nil:
				v := c.AverageValue.AsApproximateFloat64() * float64(in.HPA.Status.CurrentReplicas)
				value = resource.NewMilliQuantity(int64(math.Round(v*1000)), resource.DecimalSI)
			}
			if value != nil {
				m.Source = "hpaStatus"
			}
		}
	}
	if value == nil {
		return m
	}
	m.Value = value.String()
	if target == nil || target.IsZero() {
		return m
	}
	v, tv := value.AsApproximateFloat64(), target.AsApproximateFloat64()
	ratio := v / tv
	n := int32(min(math.Ceil(ratio-1e-9), math.MaxInt32))
	m.Replicas = ptr(n)
	m.Math = fmt.Sprintf("%s / %s = %s -> %d replicas", value.String(), target.String(), strconv.FormatFloat(ratio, 'f', -1, 64), n)
	if len(m.Math) > 80 {
		m.Math = fmt.Sprintf("%s / %s = %.2f -> %d replicas", value.String(), target.String(), ratio, n)
	}
	return m
}

func guardOf(sc *ebbv1.ScaledConsumer) *Guard {
	c := meta.FindStatusCondition(sc.Status.Conditions, ebbv1.ConditionConsumersHealthy)
	if c == nil {
		return nil
	}
	g := &Guard{Tripped: c.Status == metav1.ConditionFalse, Status: string(c.Status), Reason: c.Reason, Message: c.Message}
	if !c.LastTransitionTime.IsZero() {
		g.Since = ptr(c.LastTransitionTime.UTC())
	}
	if sg := sc.Status.Guard; sg != nil && sg.HeldReplicas != nil {
		g.HeldReplicas = ptr(*sg.HeldReplicas)
	}
	return g
}

func durationOr(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.Duration
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func ptr[T any](v T) *T { return &v }
