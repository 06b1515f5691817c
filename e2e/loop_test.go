package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/controller"
	"github.com/ebbscale/ebb/internal/app"
	"github.com/ebbscale/ebb/internal/dev/devkafka"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/metricsapi"
	"github.com/ebbscale/ebb/metricstore"
	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/builtin"
	"github.com/ebbscale/ebb/scalers/scalertest"
)

// startEbb runs ebb's controller and metrics API server in this process, as `ebb run` does, with the
// given trigger types, and registers the metrics API behind the aggregator.
func startEbb(t *testing.T, env *testenv.Env, reg scalers.Registry) {
	t.Helper()
	store := metricstore.New()
	port := testenv.FreePort(t)
	fs := pflag.NewFlagSet("ebb", pflag.ContinueOnError)
	adapter := metricsapi.NewAdapter(metricsapi.NewProvider(store), fs)
	if err := fs.Parse(metricsapi.LocalFlags(port, t.TempDir(), env.Kubeconfig)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{
			Config:                 env.Config,
			Store:                  store,
			Controller:             true,
			Registry:               reg,
			MetricsBindAddress:     "0",
			HealthProbeBindAddress: "0",
			MetricsAPI:             adapter,
			ControllerMetrics:      controller.NewMetrics(nil),
			SkipNameValidation:     true,
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ebb: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("ebb did not stop within 30s")
		}
	})
	if err := env.RegisterExternalMetrics(t.Context(), port); err != nil {
		t.Fatal(err)
	}
}

// backlog is how a test sets the work a trigger reports.
type backlog interface {
	// trigger is the ScaledConsumer's trigger, with a per-replica target of 10.
	trigger() ebbv1.Trigger
	// set makes the trigger report n.
	set(t *testing.T, n int64)
}

// TestWholeLoop runs the loop on a Kafka consumer group's lag in a three-broker kfake cluster, through the
// ebb binary's own trigger registry.
func TestWholeLoop(t *testing.T) {
	k, err := devkafka.Start(devkafka.Config{Brokers: 3, Topics: map[string]int32{"orders": 10}, NoAutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	b := newKafkaBacklog(t, k)
	runLoop(t, builtin.Registry(builtin.Options{}), b)
}

// TestWholeLoopTestTrigger runs the same loop on the test trigger: the loop without a broker.
func TestWholeLoopTestTrigger(t *testing.T) {
	src := scalertest.New()
	runLoop(t, src.Register(scalers.Registry{}), &testBacklog{src: src, key: testenv.UniqueName(t, "k")})
}

// runLoop: a Deployment at zero; work arrives; ebb wakes it to one; the backlog grows and the HPA controller
// scales it to ceil(backlog/threshold), capped at maxReplicas; the backlog drains; the HPA brings it down
// and ebb, after the cooldown, to zero. Every step is asserted on the Deployment and on the value
// `kubectl get --raw` returns.
func runLoop(t *testing.T, reg scalers.Registry, b backlog) {
	env, ns, replicas := startLoop(t, reg, "loop")
	ctx := t.Context()
	c := env.Client
	b.set(t, 0)
	maxReplicas := int32(5)
	if err := c.Create(ctx, &ebbv1.ScaledConsumer{
		ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: ns},
		Spec: ebbv1.ScaledConsumerSpec{
			ScaleTargetRef:  ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "consumer"},
			MaxReplicas:     &maxReplicas,
			PollingInterval: &metav1.Duration{Duration: 200 * time.Millisecond},
			CooldownPeriod:  &metav1.Duration{Duration: 3 * time.Second},
			Triggers:        []ebbv1.Trigger{b.trigger()},
		},
	}); err != nil {
		t.Fatal(err)
	}

	// step sets the backlog and waits for the metrics API to serve served and the Deployment to reach want.
	tr := b.trigger()
	metric := tr.TriggerName()
	step := func(name string, backlog, served int64, want int32) {
		t.Helper()
		b.set(t, backlog)
		wantValue := resource.NewQuantity(served, resource.DecimalSI)
		deadline := time.Now().Add(60 * time.Second)
		var value string
		var got int32
		var err error
		for time.Now().Before(deadline) {
			value, err = env.RawExternalMetric(t, ns, metric, "orders")
			got = replicas()
			if q, perr := resource.ParseQuantity(value); err == nil && perr == nil && q.Cmp(*wantValue) == 0 && got == want {
				t.Logf("%s: backlog %d, served %s, replicas %d", name, backlog, value, got)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("%s: metrics API says %q (err %v), Deployment has %d replicas; want %s and %d", name, value, err, got, wantValue.String(), want)
	}

	step("idle", 0, 0, 0)
	step("first event wakes it", 3, 3, 1)
	step("backlog grows", 35, 35, 4)         // ceil(35/10)
	step("capped", 1000, served(b, 1000), 5) // maxReplicas
	step("draining", 12, 12, 2)              // ceil(12/10)
	step("drained", 0, 0, 0)                 // HPA down, then ebb to 0 after the 3 s cooldown
}

// startLoop starts a control plane with the HPA controller and ebb with the trigger types of reg, and
// creates a namespace (named after prefix) with the Deployment "consumer" at zero replicas; replicas reads
// the Deployment's spec.replicas.
func startLoop(t *testing.T, reg scalers.Registry, prefix string) (env *testenv.Env, ns string, replicas func() int32) {
	t.Helper()
	env = testenv.Start(t, localcluster.Options{ControllerManager: true})
	startEbb(t, env, reg)
	ctx, c := t.Context(), env.Client
	ns = testenv.UniqueName(t, prefix)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, testenv.Deployment(ns, "consumer", 0)); err != nil {
		t.Fatal(err)
	}
	replicas = func() int32 {
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "consumer"}, d); err != nil {
			t.Fatal(err)
		}
		return *d.Spec.Replicas
	}
	return env, ns, replicas
}

