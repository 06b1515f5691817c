package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/internal/app"
	"github.com/ebbscale/ebb/internal/dev/ebbinstall"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// TestPods is the whole loop as users run it: ebb's image, installed with kubectl apply -k from its own
// manifests under the generated RBAC, two replicas and one leader, serving the external metrics API from a
// pod; consumers that are real pods, woken from 0 by a burst, scaled by the real HPA, draining the backlog
// with nothing lost, and returned to 0; and the leader pod deleted mid-run without the target ever going
// to 0 while a backlog remains.
func TestPods(t *testing.T) {
	e := startPodsEnv(t, true)
	e.checkInstall(t)

	t.Run("kafka", e.testKafka)
	t.Run("rabbitmq", e.testRabbitMQ)
}

// watchReplicas samples the target's replicas and Running pods every 200 ms until stop is called, and
// records the lowest replica count seen while backlog() was above 0 and the most pods Running at once.
type replicaWatch struct {
	mu             sync.Mutex
	minWithBacklog int32
	maxRunning     int
	stop           func()
	done           chan struct{}
}

func (e *podsEnv) watchReplicas(t *testing.T, ns string, backlog func() int64) *replicaWatch {
	ctx, cancel := context.WithCancel(t.Context())
	w := &replicaWatch{minWithBacklog: 1 << 30, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			d := &appsv1.Deployment{}
			if err := e.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "consumer"}, d); err == nil {
				pods := &corev1.PodList{}
				_ = e.Client.List(ctx, pods, client.InNamespace(ns))
				running := 0
				for _, p := range pods.Items {
					if p.Status.Phase == corev1.PodRunning {
						running++
					}
				}
				b := backlog()
				w.mu.Lock()
				if b > 0 && *d.Spec.Replicas < w.minWithBacklog && w.maxRunning > 0 {
					w.minWithBacklog = *d.Spec.Replicas
				}
				if running > w.maxRunning {
					w.maxRunning = running
				}
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

func (w *replicaWatch) result() (minWithBacklog int32, maxRunning int) {
	w.stop()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.minWithBacklog, w.maxRunning
}

// waitReplicas waits for the target's spec.replicas to satisfy ok.
func (e *podsEnv) waitReplicas(t *testing.T, ns, what string, timeout time.Duration, ok func(int32) bool) {
	t.Helper()
	var got int32 = -1
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		d := &appsv1.Deployment{}
		if err := e.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "consumer"}, d); err != nil {
			return false, nil
		}
		got = *d.Spec.Replicas
		return ok(got), nil
	})
	if err != nil {
		e.dumpEbb(t)
		t.Fatalf("%s: consumer has %d replicas: %v", what, got, err)
	}
}

func (e *podsEnv) testKafka(t *testing.T) {
	ctx := t.Context()
	ns := e.newNamespace(t, "kafka")
	topic, group, results := ns+"-orders", ns+"-workers", ns+"-done"
	const n = 1200
	if err := e.Client.Create(ctx, e.consumerDeployment(ns, map[string]string{
		"CONSUMER_BROKER": "kafka", "CONSUMER_BROKERS": e.kafka, "CONSUMER_TOPIC": topic, "CONSUMER_GROUP": group,
		"CONSUMER_RESULTS": results, "CONSUMER_RATE": "40",
	})); err != nil {
		t.Fatal(err)
	}
	if err := e.Client.Create(ctx, scaledConsumer(ns, ebbv1.Trigger{Name: "lag", Type: "kafka", Metadata: map[string]string{
		"bootstrapServers": e.kafka, "consumerGroup": group, "topic": topic, "lagThreshold": "50", "offsetResetPolicy": "earliest",
	}})); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(e.kafka, ",")...), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	// Results are read from the start, all along, counting distinct keys.
	seen := newKeySet()
	rcl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(e.kafka, ",")...), kgo.ConsumeTopics(results),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rcl.Close)
	readCtx, stopRead := context.WithCancel(ctx)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for readCtx.Err() == nil {
			rcl.PollFetches(readCtx).EachRecord(func(r *kgo.Record) { seen.add(string(r.Key)) })
		}
	}()
	t.Cleanup(func() { stopRead(); <-readDone })

	w := e.watchReplicas(t, ns, func() int64 { return n - int64(seen.len()) })
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: fmt.Appendf(nil, "order-%d", i), Value: []byte("order")}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	e.waitReplicas(t, ns, "woken by the burst", time.Minute, func(r int32) bool { return r >= 1 })
	e.waitReplicas(t, ns, "scaled out by the HPA", time.Minute, func(r int32) bool { return r >= 2 })

	// The leader goes away mid-run: the other replica takes over within the lease duration (15 s) plus a
	// retry period, and the HPA keeps getting values.
	leader := e.leader(t, 10*time.Second)
	if err := e.Client.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ebbinstall.Namespace, Name: leader}}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	next := e.waitNewLeader(t, leader, 30*time.Second)
	t.Logf("leader %s deleted; %s took over after %s", leader, next, time.Since(deleted).Round(100*time.Millisecond))
	// The HPA keeps getting values: ebb's metrics API answers through the aggregator from the pod that is
	// left (and the new one), and the HPA reads them (ScalingActive True, with a current value).
	var lastErr error
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if _, lastErr = e.RawExternalMetric(t, ns, "lag", "consumer"); lastErr != nil {
			return false, nil
		}
		hpa := &autoscalingv2.HorizontalPodAutoscaler{}
		if lastErr = e.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "ebb-consumer"}, hpa); lastErr != nil {
			return false, nil
		}
		for _, c := range hpa.Status.Conditions {
			if c.Type == autoscalingv2.ScalingActive {
				lastErr = fmt.Errorf("HPA ScalingActive=%s %s: %s", c.Status, c.Reason, c.Message)
				return c.Status == corev1.ConditionTrue && len(hpa.Status.CurrentMetrics) > 0, nil
			}
		}
		lastErr = fmt.Errorf("HPA has no ScalingActive condition yet")
		return false, nil
	})
	if err != nil {
		e.dumpEbb(t)
		t.Fatalf("after the failover the HPA does not get values: %v: %v", lastErr, err)
	}

	e.drained(t, ns, "kafka", n, seen, w)
}

