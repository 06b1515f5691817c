package metricsapi_test

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/ebbscale/ebb/metricsapi"
	"github.com/ebbscale/ebb/metricstore"
)

func TestProvider(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	st := metricstore.New()
	set := func(ns, sc, metric string, v float64) {
		st.Set(metricstore.Key{Namespace: ns, ScaledConsumer: sc, Metric: metric}, metricstore.Entry{Value: v, Time: now})
	}
	set("shop", "orders", "lag", 1234)
	set("shop", "orders", "depth", 0.25)
	set("shop", "payments", "lag", 7)
	set("other", "orders", "lag", 99)
	set("shop", "broken", "lag", math.NaN())
	set("shop", "negative", "lag", -5)
	set("shop", "huge", "lag", 1e300)
	p := metricsapi.NewProvider(st)

	tests := []struct {
		name, namespace, metric, selector string
		want                              string // the served quantity
		wantErr                           func(error) bool
	}{
		{name: "value", namespace: "shop", metric: "lag", selector: "ebb.dev/scaledconsumer=orders", want: "1234"},
		{name: "fraction", namespace: "shop", metric: "depth", selector: "ebb.dev/scaledconsumer=orders", want: "250m"},
		{name: "other-scaledconsumer", namespace: "shop", metric: "lag", selector: "ebb.dev/scaledconsumer=payments", want: "7"},
		{name: "namespaces-apart", namespace: "other", metric: "lag", selector: "ebb.dev/scaledconsumer=orders", want: "99"},
		{name: "extra-labels-ignored", namespace: "shop", metric: "lag", selector: "ebb.dev/scaledconsumer=orders,team=a", want: "1234"},
		{name: "nan-served-as-zero", namespace: "shop", metric: "lag", selector: "ebb.dev/scaledconsumer=broken", want: "0"},
		{name: "negative-served-as-zero", namespace: "shop", metric: "lag", selector: "ebb.dev/scaledconsumer=negative", want: "0"},
		{name: "huge-capped", namespace: "shop", metric: "lag", selector: "ebb.dev/scaledconsumer=huge", want: "9223372036854775807m"},
		{name: "unknown-metric", namespace: "shop", metric: "nope", selector: "ebb.dev/scaledconsumer=orders", wantErr: apierrors.IsNotFound},
		{name: "unknown-scaledconsumer", namespace: "shop", metric: "lag", selector: "ebb.dev/scaledconsumer=ghost", wantErr: apierrors.IsNotFound},
		{name: "wrong-namespace", namespace: "nowhere", metric: "lag", selector: "ebb.dev/scaledconsumer=orders", wantErr: apierrors.IsNotFound},
		{name: "no-selector", namespace: "shop", metric: "lag", selector: "", wantErr: apierrors.IsBadRequest},
		{name: "set-selector", namespace: "shop", metric: "lag", selector: "ebb.dev/scaledconsumer in (orders,payments)", wantErr: apierrors.IsBadRequest},
		{name: "other-label", namespace: "shop", metric: "lag", selector: "app=orders", wantErr: apierrors.IsBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.GetExternalMetric(t.Context(), tc.namespace, selector(t, tc.selector), provider.ExternalMetricInfo{Metric: tc.metric})
			if tc.wantErr != nil {
				if !tc.wantErr(err) {
					t.Errorf("error = %v, want the other kind", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Items) != 1 {
				t.Fatalf("got %d items, want 1", len(got.Items))
			}
			it := got.Items[0]
			if it.Value.String() != tc.want || !it.Timestamp.Time.Equal(now) || it.MetricName != tc.metric {
				t.Errorf("got %s=%s at %v, want %s=%s at %v", it.MetricName, it.Value.String(), it.Timestamp, tc.metric, tc.want, now)
			}
		})
	}

	var names []string
	for _, i := range p.ListAllExternalMetrics() {
		names = append(names, i.Metric)
	}
	if diff := cmp.Diff(names, []string{"depth", "lag"}); diff != "" {
		t.Errorf("ListAllExternalMetrics (-got +want):\n%s", diff)
	}
}

func TestProviderStale(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	ptr := func(v float64) *float64 { return &v }
	tests := []struct {
		name       string
		age        time.Duration // of the sample at request time
		staleAfter time.Duration
		fallback   *float64
		want       string // the served quantity
		wantLog    string // stale: what follows the message in the one line logged
	}{
		{name: "fresh", age: 5 * time.Second, staleAfter: 15 * time.Second, want: "1234"},
		{name: "fresh-with-fallback", age: 5 * time.Second, staleAfter: 15 * time.Second, fallback: ptr(200), want: "1234"},
		{name: "at-staleAfter-still-fresh", age: 15 * time.Second, staleAfter: 15 * time.Second, fallback: ptr(200), want: "1234"},
		{name: "never-stale-without-staleAfter", age: time.Hour, want: "1234"},
		{name: "stale-without-fallback", age: 30 * time.Second, staleAfter: 15 * time.Second, want: "1234",
			wantLog: `namespace="shop" scaledconsumer="orders" metric="lag" age="30s" staleAfter="15s" fallback=false value=1234`},
		{name: "stale-with-fallback", age: 30 * time.Second, staleAfter: 15 * time.Second, fallback: ptr(200), want: "200",
			wantLog: `namespace="shop" scaledconsumer="orders" metric="lag" age="30s" staleAfter="15s" fallback=true value=200`},
		{name: "stale-with-fractional-fallback", age: 1500 * time.Millisecond, staleAfter: time.Second, fallback: ptr(0.5), want: "500m",
			wantLog: `namespace="shop" scaledconsumer="orders" metric="lag" age="1.5s" staleAfter="1s" fallback=true value=0.5`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sampled := now.Add(-tc.age)
			st := metricstore.New()
			st.Set(metricstore.Key{Namespace: "shop", ScaledConsumer: "orders", Metric: "lag"},
				metricstore.Entry{Value: 1234, Time: sampled, StaleAfter: tc.staleAfter, Fallback: tc.fallback})
			reg := prometheus.NewPedanticRegistry()
			p := metricsapi.NewProviderWithOptions(st, metricsapi.Options{Clock: clocktesting.NewFakePassiveClock(now), Registerer: reg})
			var logs bytes.Buffer
			ctx := klog.NewContext(t.Context(), textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(&logs), textlogger.WithHeader(false))))

			got, err := p.GetExternalMetric(ctx, "shop", selector(t, "ebb.dev/scaledconsumer=orders"), provider.ExternalMetricInfo{Metric: "lag"})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Items) != 1 {
				t.Fatalf("got %d items, want 1", len(got.Items))
			}
			it := got.Items[0]
			if diff := cmp.Diff(it.Value.String(), tc.want); diff != "" {
				t.Errorf("value (-got +want):\n%s", diff)
			}
			if !it.Timestamp.Time.Equal(sampled) {
				t.Errorf("timestamp = %v, want the sample's, %v", it.Timestamp.Time, sampled)
			}

			want := map[string]float64{
				`ebb_metricsapi_requests_total{code="ok",metric="lag"}`:       1,
				`ebb_metricsapi_request_duration_seconds_count{metric="lag"}`: 1,
				`ebb_metricsapi_request_duration_seconds_sum{metric="lag"}`:   0, // the fake clock stands still
				`ebb_metricsapi_value_age_seconds_count`:                      1,
				`ebb_metricsapi_value_age_seconds_sum`:                        tc.age.Seconds(),
			}
			var wantLogs []string
			if tc.wantLog != "" {
				want[`ebb_metricsapi_stale_values_total{metric="lag"}`] = 1
				wantLogs = []string{`"serving a stale external metric value; its trigger has not been sampled recently" ` + tc.wantLog}
			}
			if diff := cmp.Diff(gather(t, reg), want); diff != "" {
				t.Errorf("metrics (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(lines(logs.String()), wantLogs); diff != "" {
				t.Errorf("logs (-got +want):\n%s", diff)
			}
		})
	}
}

