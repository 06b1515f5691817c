package controller_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// BenchmarkIdleRequests creates 1,000 idle ScaledConsumers (Deployments at zero, triggers reading 0,
// polled every 5 s, the controller at `ebb run`'s defaults: StatusRefresh 30 s, client limits 100/200;
// Recheck at 30 s instead of 5 minutes, so the minute counted holds two rechecks of each) against the real
// kube-apiserver and HPA controller, lets them settle (every ScaledConsumer Ready and not Active, every
// HPA synced by the HPA controller), and reports the requests per second ebb's controller
// sends kube-apiserver in the following minute, in total and by verb and resource (watches left out: they
// are held open, not repeated). Target: 0. Run it with -benchtime=1x.
func BenchmarkIdleRequests(b *testing.B) {
	const (
		n      = 1000
		window = time.Minute
	)
	for b.Loop() {
		counter := &requestCounter{}
		h := newHarness(b, withRequestCounter(counter), func(h *harness) { h.statusRefresh, h.recheck = 0, 30*time.Second })
		cfg := rest.CopyConfig(h.env.Config)
		cfg.QPS, cfg.Burst = 2000, 4000
		fast, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
		if err != nil {
			b.Fatal(err)
		}
		parallel(b, n, func(i int) error {
			return fast.Create(context.Background(), h.deploymentObject(fmt.Sprintf("c%04d", i), 0))
		})
		for i := range n {
			h.set(fmt.Sprintf("k%04d", i), 0)
		}
		parallel(b, n, func(i int) error {
			sc := h.scaledConsumer(fmt.Sprintf("c%04d", i), fmt.Sprintf("c%04d", i), fmt.Sprintf("k%04d", i))
			sc.Spec.PollingInterval = &metav1.Duration{Duration: 5 * time.Second}
			return fast.Create(context.Background(), sc)
		})
		start := time.Now()
		for {
			list := &ebbv1.ScaledConsumerList{}
			if err := fast.List(context.Background(), list, client.InNamespace(h.ns)); err != nil {
				b.Fatal(err)
			}
			idle := 0
			for _, sc := range list.Items {
				if meta.IsStatusConditionTrue(sc.Status.Conditions, ebbv1.ConditionReady) &&
					meta.IsStatusConditionFalse(sc.Status.Conditions, ebbv1.ConditionActive) {
					idle++
				}
			}
			hpas := &autoscalingv2.HorizontalPodAutoscalerList{}
			if err := fast.List(context.Background(), hpas, client.InNamespace(h.ns)); err != nil {
				b.Fatal(err)
			}
			synced := 0
			for _, hpa := range hpas.Items {
				if hpa.Status.ObservedGeneration != nil && *hpa.Status.ObservedGeneration == hpa.Generation {
					synced++
				}
			}
			if idle == n && synced == n {
				break
			}
			if time.Since(start) > 5*time.Minute {
				b.Fatalf("after 5 minutes, %d of %d ScaledConsumers Ready and not Active, %d HPAs synced by the HPA controller", idle, n, synced)
			}
			time.Sleep(time.Second)
		}
		// A whole StatusRefresh period to settle, then count.
		time.Sleep(30 * time.Second)
		counter.take()
		time.Sleep(window)
		got := withoutWatches(counter.take())
		b.Logf("requests in %s of steady state with %d idle ScaledConsumers:\n%s", window, n, formatCounts(got))
		total := 0
		for _, k := range slices.Sorted(maps.Keys(got)) {
			total += got[k]
			b.ReportMetric(float64(got[k])/window.Seconds(), strings.ReplaceAll(k, " ", ":")+"-req/s")
		}
		b.ReportMetric(float64(total)/window.Seconds(), "req/s")
		h.stop()
	}
}