// drained waits until all n messages were consumed (n distinct keys in seen) and the consumer is back at 0,
// then checks what w saw meanwhile: never 0 replicas while a backlog remained, and 2 or more pods at once.
func (e *podsEnv) drained(t *testing.T, ns, broker string, n int, seen *keySet, w *replicaWatch) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 500*time.Millisecond, 4*time.Minute, true, func(context.Context) (bool, error) {
		return seen.len() == n, nil
	})
	if err != nil {
		e.dumpEbb(t)
		t.Fatalf("consumed %d distinct messages of %d: %v", seen.len(), n, err)
	}
	e.waitReplicas(t, ns, "back to zero after the cooldown", 2*time.Minute, func(r int32) bool { return r == 0 })
	minWithBacklog, maxRunning := w.result()
	if minWithBacklog == 0 {
		t.Errorf("the consumer went to 0 replicas while a backlog remained")
	}
	if maxRunning < 2 {
		t.Errorf("at most %d consumer pods ran at once, want 2 or more", maxRunning)
	}
	t.Logf("%s: %d messages consumed at least once each; up to %d pods Running at once", broker, n, maxRunning)
}

func (e *podsEnv) waitNewLeader(t *testing.T, old string, timeout time.Duration) string {
	t.Helper()
	var holder string
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		l := &coordinationv1.Lease{}
		if err := e.Client.Get(ctx, types.NamespacedName{Namespace: ebbinstall.Namespace, Name: app.DefaultLeaderElectionID}, l); err != nil || l.Spec.HolderIdentity == nil {
			return false, nil
		}
		holder, _, _ = strings.Cut(*l.Spec.HolderIdentity, "_")
		return holder != "" && holder != old, nil
	})
	if err != nil {
		e.dumpEbb(t)
		t.Fatalf("no new leader within %s of deleting %s (holder %q): %v", timeout, old, holder, err)
	}
	return holder
}

func (e *podsEnv) testRabbitMQ(t *testing.T) {
	ctx := t.Context()
	ns := e.newNamespace(t, "rabbit")
	queue, results := ns+"-orders", ns+"-done"
	const n = 800
	conn, err := amqp.Dial(testenv.RabbitMQURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{queue, results} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if c, err := amqp.Dial(testenv.RabbitMQURL); err == nil {
			if dch, err := c.Channel(); err == nil {
				_, _ = dch.QueueDelete(queue, false, false, false)
				_, _ = dch.QueueDelete(results, false, false, false)
			}
			_ = c.Close()
		}
	})
	if err := e.Client.Create(ctx, e.consumerDeployment(ns, map[string]string{
		"CONSUMER_BROKER": "rabbitmq", "CONSUMER_URL": e.rabbitURL, "CONSUMER_QUEUE": queue,
		"CONSUMER_RESULTS": results, "CONSUMER_RATE": "40",
	})); err != nil {
		t.Fatal(err)
	}
	if err := e.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rabbit", Namespace: ns}, StringData: map[string]string{"host": e.rabbitURL}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Client.Create(ctx, &ebbv1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "rabbit", Namespace: ns},
		Spec: ebbv1.TriggerAuthenticationSpec{SecretTargetRef: []ebbv1.SecretTargetRef{{Parameter: "host", Name: "rabbit", Key: "host"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Client.Create(ctx, scaledConsumer(ns, ebbv1.Trigger{Name: "depth", Type: "rabbitmq", AuthenticationRef: &ebbv1.AuthenticationRef{Name: "rabbit"},
		Metadata: map[string]string{"queueName": queue, "mode": "QueueLength", "value": "50"}})); err != nil {
		t.Fatal(err)
	}

	seen := newKeySet()
	deliveries, err := ch.Consume(results, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for d := range deliveries {
			seen.add(d.MessageId)
		}
	}()
	w := e.watchReplicas(t, ns, func() int64 { return n - int64(seen.len()) })
	pch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := pch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		conf, err := pch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false,
			amqp.Publishing{MessageId: fmt.Sprintf("order-%d", i), Body: []byte("order"), DeliveryMode: amqp.Persistent})
		if err != nil {
			t.Fatal(err)
		}
		if i == n-1 {
			if ok, err := conf.WaitContext(ctx); !ok || err != nil {
				t.Fatalf("publish not confirmed: %v", err)
			}
		}
	}
	e.waitReplicas(t, ns, "woken by the burst", time.Minute, func(r int32) bool { return r >= 1 })
	e.waitReplicas(t, ns, "scaled out by the HPA", time.Minute, func(r int32) bool { return r >= 2 })
	e.drained(t, ns, "rabbitmq", n, seen, w)
}
