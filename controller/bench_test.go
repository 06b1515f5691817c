package controller_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// BenchmarkHPAsForManyScaledConsumers creates 1,000 ScaledConsumers (and their Deployments) against the
// real kube-apiserver and reports the time until every one of them has its HPA, with the controller at
// `ebb run`'s default client limits. Target: under 60 s. Run it with -benchtime=1x.
func BenchmarkHPAsForManyScaledConsumers(b *testing.B) {
	const n = 1000
	for b.Loop() {
		h := newHarness(b)
		// A fast client for the benchmark's own setup, so it measures ebb rather than the setup.
		cfg := rest.CopyConfig(h.env.Config)
		cfg.QPS, cfg.Burst = 2000, 4000
		fast, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
		if err != nil {
			b.Fatal(err)
		}
		h.c = fast
		parallel(b, n, func(i int) error {
			d := h.deploymentObject(fmt.Sprintf("c%04d", i), 1)
			return fast.Create(context.Background(), d)
		})
		for i := range n {
			h.set(fmt.Sprintf("k%04d", i), float64(i%7))
		}
		start := time.Now()
		parallel(b, n, func(i int) error {
			return fast.Create(context.Background(), h.scaledConsumer(fmt.Sprintf("c%04d", i), fmt.Sprintf("c%04d", i), fmt.Sprintf("k%04d", i)))
		})
		created := time.Since(start)
		var got int
		for {
			list := &autoscalingv2.HorizontalPodAutoscalerList{}
			if err := fast.List(context.Background(), list, client.InNamespace(h.ns)); err != nil {
				b.Fatal(err)
			}
			got = len(list.Items)
			if got == n {
				break
			}
			if time.Since(start) > 5*time.Minute {
				b.Fatalf("only %d of %d HPAs after 5 minutes", got, n)
			}
			time.Sleep(100 * time.Millisecond)
		}
		all := time.Since(start)
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(created.Seconds(), "s-to-create")
		b.ReportMetric(all.Seconds(), "s-to-all-HPAs")
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "MiB-heap")
		b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
		h.stop()
	}
}

// parallel runs f(0..n-1) on 32 goroutines and fails b on the first error.
func parallel(b *testing.B, n int, f func(i int) error) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
