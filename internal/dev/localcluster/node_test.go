package localcluster_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// TestNode runs a real node: it registers at the pinned version, runs a Deployment's pods on the pod
// network, and, stopped, leaves nothing behind on the host.
func TestNode(t *testing.T) {
	testenv.RequireNode(t)
	ctx := t.Context()
	imgs, err := testenv.BuildImages(ctx, t.TempDir(), "pause")
	if err != nil {
		t.Fatal(err)
	}
	sysctlsBefore := testenv.HostSysctls(t)
	c, err := localcluster.Start(ctx, localcluster.Options{Node: imgs.NodeOptions()})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = c.Stop()
		}
	})
	kube := kubernetes.NewForConfigOrDie(c.Config)

	node, err := kube.CoreV1().Nodes().Get(ctx, localcluster.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	server, err := kube.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	want := "v" + localcluster.KubernetesVersion
	if got := node.Status.NodeInfo.KubeletVersion; got != want {
		t.Errorf("kubelet reports version %q, want %q", got, want)
	}
	if got := server.GitVersion; got != want {
		t.Errorf("kube-apiserver reports version %q, want %q", got, want)
	}
	// The others say it themselves.
	for _, args := range [][]string{{"kubectl", "version", "--client"}, {"kube-proxy", "--version"}, {"kube-scheduler", "--version"}, {"kube-controller-manager", "--version"}} {
		out, err := exec.CommandContext(ctx, filepath.Join(c.BinDir, args[0]), args[1:]...).CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte(want)) {
			t.Errorf("%s: %v: %s; want %s", strings.Join(args, " "), err, out, want)
		}
	}

	labels := map[string]string{"app": "pause"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "pause", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "pause", Image: imgs.Refs["pause"], ImagePullPolicy: corev1.PullNever,
				}}},
			},
		},
	}
	if _, err := kube.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var last []string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=pause"})
		if err != nil {
			return false, nil
		}
		last = last[:0]
		running := 0
		for _, p := range pods.Items {
			last = append(last, p.Name+" "+string(p.Status.Phase)+" "+p.Status.PodIP)
			if p.Status.Phase == corev1.PodRunning && strings.HasPrefix(p.Status.PodIP, "198.18.0.") && p.Status.PodIP != localcluster.NodeIP.String() {
				running++
			}
		}
		return running == 2, nil
	})
	if err != nil {
		t.Fatalf("want 2 pods Running with addresses in %s, got %v: %v", localcluster.PodCIDR, last, err)
	}

	// The host routes no pod traffic anywhere: forwarding stays as it was, whatever the node runs.
	if got := localcluster.ReadSysctls()["net/ipv4/ip_forward"]; got != sysctlsBefore["net/ipv4/ip_forward"] {
		t.Errorf("net.ipv4.ip_forward is %s while the node runs, was %s", got, sysctlsBefore["net/ipv4/ip_forward"])
	}

	dir := c.Dir
	stopped = true
	if err := c.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if diff := cmp.Diff(testenv.HostSysctls(t), sysctlsBefore); diff != "" {
		t.Errorf("sysctls after Stop (-got +want):\n%s", diff)
	}
	for _, l := range testenv.NodeLeftovers(t, dir) {
		t.Errorf("left behind after Stop: %s", l)
	}
}
