package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/explain"
	"github.com/ebbscale/ebb/internal/cli"
	"github.com/ebbscale/ebb/internal/dev/devkafka"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers/builtin"
	"github.com/ebbscale/ebb/scalers/scalertest"
)

// explainNS is the namespace of TestExplain's ScaledConsumers (fixed, so that the docs read the same
// from run to run; each run has its own control plane).
const explainNS = "shop"

// explainEnv is a control plane with the HPA controller and ebb (the built-in trigger types and the test
// trigger), and the namespace explainNS.
type explainEnv struct {
	t   *testing.T
	env *testenv.Env
	src *scalertest.Source
}

// runExplain runs `ebb explain NAME -n shop` as the command line does and returns its output.
func (x *explainEnv) runExplain(name string, json bool) (string, error) {
	args := []string{"explain", name, "-n", explainNS, "--kubeconfig", x.env.Kubeconfig}
	if json {
		args = append(args, "-o", "json")
	}
	var out, errb bytes.Buffer
	if code := cli.Main(x.t.Context(), args, &out, &errb); code != 0 {
		return "", fmt.Errorf("ebb %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return out.String(), nil
}

// explained runs `ebb explain -o json` and decodes it.
func (x *explainEnv) explained(name string) (explain.Explanation, error) {
	out, err := x.runExplain(name, true)
	if err != nil {
		return explain.Explanation{}, err
	}
	var e explain.Explanation
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		return e, fmt.Errorf("decoding %q: %w", out, err)
	}
	return e, nil
}

// waitExplained waits until the explanation of name satisfies ok and returns it with the text output
// taken right after.
func (x *explainEnv) waitExplained(name string, timeout time.Duration, ok func(e explain.Explanation) string) (explain.Explanation, string) {
	x.t.Helper()
	var last explain.Explanation
	waitUntil(x.t, timeout, "ebb explain "+name, func() (bool, string) {
		e, err := x.explained(name)
		if err != nil {
			return false, err.Error()
		}
		last = e
		if why := ok(e); why != "" {
			raw, _ := json.Marshal(e)
			return false, why + ": " + string(raw)
		}
		return true, ""
	})
	text, err := x.runExplain(name, false)
	if err != nil {
		x.t.Fatal(err)
	}
	return last, text
}

// consumer creates the Deployment name at replicas and a ScaledConsumer name on it with triggers,
// maxReplicas 5 and a 200 ms polling interval; edit changes the ScaledConsumer before it is created.
func (x *explainEnv) consumer(name string, replicas int32, edit func(*ebbv1.ScaledConsumer), triggers ...ebbv1.Trigger) {
	x.t.Helper()
	ctx, c := x.t.Context(), x.env.Client
	if err := c.Create(ctx, testenv.Deployment(explainNS, name, replicas)); err != nil {
		x.t.Fatal(err)
	}
	sc := &ebbv1.ScaledConsumer{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: explainNS},
		Spec: ebbv1.ScaledConsumerSpec{
			ScaleTargetRef:  ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MaxReplicas:     ptr(int32(5)),
			PollingInterval: &metav1.Duration{Duration: 200 * time.Millisecond},
			CooldownPeriod:  &metav1.Duration{Duration: 10 * time.Minute},
			Triggers:        triggers,
		},
	}
	if edit != nil {
		edit(sc)
	}
	if err := c.Create(ctx, sc); err != nil {
		x.t.Fatal(err)
	}
}

// testTrigger is a test trigger named backlog reading key, with a threshold of 10.
func (x *explainEnv) testTrigger(key string) ebbv1.Trigger {
	return ebbv1.Trigger{Name: "backlog", Type: scalertest.Type, Metadata: map[string]string{"key": key, "target": "10"}}
}

func checkState(e explain.Explanation, state explain.State, bound string, replicas int32) string {
	switch {
	case e.State != state:
		return fmt.Sprintf("state %s, want %s", e.State, state)
	case e.BoundBy != bound:
		return fmt.Sprintf("bound by %s, want %s", e.BoundBy, bound)
	case e.Target.Replicas == nil || *e.Target.Replicas != replicas:
		return fmt.Sprintf("target replicas %v, want %d", e.Target.Replicas, replicas)
	}
	return ""
}

// explainCase is one state TestExplain shows: how to reach it, what the JSON must say, and lines the text
// must contain.
type explainCase struct {
	name  string
	sc    string // the ScaledConsumer's name
	setup func(x *explainEnv)
	check func(e explain.Explanation) string
	lines []string
}

