package e2e_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/controller"
	"github.com/ebbscale/ebb/internal/dev/devkafka"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers/builtin"
)

// guardEnv is a control plane with the HPA controller, ebb with the binary's trigger types, and one
// namespace with a Deployment "consumer".
type guardEnv struct {
	t  *testing.T
	c  client.Client
	ns string
}

func newGuardEnv(t *testing.T, replicas int32) *guardEnv {
	env := testenv.Start(t, localcluster.Options{ControllerManager: true})
	startEbb(t, env, builtin.Registry(builtin.Options{}))
	g := &guardEnv{t: t, c: env.Client, ns: testenv.UniqueName(t, "guard")}
	if err := g.c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: g.ns}}); err != nil {
		t.Fatal(err)
	}
	if err := g.c.Create(t.Context(), testenv.Deployment(g.ns, "consumer", replicas)); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *guardEnv) replicas() int32 {
	d := &appsv1.Deployment{}
	if err := g.c.Get(context.Background(), types.NamespacedName{Namespace: g.ns, Name: "consumer"}, d); err != nil {
		g.t.Error(err)
		return -1
	}
	return *d.Spec.Replicas
}

func (g *guardEnv) hpaMax() int32 {
	h := &autoscalingv2.HorizontalPodAutoscaler{}
	if err := g.c.Get(context.Background(), types.NamespacedName{Namespace: g.ns, Name: "ebb-orders"}, h); err != nil {
		return -1
	}
	return h.Spec.MaxReplicas
}

func (g *guardEnv) health() *metav1.Condition {
	sc := &ebbv1.ScaledConsumer{}
	if err := g.c.Get(context.Background(), types.NamespacedName{Namespace: g.ns, Name: "orders"}, sc); err != nil {
		g.t.Fatal(err)
	}
	return meta.FindStatusCondition(sc.Status.Conditions, ebbv1.ConditionConsumersHealthy)
}

// waitFor polls cond every 200 ms until it holds, failing with its last message after timeout.
func (g *guardEnv) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	msg := ""
	for time.Now().Before(deadline) {
		var ok bool
		if ok, msg = cond(); ok {
			g.t.Logf("%s: %s", what, msg)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	g.t.Fatalf("%s: not after %s: %s", what, timeout, msg)
}

func (g *guardEnv) waitHealth(timeout time.Duration, status metav1.ConditionStatus, reason string) {
	g.t.Helper()
	g.waitFor(timeout, "ConsumersHealthy="+string(status)+" "+reason, func() (bool, string) {
		c := g.health()
		if c == nil {
			return false, "no ConsumersHealthy condition"
		}
		return c.Status == status && c.Reason == reason, fmt.Sprintf("%s %s: %s (replicas %d)", c.Status, c.Reason, c.Message, g.replicas())
	})
}

// holds checks, for d, that the Deployment stays at want replicas and the HPA's maxReplicas at want,
// while more is true (the backlog asks for more replicas than that).
func (g *guardEnv) holds(d time.Duration, want int32, more func() (bool, string)) {
	g.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if got, hi := g.replicas(), g.hpaMax(); got != want || hi != want {
			g.t.Fatalf("while the guard holds: %d replicas and HPA maxReplicas %d, want both %d", got, hi, want)
		}
		if ok, msg := more(); !ok {
			g.t.Fatalf("the backlog should ask for more than %d replicas: %s", want, msg)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// rabbitConsumers plays the consumer Deployment: one consumer per replica on the queue, each finishing
// one message per perMessage, rejecting every message (RabbitMQ dead-letters it) while failing is set.
type rabbitConsumers struct {
	conn       *amqp.Connection
	queue      string
	perMessage time.Duration
	failing    atomic.Bool
}

func (rc *rabbitConsumers) run(ctx context.Context, t *testing.T, replicas func() int32) {
	var running []context.CancelFunc
	var wg sync.WaitGroup
	defer func() {
		for _, c := range running {
			c()
		}
		wg.Wait()
	}()
	for ctx.Err() == nil {
		want := int(max(replicas(), 0))
		for len(running) < want {
			cctx, cancel := context.WithCancel(ctx)
			running = append(running, cancel)
			wg.Go(func() { rc.consume(cctx, t) })
		}
		for len(running) > want {
			running[len(running)-1]()
			running = running[:len(running)-1]
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (rc *rabbitConsumers) consume(ctx context.Context, t *testing.T) {
	ch, err := rc.conn.Channel()
	if err == nil {
		defer func() { _ = ch.Close() }()
		err = ch.Qos(1, 0, false)
	}
	if err != nil {
		if ctx.Err() == nil {
			t.Error(err)
		}
		return
	}
	deliveries, err := ch.ConsumeWithContext(ctx, rc.queue, "", false, false, false, false, nil)
	if err != nil {
		if ctx.Err() == nil { // not stopped meanwhile (a scale-down, or the end of the test)
			t.Error(err)
		}
		return
	}
	// Keep reading deliveries until the channel is closed: amqp091-go hands every frame of the connection
	// to its consumers in turn, so a delivery nobody takes would stop the channel's close-ok (and every
	// other channel's frames) from arriving, and the deferred Close above would wait forever. Seen: a
	// scale-down and the test's end hung for 19 minutes.
	defer func() {
		go func() {
			for range deliveries { //nolint:revive // drained, the deliveries are requeued at Close
			}
		}()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case d, ok := <-deliveries:
			if !ok {
				return
			}
			time.Sleep(rc.perMessage)
			if rc.failing.Load() {
				_ = d.Nack(false, false)
			} else {
				_ = d.Ack(false)
			}
		}
	}
}

// Consumers that reject every message fill the dead-letter queue; the guard trips and the replicas stop
// growing though the backlog grows; once the consumers are fixed the guard releases and the HPA scales up.
// Real RabbitMQ, real HPA controller.
func TestGuardDeadLetterRabbitMQ(t *testing.T) {
	amqpURL, httpURL := testenv.RabbitMQURL, testenv.RabbitMQHTTPURL
	for _, u := range []string{amqpURL, httpURL} {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		testenv.RequireTCP(t, "RabbitMQ", pu.Host, "hack/ensure-rabbitmq.sh")
	}
	g := newGuardEnv(t, 1)
	ctx := t.Context()
	queue := testenv.UniqueName(t, "work")
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		name string
		args amqp.Table
	}{{queue + ".dlq", nil}, {queue, amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue + ".dlq"}}} {
		if _, err := ch.QueueDeclare(q.name, false, false, false, false, q.args); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if c, err := amqp.Dial(amqpURL); err == nil {
			if dch, err := c.Channel(); err == nil {
				_, _ = dch.QueueDelete(queue, false, false, false)
				_, _ = dch.QueueDelete(queue+".dlq", false, false, false)
			}
			_ = c.Close()
		}
	})

	// The management API's URL (with its credentials) goes in a TriggerAuthentication.
	if err := g.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rabbit", Namespace: g.ns}, StringData: map[string]string{"host": httpURL}}); err != nil {
		t.Fatal(err)
	}
	if err := g.c.Create(ctx, &ebbv1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "rabbit", Namespace: g.ns},
		Spec: ebbv1.TriggerAuthenticationSpec{SecretTargetRef: []ebbv1.SecretTargetRef{{Parameter: "host", Name: "rabbit", Key: "host"}}}}); err != nil {
		t.Fatal(err)
	}
	perMinute := resource.MustParse("60")
	auth := &ebbv1.AuthenticationRef{Name: "rabbit"}
	if err := g.c.Create(ctx, &ebbv1.ScaledConsumer{
		ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: g.ns},
		Spec: ebbv1.ScaledConsumerSpec{
			ScaleTargetRef:  ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "consumer"},
			MinReplicas:     ptr[int32](1),
			MaxReplicas:     ptr[int32](8),
			PollingInterval: &metav1.Duration{Duration: 500 * time.Millisecond},
			Triggers: []ebbv1.Trigger{{Name: "depth", Type: "rabbitmq", AuthenticationRef: auth,
				Metadata: map[string]string{"queueName": queue, "mode": "QueueLength", "value": "10"}}},
			DeadLetter: &ebbv1.DeadLetter{Type: "rabbitmq", AuthenticationRef: auth, Metadata: map[string]string{"queueName": queue + ".dlq"},
				MaxInflowPerMinute: &perMinute, Window: &metav1.Duration{Duration: 5 * time.Second}},
			Guard: &ebbv1.Guard{ReleaseAfter: &metav1.Duration{Duration: 5 * time.Second}},
		},
	}); err != nil {
		t.Fatal(err)
	}

	// Consumers: 10 messages a second each, failing. A producer at rate messages a second.
	rc := &rabbitConsumers{conn: conn, queue: queue, perMessage: 100 * time.Millisecond}
	rc.failing.Store(true)
	var rate atomic.Int64
	rate.Store(5)
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { rc.run(runCtx, t, g.replicas) })
	wg.Go(func() {
		pch, err := conn.Channel()
		if err != nil {
			t.Error(err)
			return
		}
		for runCtx.Err() == nil {
			_ = pch.PublishWithContext(runCtx, "", queue, false, false, amqp.Publishing{Body: []byte("order")})
			select {
			case <-runCtx.Done():
			case <-time.After(time.Second / time.Duration(rate.Load())):
			}
		}
	})
	t.Cleanup(func() { stop(); wg.Wait() })

	depth := func() (bool, string) {
		dch, err := conn.Channel() // a failed passive declare closes its channel
		if err != nil {
			return false, err.Error()
		}
		defer func() { _ = dch.Close() }()
		q, err := dch.QueueDeclarePassive(queue, false, false, false, false, nil)
		if err != nil {
			return false, err.Error()
		}
		return q.Messages > 30, fmt.Sprintf("%d messages ready", q.Messages)
	}

	// 5 messages a second, all rejected: 300 a minute into the dead-letter queue, over the limit of 60.
	g.waitHealth(60*time.Second, metav1.ConditionFalse, controller.ReasonDeadLetterInflow)
	if c := g.health(); !strings.Contains(c.Message, "holding scale-up at 1 replicas") {
		t.Errorf("tripped message = %q, want it to hold at 1", c.Message)
	}
	// The backlog grows past what one replica should face (30 > 10); the replicas stay at 1.
	rate.Store(40)
	g.waitFor(30*time.Second, "backlog grows", depth)
	g.holds(8*time.Second, 1, depth)

	// Fixed: the consumers acknowledge. The dead-letter inflow falls (RabbitMQ averages it over 15 s), the
	// guard releases 5 s later, and the HPA scales up on the backlog.
	rc.failing.Store(false)
	g.waitHealth(90*time.Second, metav1.ConditionTrue, controller.ReasonHealthy)
	g.waitFor(60*time.Second, "the HPA scales up again", func() (bool, string) {
		n, hi := g.replicas(), g.hpaMax()
		return n >= 3 && hi == 8, fmt.Sprintf("%d replicas, HPA maxReplicas %d", n, hi)
	})
}

// A Kafka group with lag whose committed offsets stop moving is stalled: the guard trips and replicas
// stop growing though the lag grows; once commits move again it releases and the HPA scales up.
func TestGuardStalledKafka(t *testing.T) {
	k, err := devkafka.Start(devkafka.Config{Brokers: 3, Topics: map[string]int32{"orders": 10}, NoAutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	g := newGuardEnv(t, 1)
	ctx := t.Context()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)

	// The group's lag is all on partition 0: end - committed.
	var end, committed int64
	produce := func(n int64) {
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = &kgo.Record{Topic: "orders", Partition: 0, Value: []byte("order")}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		end += n
	}
	commit := func(at int64) {
		var os kadm.Offsets
		for p := range int32(10) {
			o := int64(0)
			if p == 0 {
				o = at
			}
			os.Add(kadm.Offset{Topic: "orders", Partition: p, At: o, LeaderEpoch: -1})
		}
		resp, err := adm.CommitOffsets(ctx, "workers", os)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Error(err)
		}
		committed = at
	}
	produce(15)
	commit(0)

	if err := g.c.Create(ctx, &ebbv1.ScaledConsumer{
		ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: g.ns},
		Spec: ebbv1.ScaledConsumerSpec{
			ScaleTargetRef:  ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "consumer"},
			MinReplicas:     ptr[int32](1),
			MaxReplicas:     ptr[int32](8),
			PollingInterval: &metav1.Duration{Duration: 500 * time.Millisecond},
			Triggers: []ebbv1.Trigger{{Name: "lag", Type: "kafka", Metadata: map[string]string{
				"bootstrapServers": strings.Join(k.ListenAddrs(), ","), "consumerGroup": "workers", "topic": "orders", "lagThreshold": "10"}}},
			Guard: &ebbv1.Guard{StalledAfterPolls: ptr[int32](6), ReleaseAfter: &metav1.Duration{Duration: 5 * time.Second}},
		},
	}); err != nil {
		t.Fatal(err)
	}

	// Healthy consumers: every 400 ms 10 more records arrive and the group commits 10 more; the lag
	// stays near 15 and the HPA gives 2 replicas.
	var mu sync.Mutex
	step := int64(10) // what the committer commits per round; 0 while wedged
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for runCtx.Err() == nil {
			mu.Lock()
			if step > 0 {
				produce(10)
				commit(min(committed+step, end))
			}
			mu.Unlock()
			select {
			case <-runCtx.Done():
			case <-time.After(400 * time.Millisecond):
			}
		}
	})
	t.Cleanup(func() { stop(); wg.Wait() })
	g.waitHealth(30*time.Second, metav1.ConditionTrue, controller.ReasonHealthy)
	g.waitFor(30*time.Second, "2 replicas on a lag near 15", func() (bool, string) { return g.replicas() == 2, fmt.Sprintf("%d replicas", g.replicas()) })

	// Wedged: no commit moves while the lag stays; after 6 polls the group is stalled.
	mu.Lock()
	step = 0
	mu.Unlock()
	g.waitHealth(30*time.Second, metav1.ConditionFalse, controller.ReasonStalled)
	if c := g.health(); !strings.Contains(c.Message, "holding scale-up at 2 replicas") || !strings.Contains(c.Message, `trigger "lag"`) {
		t.Errorf("stalled message = %q", c.Message)
	}
	// The lag grows to 80 (8 replicas' worth); the replicas stay at 2.
	mu.Lock()
	produce(80 - (end - committed))
	mu.Unlock()
	lagAbove := func(n int64) func() (bool, string) {
		return func() (bool, string) {
			mu.Lock()
			defer mu.Unlock()
			return end-committed > n, fmt.Sprintf("lag %d", end-committed)
		}
	}
	g.holds(6*time.Second, 2, lagAbove(50))

	// Commits move again, 2 per round: the lag stays high, the group is no longer stalled; the guard
	// releases after 5 s and the HPA scales up on the lag.
	mu.Lock()
	step = 2
	mu.Unlock()
	g.waitHealth(60*time.Second, metav1.ConditionTrue, controller.ReasonHealthy)
	g.waitFor(60*time.Second, "the HPA scales up again", func() (bool, string) {
		n, hi := g.replicas(), g.hpaMax()
		return n >= 5 && hi == 8, fmt.Sprintf("%d replicas, HPA maxReplicas %d", n, hi)
	})
}

func ptr[T any](v T) *T { return &v }