// served is what the metrics API serves for backlog n: Kafka caps lag at partitions x threshold.
func served(b backlog, n int64) int64 {
	if k, ok := b.(*kafkaBacklog); ok {
		return min(n, k.partitions*10)
	}
	return n
}

type testBacklog struct {
	src *scalertest.Source
	key string
}

func (b *testBacklog) trigger() ebbv1.Trigger {
	return ebbv1.Trigger{Name: "backlog", Type: scalertest.Type, Metadata: map[string]string{"key": b.key, "target": "10"}}
}

func (b *testBacklog) set(_ *testing.T, n int64) { b.src.Set(b.key, float64(n)) }

// kafkaBacklog puts lag on the consumer group "workers" of topic "orders": all of it on partition 0, the
// other partitions committed at their (empty) end.
type kafkaBacklog struct {
	addrs      string
	cl         *kgo.Client
	adm        *kadm.Client
	partitions int64
	end        int64 // records produced to partition 0
}

func newKafkaBacklog(t *testing.T, k *kfake.Cluster) *kafkaBacklog {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &kafkaBacklog{addrs: strings.Join(k.ListenAddrs(), ","), cl: cl, adm: kadm.NewClient(cl), partitions: 10}
}

func (b *kafkaBacklog) trigger() ebbv1.Trigger {
	return ebbv1.Trigger{Name: "lag", Type: "kafka", Metadata: map[string]string{
		"bootstrapServers": b.addrs, "consumerGroup": "workers", "topic": "orders", "lagThreshold": "10",
	}}
}

func (b *kafkaBacklog) set(t *testing.T, n int64) {
	t.Helper()
	ctx := t.Context()
	if more := n - b.end; more > 0 {
		recs := make([]*kgo.Record, more)
		for i := range recs {
			recs[i] = &kgo.Record{Topic: "orders", Partition: 0, Value: []byte("order")}
		}
		if err := b.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		b.end = n
	}
	var os kadm.Offsets
	for p := range int32(b.partitions) {
		at := int64(0)
		if p == 0 {
			at = b.end - n
		}
		os.Add(kadm.Offset{Topic: "orders", Partition: p, At: at, LeaderEpoch: -1})
	}
	resp, err := b.adm.CommitOffsets(ctx, "workers", os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
}
