package metricsapi_test

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
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

	sel := func(s string) labels.Selector {
		l, err := labels.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
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
			got, err := p.GetExternalMetric(t.Context(), tc.namespace, sel(tc.selector), provider.ExternalMetricInfo{Metric: tc.metric})
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
