package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/internal/app"
	"github.com/ebbscale/ebb/internal/localcluster"
	"github.com/ebbscale/ebb/internal/testenv"
	"github.com/ebbscale/ebb/metricsapi"
	"github.com/ebbscale/ebb/metricstore"
	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/scalertest"
)

// startEbb runs ebb's controller and metrics API server in this process, as `ebb run` does, with the
// "test" trigger type, and registers the metrics API behind the aggregator.
func startEbb(t *testing.T, env *testenv.Env, src *scalertest.Source) {
	t.Helper()
	store := metricstore.New()
	port := testenv.FreePort(t)
	fs := pflag.NewFlagSet("ebb", pflag.ContinueOnError)
	adapter := metricsapi.NewAdapter(metricsapi.NewProvider(store), fs)
	if err := fs.Parse([]string{
		"--secure-port=" + strconv.Itoa(port),
		"--bind-address=127.0.0.1",
		"--cert-dir=" + t.TempDir(),
		"--lister-kubeconfig=" + env.Kubeconfig,
		"--authentication-kubeconfig=" + env.Kubeconfig,
		"--authorization-kubeconfig=" + env.Kubeconfig,
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{
			Config:                 env.Config,
			Store:                  store,
			Controller:             true,
			Registry:               src.Register(scalers.Registry{}),
			MetricsBindAddress:     "0",
			HealthProbeBindAddress: "0",
			MetricsAPI:             adapter,
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

// rawMetric reads an external metric the way an operator would: kubectl get --raw through kube-apiserver.
func rawMetric(t *testing.T, env *testenv.Env, ns, metric, sc string) (string, error) {
	t.Helper()
	path := fmt.Sprintf("/apis/external.metrics.k8s.io/v1beta1/namespaces/%s/%s?labelSelector=%s%%3D%s", ns, metric, ebbv1.ScaledConsumerLabel, sc)
	out, err := exec.CommandContext(t.Context(), filepath.Join(env.BinDir, "kubectl"), "--kubeconfig", env.Kubeconfig, "get", "--raw", path).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("kubectl get --raw %s: %w: %s", path, err, out)
	}
	var list struct {
		Items []struct {
			Value string `json:"value"`
		} `json:"items"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return "", fmt.Errorf("decoding %s: %w", out, err)
	}
	if len(list.Items) != 1 {
		return "", fmt.Errorf("want one item, got %s", out)
	}
	return list.Items[0].Value, nil
}

// TestWholeLoop: a Deployment at zero; work arrives; ebb wakes it to one; the backlog grows and the HPA
// controller scales it to ceil(backlog/threshold), capped at maxReplicas; the backlog drains; the HPA
// brings it to one and ebb, after the cooldown, to zero.
func TestWholeLoop(t *testing.T) {
	env := testenv.Start(t, localcluster.Options{ControllerManager: true})
	src := scalertest.New()
	startEbb(t, env, src)
	ctx := t.Context()
	c := env.Client
	ns := testenv.UniqueName(t, "loop")
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	zero := int32(0)
	labels := map[string]string{"app": "consumer"}
	if err := c.Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "consumer", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &zero,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "consumer"}}},
			},
		},
	}); err != nil {
		t.Fatal(err)
	}
	key := ns + "/backlog"
	src.Set(key, 0)
	maxReplicas := int32(5)
	if err := c.Create(ctx, &ebbv1.ScaledConsumer{
		ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: ns},
		Spec: ebbv1.ScaledConsumerSpec{
			ScaleTargetRef:  ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "consumer"},
			MaxReplicas:     &maxReplicas,
			PollingInterval: &metav1.Duration{Duration: 200 * time.Millisecond},
			CooldownPeriod:  &metav1.Duration{Duration: 3 * time.Second},
			Triggers:        []ebbv1.Trigger{{Name: "backlog", Type: scalertest.Type, Metadata: map[string]string{"key": key, "target": "10"}}},
		},
	}); err != nil {
		t.Fatal(err)
	}

	replicas := func() int32 {
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "consumer"}, d); err != nil {
			t.Fatal(err)
		}
		return *d.Spec.Replicas
	}
	// step sets the backlog, waits for the metrics API to serve it and the Deployment to reach want.
	step := func(name string, backlog float64, want int32) {
		t.Helper()
		src.Set(key, backlog)
		wantValue := resource.NewMilliQuantity(int64(backlog*1000), resource.DecimalSI)
		deadline := time.Now().Add(60 * time.Second)
		var value string
		var got int32
		var err error
		for time.Now().Before(deadline) {
			value, err = rawMetric(t, env, ns, "backlog", "orders")
			got = replicas()
			if q, perr := resource.ParseQuantity(value); err == nil && perr == nil && q.Cmp(*wantValue) == 0 && got == want {
				t.Logf("%s: backlog %s, replicas %d", name, value, got)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("%s: metrics API says %q (err %v), Deployment has %d replicas; want %s and %d", name, value, err, got, wantValue.String(), want)
	}

	step("idle", 0, 0)
	step("first event wakes it", 3, 1)
	step("backlog grows", 35, 4) // ceil(35/10)
	step("capped", 1000, 5)      // maxReplicas
	step("draining", 12, 2)      // ceil(12/10)
	step("drained", 0, 0)        // HPA to 1, ebb to 0 after the 3 s cooldown
}