// TestProviderStaleLogged checks that every stale answer is counted but each ScaledConsumer's metric is
// logged at most once a minute.
func TestProviderStaleLogged(t *testing.T) {
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	st := metricstore.New()
	for _, sc := range []string{"orders", "payments"} {
		st.Set(metricstore.Key{Namespace: "shop", ScaledConsumer: sc, Metric: "lag"},
			metricstore.Entry{Value: 7, Time: start.Add(-time.Minute), StaleAfter: 15 * time.Second})
	}
	clk := clocktesting.NewFakePassiveClock(start)
	reg := prometheus.NewPedanticRegistry()
	p := metricsapi.NewProviderWithOptions(st, metricsapi.Options{Clock: clk, Registerer: reg})
	var logs bytes.Buffer
	ctx := klog.NewContext(t.Context(), textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(&logs), textlogger.WithHeader(false))))

	steps := []struct {
		after time.Duration // since start
		sc    string
	}{
		{after: 0, sc: "orders"}, // logged
		{after: 15 * time.Second, sc: "orders"},
		{after: 30 * time.Second, sc: "payments"}, // another key: logged
		{after: 59 * time.Second, sc: "orders"},
		{after: 60 * time.Second, sc: "orders"}, // a minute on: logged again
		{after: 61 * time.Second, sc: "payments"},
	}
	for _, s := range steps {
		clk.SetTime(start.Add(s.after))
		if _, err := p.GetExternalMetric(ctx, "shop", selector(t, "ebb.dev/scaledconsumer="+s.sc), provider.ExternalMetricInfo{Metric: "lag"}); err != nil {
			t.Fatal(err)
		}
	}

	var got []string
	for _, l := range lines(logs.String()) {
		// Keep who and how old; the rest of the line is checked by TestProviderStale.
		var kept []string
		for _, f := range strings.Fields(l) {
			if strings.HasPrefix(f, "scaledconsumer=") || strings.HasPrefix(f, "age=") {
				kept = append(kept, f)
			}
		}
		got = append(got, strings.Join(kept, " "))
	}
	want := []string{
		`scaledconsumer="orders" age="1m0s"`,
		`scaledconsumer="payments" age="1m30s"`,
		`scaledconsumer="orders" age="2m0s"`,
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("logged (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(gather(t, reg)[`ebb_metricsapi_stale_values_total{metric="lag"}`], 6.0); diff != "" {
		t.Errorf("ebb_metricsapi_stale_values_total (-got +want):\n%s", diff)
	}
}

