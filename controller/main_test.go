package controller_test

import (
	"context"
	"fmt"
	"github.com/go-logr/logr/funcr"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/controller"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/metricstore"
	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/scalertest"
)

// cluster is one control plane (kube-apiserver, etcd, and kube-controller-manager for garbage collection)
// shared by the tests of this package that need one (cluster.Env(t)); each works in its own namespace with
// its own controller. The pure tests (activation, guard, HPA builder, pause, status) never start it.
var cluster = testenv.NewShared(localcluster.Options{ControllerManager: true})

func TestMain(m *testing.M) {
	ctrl.SetLogger(funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{Verbosity: 0}))
	code := m.Run()
	_ = cluster.Stop()
	os.Exit(code)
}

// harness is a controller running against the shared cluster for one namespace.
type harness struct {
	t       testing.TB
	env     *testenv.Env
	ns      string
	c       client.Client
	src     *scalertest.Source
	store   *metricstore.Store
	clock   *shiftedClock
	stop    func()
	rec     *controller.Reconciler
	extras  scalers.Registry
	metrics *controller.Metrics
	// user, when set, is who the controller acts as (impersonated), instead of the cluster's admin.
	user string
	// wrap, when set, changes the controller's rest config (a transport that counts requests).
	wrap func(*rest.Config)
	// statusRefresh and recheck are the controller's StatusRefresh and Recheck (newHarness: 200 ms each, so
	// that a decision the test moved the clock for is taken at once).
	statusRefresh, recheck time.Duration
	// concurrency is the controller's MaxConcurrentReconciles (0: its default).
	concurrency int
}

type harnessOption func(*harness)

// newHarness creates a namespace and starts a controller for it whose decisions read a fake clock.
func newHarness(t testing.TB, opts ...harnessOption) *harness {
	t.Helper()
	env := cluster.Env(t)
	h := &harness{t: t, env: env, c: env.Client, src: scalertest.New(), store: metricstore.New(), clock: &shiftedClock{}, metrics: controller.NewMetrics(nil), statusRefresh: 200 * time.Millisecond, recheck: 200 * time.Millisecond}
	for _, o := range opts {
		o(h)
	}
	h.ns = testenv.UniqueName(t, "ctl")
	if err := h.c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.ns}}); err != nil {
		t.Fatal(err)
	}
	h.start()
	t.Cleanup(func() { h.stop() })
	return h
}

// in is the harness for a subtest t of the test that made it: failures are reported in t.
func (h *harness) in(t testing.TB) *harness {
	sub := *h
	sub.t = t
	return &sub
}

// start runs a new controller (a new manager, as after a restart of ebb) with the harness's clock and
// store.
func (h *harness) start() {
	h.t.Helper()
	// The client limits of `ebb run`'s defaults (--kube-api-qps, --kube-api-burst).
	cfg := rest.CopyConfig(h.env.Config)
	cfg.QPS, cfg.Burst = 100, 200
	if h.user != "" {
		cfg.Impersonate = rest.ImpersonationConfig{UserName: h.user}
	}
	if h.wrap != nil {
		h.wrap(cfg)
	}
	mgr, err := ctrl.NewManager(cfg, manager.Options{
		Scheme:                 testenv.Scheme(),
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{h.ns: {}}},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             ctrlControllerOptions(),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	reg := h.src.Register(scalers.Registry{})
	for k, v := range h.extras {
		reg[k] = v
	}
	h.rec, err = controller.Setup(mgr, controller.Options{
		Registry:      reg,
		Store:         h.store,
		Clock:         h.clock,
		Metrics:       h.metrics,
		StatusRefresh: h.statusRefresh,
		Recheck:       h.recheck,

		MaxConcurrentReconciles: h.concurrency,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	h.stop = func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("manager: %v", err)
		}
		h.stop = func() {}
	}
}

// deployment creates a Deployment with the given replicas (no pods run: there is no kubelet).
func (h *harness) deployment(name string, replicas int32) *appsv1.Deployment {
	h.t.Helper()
	d := h.deploymentObject(name, replicas)
	if err := h.c.Create(h.t.Context(), d); err != nil {
		h.t.Fatal(err)
	}
	return d
}

func (h *harness) deploymentObject(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "consumer"}}},
			},
		},
	}
	return d
}

// scaledConsumer returns a ScaledConsumer for the Deployment named target with one "test" trigger per key.
func (h *harness) scaledConsumer(name, target string, keys ...string) *ebbv1.ScaledConsumer {
	sc := &ebbv1.ScaledConsumer{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: ebbv1.ScaledConsumerSpec{
			ScaleTargetRef:  ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: target},
			PollingInterval: &metav1.Duration{Duration: 100 * time.Millisecond},
		},
	}
	for _, k := range keys {
		sc.Spec.Triggers = append(sc.Spec.Triggers, ebbv1.Trigger{Name: k, Type: scalertest.Type, Metadata: map[string]string{"key": h.ns + "/" + k, "target": "10"}})
	}
	return sc
}

