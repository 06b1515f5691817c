package metricsapi_test

import (
	"math"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/metricsapi"
	"github.com/ebbscale/ebb/metricstore"
)

// FuzzGetExternalMetric answers an HPA's query with a fuzzed label selector (as kube-apiserver parses it
// from the request's labelSelector), namespace and metric, from a store that holds a fuzzed value for
// the ScaledConsumer the selector names (when present is true). Whatever the input: no panic; a selector
// that does not name one ScaledConsumer is Bad Request quoting it; an unknown key is Not Found; a known
// one gives one item, labelled with the ScaledConsumer, whose quantity is the value to the milli, 0 for
// NaN and negative values, capped at the largest milli-quantity; and the selector printed and parsed again
// gets the same answer.
func FuzzGetExternalMetric(f *testing.F) {
	for _, sel := range []string{"ebb.dev/scaledconsumer=orders", "ebb.dev/scaledconsumer==orders,team=a", "ebb.dev/scaledconsumer in (orders)",
		"ebb.dev/scaledconsumer in (orders,payments)", "ebb.dev/scaledconsumer!=orders", "ebb.dev/scaledconsumer", "!ebb.dev/scaledconsumer",
		"", "app=orders", "ebb.dev/scaledconsumer=orders,ebb.dev/scaledconsumer=payments", "ebb.dev/scaledconsumer=", "x>1"} {
		f.Add(sel, "shop", "lag", true, 1234.5)
	}
	f.Add("ebb.dev/scaledconsumer=orders", "shop", "lag.depth", true, math.NaN())
	f.Add("ebb.dev/scaledconsumer=orders", "shop", "lag", true, -0.0004)
	f.Add("ebb.dev/scaledconsumer=orders", "shop", "lag", true, 9.3e15)
	f.Add("ebb.dev/scaledconsumer=orders", "shop", "lag", true, math.Inf(1))
	f.Add("ebb.dev/scaledconsumer=orders", "shop", "lag", false, 1.0)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, selector, namespace, metric string, present bool, value float64) {
		sel, err := labels.Parse(selector)
		if err != nil {
			return // kube-apiserver answers Bad Request before the provider is asked
		}
		st := metricstore.New()
		name, exact := sel.RequiresExactMatch(ebbv1.ScaledConsumerLabel)
		if present && exact {
			st.Set(metricstore.Key{Namespace: namespace, ScaledConsumer: name, Metric: metric}, metricstore.Entry{Value: value, Time: now})
		}
		p := metricsapi.NewProviderWithOptions(st, metricsapi.Options{Clock: clocktesting.NewFakePassiveClock(now)})
		info := provider.ExternalMetricInfo{Metric: metric}
		list, err := p.GetExternalMetric(t.Context(), namespace, sel, info)
		switch {
		case !exact || name == "":
			if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), ebbv1.ScaledConsumerLabel) {
				t.Fatalf("selector %q names no ScaledConsumer, but the answer is %v, %v", selector, list, err)
			}
		case !present:
			if !apierrors.IsNotFound(err) {
				t.Fatalf("selector %q names ScaledConsumer %q, which has no values, but the answer is %v, %v", selector, name, list, err)
			}
		default:
			if err != nil || len(list.Items) != 1 {
				t.Fatalf("selector %q names ScaledConsumer %q, which has a value, but the answer is %v, %v", selector, name, list, err)
			}
			item := list.Items[0]
			if item.MetricName != metric || item.MetricLabels[ebbv1.ScaledConsumerLabel] != name || !item.Timestamp.Time.Equal(now) {
				t.Fatalf("item %+v for metric %q of ScaledConsumer %q at %s", item, metric, name, now)
			}
			if got, want := item.Value.MilliValue(), wantMilli(value); got != want {
				t.Fatalf("value %v is served as %s (%dm), want %dm", value, item.Value.String(), got, want)
			}
		}

		// The selector as kube-apiserver would print it, parsed again, selects the same.
		again, err2 := labels.Parse(sel.String())
		if err2 != nil {
			t.Fatalf("selector %q prints as %q, which does not parse: %v", selector, sel.String(), err2)
		}
		list2, err2 := p.GetExternalMetric(t.Context(), namespace, again, info)
		if (err == nil) != (err2 == nil) || (err == nil && list2.Items[0].Value.Cmp(list.Items[0].Value) != 0) {
			t.Fatalf("selector %q and its printed form %q get different answers: %v, %v and %v, %v", selector, sel.String(), list, err, list2, err2)
		}
	})
}

// wantMilli is the quantity, in thousandths, served for v.
func wantMilli(v float64) int64 {
	switch {
	case math.IsNaN(v) || v < 0:
		return 0
	case v*1000 >= math.MaxInt64:
		return math.MaxInt64
	}
	return int64(math.Round(v * 1000))
}
