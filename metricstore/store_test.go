package metricstore_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ebbscale/ebb/metricstore"
)

func TestStoreForget(t *testing.T) {
	st := metricstore.New()
	for _, k := range []metricstore.Key{
		{Namespace: "shop", ScaledConsumer: "orders", Metric: "lag"},
		{Namespace: "shop", ScaledConsumer: "orders", Metric: "old"},
		{Namespace: "shop", ScaledConsumer: "payments", Metric: "old"},
	} {
		st.Set(k, metricstore.Entry{Value: 1})
	}
	st.Forget("shop", "orders", "lag")
	if _, ok := st.Get(metricstore.Key{Namespace: "shop", ScaledConsumer: "orders", Metric: "old"}); ok {
		t.Error("a removed trigger's metric is still served")
	}
	for _, k := range []metricstore.Key{{Namespace: "shop", ScaledConsumer: "orders", Metric: "lag"}, {Namespace: "shop", ScaledConsumer: "payments", Metric: "old"}} {
		if _, ok := st.Get(k); !ok {
			t.Errorf("%v was dropped", k)
		}
	}
	st.Forget("shop", "orders")
	if diff := cmp.Diff(st.MetricNames(), []string{"old"}); diff != "" {
		t.Errorf("after deleting orders (-got +want):\n%s", diff)
	}
}