// TestExplain puts ScaledConsumers in each state against a real control plane with the real HPA controller
// and ebb behind the aggregator, and checks what `ebb explain` says about each: the -o json fields and the
// text's key lines. It writes the text outputs to testdata/explain (go test ./e2e -run TestExplain -update)
// for docs/scaling.md; without -update it checks that the committed ones still show the same decisions.
func TestExplain(t *testing.T) {
	env := testenv.Start(t, localcluster.Options{ControllerManager: true})
	src := scalertest.New()
	startEbb(t, env, src.Register(builtin.Registry(builtin.Options{})))
	if err := env.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: explainNS}}); err != nil {
		t.Fatal(err)
	}
	x := &explainEnv{t: t, env: env, src: src}

	// A Kafka cluster that is down: started for its address, then closed.
	k, err := devkafka.Start(devkafka.Config{Brokers: 1, Topics: map[string]int32{"orders": 3}, NoAutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	downKafka := strings.Join(k.ListenAddrs(), ",")
	k.Close()

	cases := []explainCase{{
		name: "active",
		sc:   "orders",
		setup: func(x *explainEnv) {
			x.src.Set("active", 35)
			x.consumer("orders", 0, nil, x.testTrigger("active"))
		},
		check: func(e explain.Explanation) string {
			if why := checkState(e, explain.StateActive, explain.LimitTriggers, 4); why != "" {
				return why
			}
			m := e.Triggers[0].Metrics
			if len(m) != 1 || m[0].Value != "35" || m[0].Target != "10" || m[0].Replicas == nil || *m[0].Replicas != 4 || m[0].Source != "metricsAPI" || m[0].ValueTime == nil {
				return fmt.Sprintf("metrics %+v, want 35 / 10 -> 4 from the metrics API", m)
			}
			if e.HPA == nil || e.HPA.DesiredReplicas != 4 || e.HPA.Name != "ebb-orders" {
				return fmt.Sprintf("HPA %+v, want ebb-orders wanting 4", e.HPA)
			}
			return ""
		},
		lines: []string{"State:     Active", "Decided by: triggers (the triggers ask for 4)", "35 / 10 = 3.5 -> 4 replicas"},
	}, {
		name: "capped",
		sc:   "capped",
		setup: func(x *explainEnv) {
			x.src.Set("capped", 1000)
			x.consumer("capped", 0, nil, x.testTrigger("capped"))
		},
		check: func(e explain.Explanation) string {
			if why := checkState(e, explain.StateActive, explain.LimitMaxReplicas, 5); why != "" {
				return why
			}
			if e.Asked == nil || *e.Asked != 100 {
				return fmt.Sprintf("asked %v, want 100", e.Asked)
			}
			return ""
		},
		lines: []string{"Decided by: maxReplicas (the triggers ask for 100)", "* maxReplicas"},
	}, {
		name: "partitions",
		sc:   "partitions",
		setup: func(x *explainEnv) {
			// 100 records of lag at 10 per replica on a 3-partition topic: the trigger asks for 3, not 10.
			k, err := devkafka.Start(devkafka.Config{Brokers: 1, Topics: map[string]int32{"orders": 3}, NoAutoCreateTopics: true})
			if err != nil {
				x.t.Fatal(err)
			}
			x.t.Cleanup(k.Close)
			b := newKafkaBacklog(x.t, k)
			b.partitions = 3
			b.set(x.t, 100)
			x.consumer("partitions", 0, nil, b.trigger())
		},
		check: func(e explain.Explanation) string {
			if why := checkState(e, explain.StateActive, explain.LimitPartitions, 3); why != "" {
				return why
			}
			if e.Asked == nil || *e.Asked != 3 || e.HPA == nil || e.HPA.DesiredReplicas != 3 {
				return fmt.Sprintf("asked %v, HPA %+v; want 3 (the partitions)", e.Asked, e.HPA)
			}
			return ""
		},
		lines: []string{"Decided by: partitions (the triggers ask for 3)", "lag capped at 3 partitions x lagThreshold 10 = 30"},
	}, {
		name: "cooling-down",
		sc:   "cooling",
		setup: func(x *explainEnv) {
			x.src.Set("cooling", 5)
			x.consumer("cooling", 0, nil, x.testTrigger("cooling"))
			waitUntil(x.t, 60*time.Second, "cooling woken to 1", func() (bool, string) {
				e, err := x.explained("cooling")
				if err != nil {
					return false, err.Error()
				}
				return checkState(e, explain.StateActive, explain.LimitTriggers, 1) == "", fmt.Sprintf("%s %v", e.State, e.Target.Replicas)
			})
			x.src.Set("cooling", 0)
		},
		check: func(e explain.Explanation) string {
			if why := checkState(e, explain.StateCoolingDown, explain.LimitMinReplicas, 1); why != "" {
				return why
			}
			if e.LastActiveTime == nil || e.CooldownUntil == nil || !e.CooldownUntil.Equal(e.LastActiveTime.Add(10*time.Minute)) {
				return fmt.Sprintf("cooldown until %v, want lastActiveTime %v + 10m", e.CooldownUntil, e.LastActiveTime)
			}
			if e.Next.Actor != "ebb" || e.Next.Replicas == nil || *e.Next.Replicas != 0 || e.Next.At == nil || !e.Next.At.Equal(*e.CooldownUntil) {
				return fmt.Sprintf("next %+v, want ebb to 0 at the end of the cooldown", e.Next)
			}
			return ""
		},
		lines: []string{"State:     CoolingDown: no trigger is active; cooling down until", "ebb scales the target to 0"},
	}, {
		name: "idle",
		sc:   "idle",
		setup: func(x *explainEnv) {
			x.src.Set("idle", 0)
			x.consumer("idle", 0, nil, x.testTrigger("idle"))
		},
		check: func(e explain.Explanation) string {
			if why := checkState(e, explain.StateIdle, explain.LimitIdle, 0); why != "" {
				return why
			}
			if e.Next.Actor != "ebb" || e.Next.Replicas == nil || *e.Next.Replicas != 1 {
				return fmt.Sprintf("next %+v, want ebb waking it to 1", e.Next)
			}
			return ""
		},
		lines: []string{"State:     Idle", "wakes the target to 1"},
	}, {
		name: "fallback",
		sc:   "fallback",
		setup: func(x *explainEnv) {
			x.consumer("fallback", 0, func(sc *ebbv1.ScaledConsumer) {
				sc.Spec.Fallback = &ebbv1.Fallback{FailureThreshold: 2, Replicas: 2}
			}, ebbv1.Trigger{Name: "lag", Type: "kafka", Metadata: map[string]string{
				"bootstrapServers": downKafka, "consumerGroup": "workers", "topic": "orders", "lagThreshold": "10",
			}})
		},
		check: func(e explain.Explanation) string {
			if why := checkState(e, explain.StateFallback, explain.LimitFallback, 2); why != "" {
				return why
			}
			if e.HPA == nil || e.HPA.DesiredReplicas != 2 {
				return fmt.Sprintf("HPA %+v, want it to want fallback.replicas 2", e.HPA)
			}
			tr := e.Triggers[0]
			if tr.LastError == "" || tr.ConsecutiveFailures < 2 || len(tr.Metrics) != 1 || !tr.Metrics[0].Fallback || tr.Metrics[0].Value != "20" {
				return fmt.Sprintf("trigger %+v, want failing with the fallback value 20 (2 x 10)", tr)
			}
			return ""
		},
		lines: []string{"State:     Fallback", "Decided by: fallback", "(fallback value)", "holds fallback.replicas=2"},
	}, {
		name: "paused",
		sc:   "paused",
		setup: func(x *explainEnv) {
			x.src.Set("paused", 35)
			x.consumer("paused", 3, func(sc *ebbv1.ScaledConsumer) {
				sc.Annotations = map[string]string{ebbv1.PausedAnnotation: "true"}
			}, x.testTrigger("paused"))
		},
		check: func(e explain.Explanation) string {
			if why := checkState(e, explain.StatePaused, explain.LimitPaused, 3); why != "" {
				return why
			}
			if e.HPA != nil || e.Next.Actor != "user" {
				return fmt.Sprintf("HPA %+v, next %+v; want no HPA and the user to act", e.HPA, e.Next)
			}
			return ""
		},
		lines: []string{"State:     Paused", "HPA:       none", "nothing until annotation ebb.dev/paused is removed"},
	}, {
		name: "guard",
		sc:   "guard",
		setup: func(x *explainEnv) {
			x.src.Set("guard", 25)
			x.src.SetDeadLetter("guard-dlq", 0, 0)
			x.consumer("guard", 0, func(sc *ebbv1.ScaledConsumer) {
				q := resource.MustParse("30")
				sc.Spec.DeadLetter = &ebbv1.DeadLetter{Type: scalertest.Type, Metadata: map[string]string{"key": "guard-dlq"},
					MaxInflowPerMinute: &q, Window: &metav1.Duration{Duration: time.Second}}
				sc.Spec.Guard = &ebbv1.Guard{ReleaseAfter: &metav1.Duration{Duration: time.Hour}}
			}, x.testTrigger("guard"))
			waitUntil(x.t, 60*time.Second, "guard at 3 replicas", func() (bool, string) {
				e, err := x.explained("guard")
				if err != nil {
					return false, err.Error()
				}
				return checkState(e, explain.StateActive, explain.LimitTriggers, 3) == "", fmt.Sprintf("%s %v", e.State, e.Target.Replicas)
			})
			// 2 messages a second (120/min) into the dead-letter queue trips the guard; then more backlog.
			x.src.SetDeadLetter("guard-dlq", 50, 2)
			waitUntil(x.t, 60*time.Second, "guard tripped", func() (bool, string) {
				e, err := x.explained("guard")
				if err != nil {
					return false, err.Error()
				}
				return e.Guard != nil && e.Guard.Tripped && e.HPA != nil && e.HPA.MaxReplicas == 3, fmt.Sprintf("guard %+v", e.Guard)
			})
			x.src.Set("guard", 80)
		},
		check: func(e explain.Explanation) string {
			if why := checkState(e, explain.StateActive, explain.LimitGuard, 3); why != "" {
				return why
			}
			if e.Asked == nil || *e.Asked != 8 || e.Guard.Reason != "DeadLetterInflow" || e.Guard.HeldReplicas == nil || *e.Guard.HeldReplicas != 3 {
				return fmt.Sprintf("asked %v, guard %+v; want 8 asked, held at 3 for DeadLetterInflow", e.Asked, e.Guard)
			}
			return ""
		},
		lines: []string{"Decided by: guard (the triggers ask for 8)", "* guard", "Guard:     ConsumersHealthy=False (DeadLetterInflow), holding scale-up at 3"},
	}}

	var mu sync.Mutex
	outputs := map[string]string{}
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(c.name, func(t *testing.T) {
				x := &explainEnv{t: t, env: env, src: src}
				c.setup(x)
				_, text := x.waitExplained(c.sc, 90*time.Second, c.check)
				for _, l := range c.lines {
					if !strings.Contains(text, l) {
						t.Errorf("text output lacks %q:\n%s", l, text)
					}
				}
				mu.Lock()
				outputs[c.name] = text
				mu.Unlock()
			})
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	checkExplainGoldens(t, outputs)
	t.Run("kubectl-plugin", func(t *testing.T) { kubectlPlugin(t, env) })
	if _, err := x.runExplain("missing", false); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("explain of a missing ScaledConsumer: %v, want not found", err)
	}
}

