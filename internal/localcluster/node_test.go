package localcluster_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ebbscale/ebb/internal/localcluster"
)

func TestNodeRunsPods(t *testing.T) {
	pause := os.Getenv("EBB_TEST_PAUSE_IMAGE")
	before := localcluster.ReadSysctls()
	ctx := t.Context()
	c, err := localcluster.Start(ctx, localcluster.Options{Dir: os.Getenv("EBB_TEST_DIR"), Node: &localcluster.NodeOptions{SandboxImage: "ebb.local/pause:3.10", ImageArchives: []string{pause}}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = c.Stop()
		}
	}()
	kube := kubernetes.NewForConfigOrDie(c.Config)
	node, err := kube.CoreV1().Nodes().Get(ctx, localcluster.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := node.Status.NodeInfo.KubeletVersion; got != "v1.37.2" {
		t.Errorf("kubelet version = %q, want v1.37.2", got)
	}
	labels := map[string]string{"app": "p"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "p", Image: "ebb.local/pause:3.10", ImagePullPolicy: corev1.PullNever}}},
			},
		},
	}
	if _, err := kube.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=p"})
		if err != nil {
			return false, nil
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && strings.HasPrefix(p.Status.PodIP, "198.18.0.") {
				running++
			}
		}
		return running == 2, nil
	})
	if err != nil {
		t.Fatalf("pods not running: %v", err)
	}
	nodeDir := filepath.Join(c.Dir, "node")
	stopped = true
	if err := c.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	_ = nodeDir
	if got := localcluster.ReadSysctls(); !equalMaps(got, before) {
		t.Errorf("sysctls after stop = %v, want %v", got, before)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
