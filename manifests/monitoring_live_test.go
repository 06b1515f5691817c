package manifests_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/controller"
	"github.com/ebbscale/ebb/internal/dev/devkafka"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// TestMonitoringMetricsAreExported runs the ebb binary (`ebb run`, leader-elected) against a real
// kube-apiserver with the HPA controller, drives the situations that create its series — a Kafka trigger
// with lag that wakes its target (scale action, HPA, broker requests, metrics API answers) and one whose
// cluster goes away (trigger errors, failed broker requests, stale values served) — and checks that every
// metric the dashboard and the alert rules query is on its live /metrics, with the labels they match on.
func TestMonitoringMetricsAreExported(t *testing.T) {
	env := testenv.Start(t, localcluster.Options{ControllerManager: true})
	ctx := t.Context()
	healthy, err := devkafka.Start(devkafka.Config{Brokers: 2, Topics: map[string]int32{"orders": 4, "stuck": 1, "stuck.dlq": 1}, NoAutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(healthy.Close)
	doomed, err := devkafka.Start(devkafka.Config{Topics: map[string]int32{"events": 1}, NoAutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	doomedClosed := false
	t.Cleanup(func() {
		if !doomedClosed {
			doomed.Close()
		}
	})

	port := testenv.FreePort(t)
	ebb := startEbb(t, "run", "--kubeconfig="+env.Kubeconfig, "--leader-elect", "--leader-election-namespace=default",
		"--secure-port="+strconv.Itoa(port), "--bind-address=127.0.0.1", "--cert-dir="+t.TempDir())
	if err := env.RegisterExternalMetrics(ctx, port); err != nil {
		t.Fatalf("registering ebb's metrics API: %v", err)
	}

	ns := testenv.UniqueName(t, "monitoring")
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	// "orders": lag 25 at a target of 10 on a Deployment at zero; ebb wakes it and the HPA wants 3.
	lag(t, healthy, "orders", "workers", 4, 25)
	deployment(t, env, ns, "orders", 0)
	scaledConsumer(t, env, ns, "orders", 0, ebbv1.Trigger{Name: "lag", Type: "kafka", Metadata: map[string]string{
		"bootstrapServers": strings.Join(healthy.ListenAddrs(), ","), "consumerGroup": "workers", "topic": "orders", "lagThreshold": "10"}},
		func(s *ebbv1.ScaledConsumerSpec) { s.Guard = &ebbv1.Guard{Enabled: ptr(false)} })
	// "orders" keeps the guard off: its group never commits, and the guard would hold its HPA wherever it
	// happened to be when it found the group stalled. "stuck" is for the guard: a group with lag that does
	// not move on a running target (stalled after 2 polls), and a dead-letter topic (depth, inflow, ratio).
	lag(t, healthy, "stuck", "stuck", 1, 5)
	lag(t, healthy, "stuck.dlq", "unused", 1, 7)
	deployment(t, env, ns, "stuck", 1)
	brokers := strings.Join(healthy.ListenAddrs(), ",")
	scaledConsumer(t, env, ns, "stuck", 1, ebbv1.Trigger{Name: "lag", Type: "kafka", Metadata: map[string]string{
		"bootstrapServers": brokers, "consumerGroup": "stuck", "topic": "stuck", "lagThreshold": "10"}},
		func(s *ebbv1.ScaledConsumerSpec) {
			ratio, inflow := resource.MustParse("0.5"), resource.MustParse("100")
			s.DeadLetter = &ebbv1.DeadLetter{Type: "kafka", Metadata: map[string]string{"bootstrapServers": brokers, "topic": "stuck.dlq"},
				MaxRatio: &ratio, MaxInflowPerMinute: &inflow}
			s.Guard = &ebbv1.Guard{StalledAfterPolls: ptr[int32](2)}
		})
	// "broken": sampled once, then its cluster goes away. No fallback, so its last value goes stale and is
	// served as such to its HPA (which asks: the target runs one replica).
	lag(t, doomed, "events", "idle", 1, 0)
	deployment(t, env, ns, "broken", 1)
	scaledConsumer(t, env, ns, "broken", 1, ebbv1.Trigger{Name: "events", Type: "kafka", Metadata: map[string]string{
		"bootstrapServers": strings.Join(doomed.ListenAddrs(), ","), "consumerGroup": "idle", "topic": "events"}})
	waitFor(t, 60*time.Second, `ebb did not sample "broken"`, func() (bool, string) {
		v, ok := ebb.scrape(t).value("ebb_trigger_value", map[string]string{"namespace": ns, "scaledconsumer": "broken"})
		return ok && v == 0, fmt.Sprintf("ebb_trigger_value of broken: %v (present: %v)", v, ok)
	})
	doomed.Close()
	doomedClosed = true

	// What the dashboard and the alerts query.
	wanted := map[string][]string{} // metric -> where
	for _, q := range monitoringQueries(t) {
		sels, err := selectors(q.expr)
		if err != nil {
			t.Fatalf("%s: %v", q.where, err)
		}
		for _, s := range sels {
			wanted[s.metric] = append(wanted[s.metric], q.where)
		}
	}
	labelsWanted := map[string][]string{} // metric -> labels matched on
	for _, q := range monitoringQueries(t) {
		sels, _ := selectors(q.expr)
		for _, s := range sels {
			for _, l := range s.labels {
				if !slices.Contains(labelsWanted[s.metric], l) {
					labelsWanted[s.metric] = append(labelsWanted[s.metric], l)
				}
			}
		}
	}

	// Every queried metric appears, with every label a query matches on. The HPA controller and a stale
	// value take a few seconds; the rest is there after the first ticks.
	var last exposition
	waitFor(t, 90*time.Second, "metrics the dashboard or the alerts query are missing from ebb's /metrics", func() (bool, string) {
		last = ebb.scrape(t)
		var missing []string
		for metric, where := range wanted {
			labels, ok := last.labels(metric)
			if !ok {
				missing = append(missing, fmt.Sprintf("%s (used by %s)", metric, strings.Join(where, "; ")))
				continue
			}
			for _, l := range labelsWanted[metric] {
				if !labels[l] {
					missing = append(missing, fmt.Sprintf("%s has no series with label %q that a query matches on", metric, l))
				}
			}
		}
		// Counted against the real loop, not only named: the values the dashboard's top row shows.
		for _, c := range []struct {
			metric string
			labels map[string]string
			want   float64
		}{
			{"ebb_trigger_value", map[string]string{"namespace": ns, "scaledconsumer": "orders"}, 25},
			{"ebb_trigger_target", map[string]string{"namespace": ns, "scaledconsumer": "orders"}, 10},
			{"ebb_hpa_desired_replicas", map[string]string{"namespace": ns, "scaledconsumer": "orders"}, 3},
			{"ebb_scale_actions_total", map[string]string{"namespace": ns, "scaledconsumer": "orders", "reason": controller.ReasonActivated}, 1},
			{"ebb_scaledconsumer_max_replicas", map[string]string{"namespace": ns, "scaledconsumer": "orders"}, 100},
			{"ebb_guard_tripped", map[string]string{"namespace": ns, "scaledconsumer": "stuck"}, 1},
			{"ebb_guard_trips_total", map[string]string{"namespace": ns, "scaledconsumer": "stuck", "reason": controller.ReasonStalled}, 1},
			{"ebb_deadletter_depth", map[string]string{"namespace": ns, "scaledconsumer": "stuck"}, 7},
		} {
			if got, ok := last.value(c.metric, c.labels); got != c.want {
				missing = append(missing, fmt.Sprintf("%s%v = %v (present: %v), want %v", c.metric, c.labels, got, ok, c.want))
			}
		}
		if got, _ := last.value("ebb_trigger_consecutive_failures", map[string]string{"namespace": ns, "scaledconsumer": "broken"}); got < 1 {
			missing = append(missing, fmt.Sprintf("ebb_trigger_consecutive_failures of broken = %v, want failures counted", got))
		}
		slices.Sort(missing)
		return len(missing) == 0, strings.Join(missing, "\n")
	})

	// Every ebb_* metric on /metrics is documented.
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range last {
		if strings.HasPrefix(name, "ebb_") && !bytes.Contains(doc, []byte("`"+name+"`")) {
			t.Errorf("docs/metrics.md does not document %s", name)
		}
	}
	for name := range definedMetrics(t) {
		if !bytes.Contains(doc, []byte("`"+name+"`")) {
			t.Errorf("docs/metrics.md does not document %s", name)
		}
	}
}

// exposition is a parsed /metrics page, by family name.
type exposition map[string]*dto.MetricFamily

// family returns the family a queried name belongs to: a histogram's _bucket, _sum and _count series
// are its own.
func (e exposition) family(name string) (*dto.MetricFamily, string, bool) {
	if f, ok := e[name]; ok {
		return f, "", true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f, ok := e[base]; ok && (f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY) {
				return f, suffix, true
			}
		}
	}
	return nil, "", false
}

// labels returns the label names the series of a queried name carry, and whether it has any series.
func (e exposition) labels(name string) (map[string]bool, bool) {
	f, suffix, ok := e.family(name)
	if !ok || len(f.GetMetric()) == 0 {
		return nil, false
	}
	out := map[string]bool{}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			out[l.GetName()] = true
		}
	}
	if suffix == "_bucket" {
		out["le"] = true
	}
	return out, true
}

// value sums the series of a counter or gauge whose labels include match.
func (e exposition) value(name string, match map[string]string) (float64, bool) {
	f, ok := e[name]
	if !ok {
		return 0, false
	}
	sum, found := 0.0, false
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		matches := true
		for k, v := range match {
			matches = matches && labels[k] == v
		}
		if matches {
			found = true
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return sum, found
}

// definedMetrics returns the names of every metric controller.NewMetrics defines, series or not.
func definedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	m := reflect.ValueOf(controller.NewMetrics(nil)).Elem()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	out := map[string]bool{}
	for i := range m.NumField() {
		c, ok := m.Field(i).Interface().(prometheus.Collector)
		if !ok {
			continue
		}
		descs := make(chan *prometheus.Desc, 4)
		go func() {
			c.Describe(descs)
			close(descs)
		}()
		for d := range descs {
			if sm := fqName.FindStringSubmatch(d.String()); sm != nil {
				out[sm[1]] = true
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("found no metrics in controller.Metrics")
	}
	return out
}

// ebbProcess is a running ebb binary.
type ebbProcess struct{ *testenv.EbbProcess }

// startEbb runs the ebb binary with args and its own free ports (testenv.StartEbb).
func startEbb(t *testing.T, args ...string) *ebbProcess {
	t.Helper()
	return &ebbProcess{testenv.StartEbb(t, args...)}
}

// scrape reads and parses /metrics; an unreachable endpoint is an empty exposition.
func (p *ebbProcess) scrape(t *testing.T) exposition {
	t.Helper()
	resp, err := http.Get(p.MetricsURL + "/metrics")
	if err != nil {
		return exposition{}
	}
	defer func() { _ = resp.Body.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s/metrics: %v", p.MetricsURL, err)
	}
	return families
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	msg := ""
	for time.Now().Before(deadline) {
		var ok bool
		if ok, msg = cond(); ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("after %s: %s:\n%s", timeout, what, msg)
}

// lag commits group at offset 0 on every partition of topic, after producing n records to partition 0.
func lag(t *testing.T, k *kfake.Cluster, topic, group string, partitions int32, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Partition: 0, Value: []byte("event")}
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var offsets kadm.Offsets
	for p := range partitions {
		offsets.Add(kadm.Offset{Topic: topic, Partition: p, At: 0, LeaderEpoch: -1})
	}
	resp, err := kadm.NewClient(cl).CommitOffsets(t.Context(), group, offsets)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
}

func deployment(t *testing.T, env *testenv.Env, ns, name string, replicas int32) {
	t.Helper()
	if err := env.Client.Create(t.Context(), testenv.Deployment(ns, name, replicas)); err != nil {
		t.Fatal(err)
	}
}

func scaledConsumer(t *testing.T, env *testenv.Env, ns, name string, minReplicas int32, trigger ebbv1.Trigger, mods ...func(*ebbv1.ScaledConsumerSpec)) {
	t.Helper()
	sc := &ebbv1.ScaledConsumer{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: ebbv1.ScaledConsumerSpec{
			ScaleTargetRef:  ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:     &minReplicas,
			PollingInterval: &metav1.Duration{Duration: 500 * time.Millisecond},
			Triggers:        []ebbv1.Trigger{trigger},
		},
	}
	for _, m := range mods {
		m(&sc.Spec)
	}
	if err := env.Client.Create(t.Context(), sc); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }
