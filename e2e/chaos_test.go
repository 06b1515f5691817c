package e2e_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// The chaos suite (chaos_*_test.go) breaks one real part at a time under a backlog (a broker, the control
// plane, ebb itself) and checks, in every scenario, with one watcher: the target never goes below what
// the backlog needs (never to zero while backlog remains) and never above maxReplicas. Each scenario times
// its transitions and logs them as "chaos timing: ..." lines, which docs/reliability.md quotes; the
// timings are asserted only loosely (tens of seconds), so the suite passes on a busy machine.

// Every chaos ScaledConsumer has one trigger with a per-replica target of chaosThreshold, maxReplicas
// chaosMax and a 500 ms polling interval.
const (
	chaosThreshold = 10
	chaosMax       = int32(5)
	chaosPoll      = 500 * time.Millisecond
)

// chaosBroker is how a scenario sets the work a trigger reports, on a broker it can break.
type chaosBroker interface {
	// trigger is the ScaledConsumer's trigger, with a per-replica target of chaosThreshold.
	trigger() ebbv1.Trigger
	// set makes the broker report n; it fails while the broker is down.
	set(ctx context.Context, n int64) error
}

// workload is the backlog of one scenario and the consumers that work it off: every tick they take
// perReplica messages per second per replica of the Deployment, as pods would, unless paused (their
// broker is down too, or the scenario holds the backlog still). It knows the backlog at every moment, which is what the watcher checks against.
type workload struct {
	b          chaosBroker
	perReplica float64
	paused     atomic.Bool

	backlog atomic.Int64 // read by the watcher without waiting for a broker
	mu      sync.Mutex   // serialises changes to the backlog
	owed    float64      // consumed but not yet a whole message
}

// setBacklog sets the backlog at once, retrying while the broker refuses, for up to a minute.
func (w *workload) setBacklog(t *testing.T, n int64) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		err = w.b.set(ctx, n)
		cancel()
		if err == nil {
			w.backlog.Store(n)
			w.owed = 0
			return
		}
	}
	t.Fatalf("setting the backlog to %d: %v", n, err)
}

// current is the backlog now.
func (w *workload) current() int64 { return w.backlog.Load() }

// consume runs the consumers until ctx ends; replicas reads the Deployment's spec.replicas.
func (w *workload) consume(ctx context.Context, replicas func(context.Context) (int32, error)) {
	const tick = 500 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(tick):
		}
		if w.paused.Load() {
			continue
		}
		r, err := replicas(ctx)
		if err != nil {
			continue
		}
		w.mu.Lock()
		w.owed += float64(r) * w.perReplica * tick.Seconds()
		if take, b := int64(w.owed), w.backlog.Load(); take > 0 && b > 0 {
			n := max(b-take, 0)
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if w.b.set(sctx, n) == nil {
				w.owed -= float64(b - n)
				w.backlog.Store(n)
			}
			cancel()
		} else if b == 0 {
			w.owed = 0
		}
		w.mu.Unlock()
	}
}

// need is the replica count a backlog asks for: ceil(backlog/threshold), capped at chaosMax.
func need(backlog int64) int32 {
	return int32(min(math.Ceil(float64(backlog)/chaosThreshold), float64(chaosMax)))
}

// chaosTarget is a namespace with a Deployment "consumer" and a ScaledConsumer "orders" scaling it.
type chaosTarget struct {
	t  *testing.T
	c  client.Client // every request times out after 3 s, so a frozen API server does not hang a poll
	ns string
}

// newChaosTarget creates the namespace and the Deployment at zero replicas. cfg is the cluster's client
// configuration.
func newChaosTarget(t *testing.T, cfg *rest.Config, prefix string) *chaosTarget {
	t.Helper()
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = 3 * time.Second
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ct := &chaosTarget{t: t, c: c, ns: testenv.UniqueName(t, prefix)}
	if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ct.ns}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(t.Context(), testenv.Deployment(ct.ns, "consumer", 0)); err != nil {
		t.Fatal(err)
	}
	return ct
}

// scaledConsumer creates the ScaledConsumer "orders" with tr, the chaos bounds and cooldown; fallback
// replicas when fallback > 0.
func (ct *chaosTarget) scaledConsumer(tr ebbv1.Trigger, cooldown time.Duration, fallback int32) {
	ct.t.Helper()
	maxReplicas := chaosMax
	sc := &ebbv1.ScaledConsumer{
		ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: ct.ns},
		Spec: ebbv1.ScaledConsumerSpec{
			ScaleTargetRef:  ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "consumer"},
			MaxReplicas:     &maxReplicas,
			PollingInterval: &metav1.Duration{Duration: chaosPoll},
			CooldownPeriod:  &metav1.Duration{Duration: cooldown},
			Triggers:        []ebbv1.Trigger{tr},
		},
	}
	if fallback > 0 {
		sc.Spec.Fallback = &ebbv1.Fallback{FailureThreshold: 3, Replicas: fallback}
	}
	if err := ct.c.Create(ct.t.Context(), sc); err != nil {
		ct.t.Fatal(err)
	}
}

// replicas reads the Deployment's spec.replicas.
func (ct *chaosTarget) replicas(ctx context.Context) (int32, error) {
	d := &appsv1.Deployment{}
	if err := ct.c.Get(ctx, types.NamespacedName{Namespace: ct.ns, Name: "consumer"}, d); err != nil {
		return 0, err
	}
	return *d.Spec.Replicas, nil
}

// fallback is the ScaledConsumer's Fallback condition ("" before it has one, or when it cannot be read).
func (ct *chaosTarget) fallback() (reason, message string) {
	sc := &ebbv1.ScaledConsumer{}
	if err := ct.c.Get(ct.t.Context(), types.NamespacedName{Namespace: ct.ns, Name: "orders"}, sc); err != nil {
		return "", err.Error()
	}
	c := meta.FindStatusCondition(sc.Status.Conditions, ebbv1.ConditionFallback)
	if c == nil {
		return "", "no Fallback condition"
	}
	return c.Reason, c.Message
}

// waitFallback waits until the Fallback condition's reason is one of reasons and returns how long that took.
func (ct *chaosTarget) waitFallback(timeout time.Duration, reasons ...string) time.Duration {
	ct.t.Helper()
	var last string
	d := waitUntil(ct.t, timeout, "Fallback condition "+strings.Join(reasons, " or "), func() (bool, string) {
		r, m := ct.fallback()
		last = r + ": " + m
		for _, want := range reasons {
			if r == want {
				return true, last
			}
		}
		return false, last
	})
	ct.t.Logf("Fallback condition: %s", last)
	return d
}

// waitReplicas waits until the Deployment asks for want replicas and returns how long that took.
func (ct *chaosTarget) waitReplicas(timeout time.Duration, want int32) time.Duration {
	ct.t.Helper()
	return waitUntil(ct.t, timeout, fmt.Sprintf("%d replicas", want), func() (bool, string) {
		got, err := ct.replicas(ct.t.Context())
		return err == nil && got == want, fmt.Sprintf("replicas %d (err %v)", got, err)
	})
}