// kubectlPlugin runs `kubectl ebb explain orders -n shop -o json` with the cluster's kubectl and the ebb
// binary linked as kubectl-ebb on PATH, the way the docs say to install the plugin.
func kubectlPlugin(t *testing.T, env *testenv.Env) {
	dir := t.TempDir()
	if err := os.Symlink(testenv.EbbBinary(t), filepath.Join(dir, cli.PluginName)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join(env.BinDir, "kubectl"), "ebb", "explain", "orders", "-n", explainNS, "-o", "json", "--kubeconfig", env.Kubeconfig)
	cmd.Env = append(os.Environ(), "PATH="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl ebb explain: %v: %s", err, stderr.String())
	}
	var e explain.Explanation
	if err := json.Unmarshal(out, &e); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	if e.Format != explain.Format || e.Name != "orders" || e.State != explain.StateActive {
		t.Errorf("kubectl ebb explain said format %q, name %q, state %q; want %q, orders, Active", e.Format, e.Name, e.State, explain.Format)
	}
	// As kubectl-ebb the binary offers only the client-side commands.
	cmd = exec.CommandContext(t.Context(), filepath.Join(env.BinDir, "kubectl"), "ebb", "--help")
	cmd.Env = append(os.Environ(), "PATH="+dir)
	help, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(help), "kubectl ebb [command]") || strings.Contains(string(help), "metrics-apiserver") {
		t.Errorf("kubectl ebb --help: %v\n%s\nwant the plugin's usage without ebb's server commands", err, help)
	}
}