func (h *harness) create(obj client.Object) {
	h.t.Helper()
	if err := h.c.Create(h.t.Context(), obj); err != nil {
		h.t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// set makes the trigger with key k (in this namespace) read v.
func (h *harness) set(k string, v float64) { h.src.Set(h.ns+"/"+k, v) }

// update re-reads the ScaledConsumer, applies change and writes it, retrying on conflicts.
func (h *harness) update(name string, change func(*ebbv1.ScaledConsumer)) {
	h.t.Helper()
	for range 10 {
		sc := &ebbv1.ScaledConsumer{}
		if err := h.c.Get(h.t.Context(), types.NamespacedName{Namespace: h.ns, Name: name}, sc); err != nil {
			h.t.Fatal(err)
		}
		change(sc)
		err := h.c.Update(h.t.Context(), sc)
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "the object has been modified") {
			h.t.Fatal(err)
		}
	}
	h.t.Fatalf("updating %s: too many conflicts", name)
}

// poke makes the controller look at a ScaledConsumer again (an annotation change passes its predicates).
func (h *harness) poke(name string) {
	h.update(name, func(sc *ebbv1.ScaledConsumer) {
		if sc.Annotations == nil {
			sc.Annotations = map[string]string{}
		}
		sc.Annotations["test.ebb.dev/poke"] = time.Now().Format(time.RFC3339Nano)
	})
}

// eventually polls cond until it reports done, failing the test with cond's last message after timeout.
func (h *harness) eventually(timeout time.Duration, cond func() (bool, string)) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	msg := ""
	for time.Now().Before(deadline) {
		var ok bool
		if ok, msg = cond(); ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("after %s: %s", timeout, msg)
}

func (h *harness) getSC(name string) *ebbv1.ScaledConsumer {
	h.t.Helper()
	sc := &ebbv1.ScaledConsumer{}
	if err := h.c.Get(h.t.Context(), types.NamespacedName{Namespace: h.ns, Name: name}, sc); err != nil {
		h.t.Fatal(err)
	}
	return sc
}

// waitCondition waits until the ScaledConsumer's condition has the status and reason, and returns it.
func (h *harness) waitCondition(name, typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
	h.t.Helper()
	var got metav1.Condition
	h.eventually(10*time.Second, func() (bool, string) {
		c := meta.FindStatusCondition(h.getSC(name).Status.Conditions, typ)
		if c == nil {
			return false, fmt.Sprintf("%s has no %s condition", name, typ)
		}
		got = *c
		return c.Status == status && c.Reason == reason, fmt.Sprintf("%s condition %s=%s (%s: %s), want %s (%s)", name, typ, c.Status, c.Reason, c.Message, status, reason)
	})
	return got
}

func (h *harness) replicas(name string) int32 {
	h.t.Helper()
	d := &appsv1.Deployment{}
	if err := h.c.Get(h.t.Context(), types.NamespacedName{Namespace: h.ns, Name: name}, d); err != nil {
		h.t.Fatal(err)
	}
	return *d.Spec.Replicas
}

func (h *harness) waitReplicas(name string, want int32) {
	h.t.Helper()
	h.eventually(10*time.Second, func() (bool, string) {
		got := h.replicas(name)
		return got == want, fmt.Sprintf("Deployment %s has %d replicas, want %d", name, got, want)
	})
}

// hpa returns the HPA or nil when it does not exist.
func (h *harness) hpa(name string) *autoscalingv2.HorizontalPodAutoscaler {
	h.t.Helper()
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	if err := h.c.Get(h.t.Context(), types.NamespacedName{Namespace: h.ns, Name: name}, hpa); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil
		}
		h.t.Fatal(err)
	}
	return hpa
}

// waitEvent waits for an event with this reason about the named ScaledConsumer and returns its note.
func (h *harness) waitEvent(name, reason string) string {
	h.t.Helper()
	var note string
	h.eventually(10*time.Second, func() (bool, string) {
		list := &eventsv1.EventList{}
		if err := h.c.List(h.t.Context(), list, client.InNamespace(h.ns)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Kind == "ScaledConsumer" && e.Regarding.Name == name && e.Reason == reason {
				note = e.Note
				return true, ""
			}
			seen = append(seen, e.Reason)
		}
		return false, fmt.Sprintf("no %s event for %s; events: %v", reason, name, seen)
	})
	return note
}

// ctrlControllerOptions lets each test start its own manager with a controller of the same name.
func ctrlControllerOptions() config.Controller {
	skip := true
	return config.Controller{SkipNameValidation: &skip}
}

// shiftedClock is the real clock moved by the test: decisions see time pass as usual, and a test jumps
// over a cooldown with Step or SetTime instead of sleeping through it.
type shiftedClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *shiftedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *shiftedClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// Step moves the clock forward by d.
func (c *shiftedClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// SetTime makes the clock read t now.
func (c *shiftedClock) SetTime(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = time.Until(t)
}