// waitUntil polls cond every 200 ms until it holds and returns how long that took; after timeout it fails
// the test with cond's last message.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	msg := ""
	for time.Since(start) < timeout {
		var ok bool
		if ok, msg = cond(); ok {
			return time.Since(start).Round(100 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %s", what, timeout, msg)
	return 0
}

// timing logs one measured transition of a scenario for docs/reliability.md.
func timing(t *testing.T, what string, d time.Duration) {
	t.Helper()
	t.Logf("chaos timing: %s: %s", what, d.Round(100*time.Millisecond))
}

// invariant watches a chaosTarget every 200 ms from its start (once the target first reached what the
// backlog needs) until the test ends, and fails the test when
// the Deployment goes above chaosMax or its HPA's maxReplicas does, when it is at zero while backlog
// remains, or when it is scaled down below what the backlog needed over the last five seconds (the HPA
// acts on samples a few seconds old), or below allowed() when that is lower (fallback replicas during an
// outage with fallback configured).
type invariant struct {
	ct      *chaosTarget
	w       *workload
	allowed atomic.Int32

	mu         sync.Mutex
	violations []string
	polls      int
	failures   int // polls the API server did not answer (a frozen control plane)
}

// watchInvariant starts the watcher; it stops and reports when the test ends.
func watchInvariant(ct *chaosTarget, w *workload) *invariant {
	inv := &invariant{ct: ct, w: w}
	inv.allowed.Store(chaosMax)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		inv.run(ctx)
	}()
	ct.t.Cleanup(func() {
		cancel()
		<-done
		inv.mu.Lock()
		defer inv.mu.Unlock()
		ct.t.Logf("invariant watcher: %d polls, %d unanswered, %d violations", inv.polls, inv.failures, len(inv.violations))
		for i, v := range inv.violations {
			if i == 10 {
				ct.t.Errorf("... and %d more", len(inv.violations)-i)
				break
			}
			ct.t.Errorf("invariant broken: %s", v)
		}
	})
	return inv
}

func (inv *invariant) run(ctx context.Context) {
	type needAt struct {
		at   time.Time
		need int32
	}
	var recent []needAt
	prev := int32(-1)
	for ctx.Err() == nil {
		backlog := inv.w.current()
		now := time.Now()
		recent = append(recent, needAt{now, need(backlog)})
		for len(recent) > 1 && now.Sub(recent[0].at) > 5*time.Second {
			recent = recent[1:]
		}
		floor := inv.allowed.Load()
		for _, n := range recent {
			floor = min(floor, n.need)
		}
		r, err := inv.ct.replicas(ctx)
		hpa := &autoscalingv2.HorizontalPodAutoscaler{}
		herr := inv.ct.c.Get(ctx, types.NamespacedName{Namespace: inv.ct.ns, Name: "ebb-orders"}, hpa)
		inv.mu.Lock()
		inv.polls++
		if err != nil {
			inv.failures++
		} else {
			stamp := now.Format("15:04:05.0")
			switch {
			case r > chaosMax:
				inv.violations = append(inv.violations, fmt.Sprintf("%s: %d replicas, above maxReplicas %d", stamp, r, chaosMax))
			case r == 0 && backlog > 0:
				inv.violations = append(inv.violations, fmt.Sprintf("%s: 0 replicas with a backlog of %d", stamp, backlog))
			case prev >= 0 && r < prev && r < floor:
				inv.violations = append(inv.violations, fmt.Sprintf("%s: scaled down from %d to %d replicas; the backlog (%d now) needed at least %d", stamp, prev, r, backlog, floor))
			}
			prev = r
		}
		if herr == nil && hpa.Spec.MaxReplicas > chaosMax {
			inv.violations = append(inv.violations, fmt.Sprintf("HPA maxReplicas %d above %d", hpa.Spec.MaxReplicas, chaosMax))
		}
		inv.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// startWork creates the ScaledConsumer with a backlog of backlog on b, waits until the target reaches what
// it needs, then starts the consumers and the invariant watcher; it logs how long the wake-up took.
func startWork(t *testing.T, ct *chaosTarget, b chaosBroker, backlog int64, cooldown time.Duration, fallback int32) (*workload, *invariant) {
	t.Helper()
	w := &workload{b: b, perReplica: 0.5}
	w.setBacklog(t, backlog)
	ct.scaledConsumer(b.trigger(), cooldown, fallback)
	timing(t, "ScaledConsumer created with a backlog -> target at the replicas it needs", ct.waitReplicas(2*time.Minute, need(backlog)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.consume(ctx, ct.replicas)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w, watchInvariant(ct, w)
}