func TestProviderRequestMetrics(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	st := metricstore.New()
	st.Set(metricstore.Key{Namespace: "shop", ScaledConsumer: "orders", Metric: "lag"}, metricstore.Entry{Value: 1, Time: now.Add(-2 * time.Second)})
	st.Set(metricstore.Key{Namespace: "shop", ScaledConsumer: "orders", Metric: "depth"}, metricstore.Entry{Value: 1, Time: now.Add(-3 * time.Second)})
	reg := prometheus.NewPedanticRegistry()
	p := metricsapi.NewProviderWithOptions(st, metricsapi.Options{Clock: clocktesting.NewFakePassiveClock(now), Registerer: reg})

	requests := []struct{ metric, selector string }{
		{metric: "lag", selector: "ebb.dev/scaledconsumer=orders"},
		{metric: "lag", selector: "ebb.dev/scaledconsumer=orders"},
		{metric: "depth", selector: "ebb.dev/scaledconsumer=orders"},
		{metric: "lag", selector: "ebb.dev/scaledconsumer=ghost"},      // not found
		{metric: "nope", selector: "ebb.dev/scaledconsumer=orders"},    // not found; served by no one, counted as _unknown
		{metric: "lag", selector: "app=orders"},                        // bad request
		{metric: "lag", selector: ""},                                  // bad request
		{metric: "lag\x80", selector: "ebb.dev/scaledconsumer=orders"}, // not found; not UTF-8 and served by no one: _unknown
	}
	for _, r := range requests {
		_, _ = p.GetExternalMetric(t.Context(), "shop", selector(t, r.selector), provider.ExternalMetricInfo{Metric: r.metric})
	}

	want := map[string]float64{
		`ebb_metricsapi_requests_total{code="ok",metric="lag"}`:             2,
		`ebb_metricsapi_requests_total{code="ok",metric="depth"}`:           1,
		`ebb_metricsapi_requests_total{code="not_found",metric="lag"}`:      1,
		`ebb_metricsapi_requests_total{code="not_found",metric="_unknown"}`: 2,
		`ebb_metricsapi_requests_total{code="bad_request",metric="lag"}`:    2,
		`ebb_metricsapi_request_duration_seconds_count{metric="lag"}`:       5,
		`ebb_metricsapi_request_duration_seconds_sum{metric="lag"}`:         0,
		`ebb_metricsapi_request_duration_seconds_count{metric="depth"}`:     1,
		`ebb_metricsapi_request_duration_seconds_sum{metric="depth"}`:       0,
		`ebb_metricsapi_request_duration_seconds_count{metric="_unknown"}`:  2,
		`ebb_metricsapi_request_duration_seconds_sum{metric="_unknown"}`:    0,
		`ebb_metricsapi_value_age_seconds_count`:                            3, // served values only
		`ebb_metricsapi_value_age_seconds_sum`:                              2 + 2 + 3,
	}
	if diff := cmp.Diff(gather(t, reg), want); diff != "" {
		t.Errorf("metrics (-got +want):\n%s", diff)
	}

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		t.Errorf("promlint: %s: %s", pr.Metric, pr.Text)
	}
}

func selector(t *testing.T, s string) labels.Selector {
	t.Helper()
	l, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// gather flattens what g holds into name{labels} -> value: counters by value, histograms by _count and
// _sum.
func gather(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			suffix := ""
			if len(ls) > 0 {
				suffix = "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[mf.GetName()+suffix] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[mf.GetName()+"_count"+suffix] = float64(m.GetHistogram().GetSampleCount())
				out[mf.GetName()+"_sum"+suffix] = m.GetHistogram().GetSampleSum()
			default:
				t.Fatalf("%s: only counters and histograms are expected", mf.GetName())
			}
		}
	}
	return out
}

func lines(s string) []string {
	var out []string
	for l := range strings.Lines(s) {
		out = append(out, strings.TrimSuffix(l, "\n"))
	}
	return out
}
