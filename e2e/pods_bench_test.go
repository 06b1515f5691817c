package e2e_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

// wakeRuns is how many times BenchmarkWakeRealPods wakes the consumer from 0.
const wakeRuns = 10

// BenchmarkWakeRealPods times waking a consumer Deployment from 0 with real pods: ebb installed from
// manifests/ as two pods, a ScaledConsumer with pollingInterval 1s on a Kafka topic of the dev broker,
// and the example consumer as the target. Each of wakeRuns runs produces one message when the target is at
// 0 with no pod left (after a random wait within the polling interval, so that the message comes at any
// moment of ebb's poll), and measures from the broker's acknowledgement of that message to
//   - scaled: the Deployment's spec.replicas set to 1 (ebb's poll and its /scale write),
//   - created: the consumer pod created (deployment and replicaset controllers),
//   - scheduled: the pod bound to the node,
//   - running: the pod's phase Running (kubelet, sandbox and container started),
//   - consumed: the message's key in the consumer's results topic (the consumer joined its group,
//     fetched, processed and produced the result),
//
// then waits until ebb scales the target back to 0 after the cooldown and its pod is gone. Pods and the
// Deployment are watched (the first event counts), so the resolution is a watch event's delivery, a few
// milliseconds; the results topic is read with a long-polling fetch. Run it once:
//
//	make bench BENCH=WakeRealPods BENCHTIME=1x
//
// It reports the median (p50) and the largest of each time over the runs, in milliseconds.
func BenchmarkWakeRealPods(b *testing.B) {
	e := startPodsEnv(b, false)
	ctx := b.Context()
	ns := e.newNamespace(b, "wake")
	topic, group, results := ns+"-orders", ns+"-workers", ns+"-done"
	seeds := strings.Split(e.kafka, ",")

	adm, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(adm.Close)
	if _, err := kadm.NewClient(adm).CreateTopics(ctx, 1, 1, nil, topic, results); err != nil {
		b.Fatal(err)
	}
	if err := e.Client.Create(ctx, e.consumerDeployment(ns, map[string]string{
		"CONSUMER_BROKER": "kafka", "CONSUMER_BROKERS": e.kafka, "CONSUMER_TOPIC": topic, "CONSUMER_GROUP": group,
		"CONSUMER_RESULTS": results, "CONSUMER_RATE": "0",
	})); err != nil {
		b.Fatal(err)
	}
	sc := scaledConsumer(ns, ebbv1.Trigger{Name: "lag", Type: "kafka", Metadata: map[string]string{
		"bootstrapServers": e.kafka, "consumerGroup": group, "topic": topic, "lagThreshold": "5", "offsetResetPolicy": "earliest",
	}})
	sc.Spec.MinReplicas = ptr[int32](0)
	sc.Spec.CooldownPeriod = &metav1.Duration{Duration: 3 * time.Second}
	if err := e.Client.Create(ctx, sc); err != nil {
		b.Fatal(err)
	}

	tr := &wakeTracker{}
	go e.watchWake(ctx, ns, tr)
	rcl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(results),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(time.Second))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rcl.Close)
	go func() {
		for ctx.Err() == nil {
			rcl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { tr.consumed(string(r.Key), time.Now()) })
		}
	}()
	pcl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pcl.Close)

	var runs []wakeTimes
	var lines []string
	for i := range wakeRuns {
		e.waitIdle(b, ns, 3*time.Minute)
		// A message arrives at any moment of ebb's polling interval; without this the runs would keep
		// the phase the waiting gives them.
		time.Sleep(rand.N(sc.Spec.PollingInterval.Duration))
		key := fmt.Sprintf("wake-%d", i)
		sent := time.Now()
		tr.arm(key)
		if err := pcl.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: []byte("order")}).FirstErr(); err != nil {
			b.Fatal(err)
		}
		acked := time.Now()
		tr.start(acked)
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
			return tr.done(), nil
		})
		if err != nil {
			e.dumpEbb(b)
			b.Fatalf("run %d: the message was not consumed with a pod Running: %+v", i, tr.times())
		}
		w := tr.times()
		runs = append(runs, w)
		lines = append(lines, fmt.Sprintf("run %d: produce ack %s; scaled %s, created %s, scheduled %s, running %s, consumed %s", i,
			acked.Sub(sent).Round(time.Millisecond), ms(w.scaled), ms(w.created), ms(w.scheduled), ms(w.running), ms(w.consumed)))
	}
	b.StopTimer()
	b.Logf("from the message's acknowledgement:\n%s", strings.Join(lines, "\n"))
	for _, m := range []struct {
		name string
		get  func(wakeTimes) time.Duration
	}{
		{"scaled", func(w wakeTimes) time.Duration { return w.scaled }},
		{"created", func(w wakeTimes) time.Duration { return w.created }},
		{"scheduled", func(w wakeTimes) time.Duration { return w.scheduled }},
		{"running", func(w wakeTimes) time.Duration { return w.running }},
		{"consumed", func(w wakeTimes) time.Duration { return w.consumed }},
	} {
		var ds []time.Duration
		for _, w := range runs {
			ds = append(ds, m.get(w))
		}
		slices.Sort(ds)
		b.ReportMetric(float64(median(ds).Microseconds())/1000, "wake-"+m.name+"-p50-ms")
		b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, "wake-"+m.name+"-max-ms")
	}
	// The work is done once whatever b.N is; ns/op is one whole benchmark and means nothing.
	b.ReportMetric(0, "ns/op")
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

