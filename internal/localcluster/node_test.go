package localcluster_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

	"github.com/ebbscale/ebb/internal/localcluster"
	"github.com/ebbscale/ebb/internal/testenv"
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
	sysctlsBefore := localcluster.ReadSysctls()
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
	kubectl, err := exec.CommandContext(ctx, filepath.Join(c.BinDir, "kubectl"), "version", "--client", "-o", "yaml").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "v" + localcluster.KubernetesVersion
	for what, got := range map[string]string{
		"kubelet":        node.Status.NodeInfo.KubeletVersion,
		"kube-proxy":     node.Status.NodeInfo.KubeProxyVersion, //nolint:staticcheck // deprecated and may be empty; checked when set
		"kube-apiserver": server.GitVersion,
	} {
		if got != want && (what != "kube-proxy" || got != "") { // kube-proxy's field is deprecated and may be empty
			t.Errorf("%s reports version %q, want %q", what, got, want)
		}
	}
	if !bytes.Contains(kubectl, []byte("gitVersion: "+want)) {
		t.Errorf("kubectl version --client:\n%s\nwant gitVersion %s", kubectl, want)
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

	dir := c.Dir
	stopped = true
	if err := c.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if diff := cmp.Diff(localcluster.ReadSysctls(), sysctlsBefore); diff != "" {
		t.Errorf("sysctls after Stop (-got +want):\n%s", diff)
	}
	for _, l := range nodeLeftovers(t, dir) {
		t.Errorf("left behind after Stop: %s", l)
	}
}

// nodeLeftovers lists what a stopped node left on the host, looking for each kind of thing on its own:
// processes, mounts, cgroups, network namespaces, interfaces, iptables chains.
func nodeLeftovers(t *testing.T, dir string) []string {
	t.Helper()
	var left []string
	names := map[string]bool{"containerd": true, "containerd-shim": true, "containerd-shim-runc-v2": true,
		"kubelet": true, "kube-proxy": true, "kube-scheduler": true, "pause": true}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && (names[filepath.Base(args[0])] || strings.Contains(string(cmdline), dir)) {
			left = append(left, "process "+p.Name()+": "+strings.Join(args, " "))
		}
	}
	mountinfo, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mountinfo), "\n") {
		if strings.Contains(line, dir) || strings.Contains(line, "/run/netns/cni-") || strings.Contains(line, "kubelet") {
			left = append(left, "mount: "+line)
		}
	}
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods*")
	for _, cg := range cgroups {
		left = append(left, "cgroup "+cg)
	}
	netns, _ := filepath.Glob("/run/netns/cni-*")
	for _, ns := range netns {
		left = append(left, "network namespace "+ns)
	}
	links, _ := os.ReadDir("/sys/class/net")
	for _, l := range links {
		if l.Name() == localcluster.NodeBridge || strings.HasPrefix(l.Name(), "veth") {
			left = append(left, "interface "+l.Name())
		}
	}
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		out, err := exec.Command(tool).Output()
		if err != nil {
			t.Errorf("%s: %v", tool, err)
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "KUBE-") || strings.Contains(line, "CNI-") || strings.Contains(line, "EBB-") {
				left = append(left, tool+": "+line)
			}
		}
	}
	if _, err := os.Stat(dir); err == nil {
		left = append(left, "directory "+dir)
	}
	return left
}