// median of sorted durations: the middle one, or the mean of the middle two.
func median(sorted []time.Duration) time.Duration {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// wakeTimes are the times from the message's acknowledgement to each step of a wake-up.
type wakeTimes struct {
	scaled, created, scheduled, running, consumed time.Duration
}

// wakeTracker records, for the current run, when each step of a wake-up was first seen.
type wakeTracker struct {
	mu    sync.Mutex
	key   string    // the run's message key
	t0    time.Time // the message's acknowledgement; zero until then
	seen  map[string]time.Time
	first wakeTimes
}

// arm starts a run for key; steps seen before start are timed from start.
func (w *wakeTracker) arm(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.key, w.t0, w.seen, w.first = key, time.Time{}, map[string]time.Time{}, wakeTimes{}
}

func (w *wakeTracker) start(t0 time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t0 = t0
}

// step records the first time a step was seen in the armed run.
func (w *wakeTracker) step(name string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen == nil {
		return
	}
	if _, ok := w.seen[name]; !ok {
		w.seen[name] = at
	}
}

func (w *wakeTracker) consumed(key string, at time.Time) {
	w.mu.Lock()
	k := w.key
	w.mu.Unlock()
	if key == k {
		w.step("consumed", at)
	}
}

func (w *wakeTracker) done() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, running := w.seen["running"]
	_, consumed := w.seen["consumed"]
	return !w.t0.IsZero() && running && consumed
}

func (w *wakeTracker) times() wakeTimes {
	w.mu.Lock()
	defer w.mu.Unlock()
	since := func(name string) time.Duration {
		at, ok := w.seen[name]
		if !ok || w.t0.IsZero() {
			return -1
		}
		return max(at.Sub(w.t0), 0)
	}
	return wakeTimes{scaled: since("scaled"), created: since("created"), scheduled: since("scheduled"),
		running: since("running"), consumed: since("consumed")}
}

// watchWake feeds the tracker from watches of the namespace's Deployments and Pods until ctx ends.
func (e *podsEnv) watchWake(ctx context.Context, ns string, tr *wakeTracker) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		watchLoop(ctx, func(ctx context.Context) (watch.Interface, error) {
			return e.Kube.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{})
		}, func(ev watch.Event) {
			if d, ok := ev.Object.(*appsv1.Deployment); ok && d.Spec.Replicas != nil && *d.Spec.Replicas > 0 {
				tr.step("scaled", time.Now())
			}
		})
	}()
	go func() {
		defer wg.Done()
		watchLoop(ctx, func(ctx context.Context) (watch.Interface, error) {
			return e.Kube.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
		}, func(ev watch.Event) {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type == watch.Deleted || p.DeletionTimestamp != nil {
				return
			}
			now := time.Now()
			tr.step("created", now)
			if p.Spec.NodeName != "" {
				tr.step("scheduled", now)
			}
			if p.Status.Phase == corev1.PodRunning {
				tr.step("running", now)
			}
		})
	}()
	wg.Wait()
}

// watchLoop runs a watch and starts it again when the server ends it, until ctx ends.
func watchLoop(ctx context.Context, start func(context.Context) (watch.Interface, error), handle func(watch.Event)) {
	for ctx.Err() == nil {
		w, err := start(ctx)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		for ev := range w.ResultChan() {
			handle(ev)
		}
		w.Stop()
	}
}

// waitIdle waits until the consumer Deployment is at 0 replicas and none of its pods is left.
func (e *podsEnv) waitIdle(t testing.TB, ns string, timeout time.Duration) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		d := &appsv1.Deployment{}
		if err := e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "consumer"}, d); err != nil || *d.Spec.Replicas != 0 {
			return false, nil
		}
		pods := &corev1.PodList{}
		if err := e.Client.List(ctx, pods, client.InNamespace(ns)); err != nil {
			return false, nil
		}
		return len(pods.Items) == 0, nil
	})
	if err != nil {
		e.dumpEbb(t)
		t.Fatalf("the consumer did not go back to 0 with no pod left: %v", err)
	}
}
