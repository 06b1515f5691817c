package localcluster_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// PID names each control-plane component's process, and freezing the one it names for kube-apiserver
// stops the API from answering until it is resumed.
func TestPID(t *testing.T) {
	env := testenv.Start(t, localcluster.Options{ControllerManager: true})
	for _, name := range []string{localcluster.Etcd, localcluster.KubeAPIServer, localcluster.KubeControllerManager} {
		pid, err := env.PID(name)
		if err != nil {
			t.Fatalf("PID(%s): %v", name, err)
		}
		exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
		if err != nil || filepath.Base(exe) != name {
			t.Errorf("PID(%s) = %d, which runs %q (%v)", name, pid, exe, err)
		}
	}
	if _, err := env.PID("kubelet"); err == nil || !strings.Contains(err.Error(), "no component") {
		t.Errorf("PID(kubelet) error = %v, want one naming no such component", err)
	}

	resume := env.Freeze(t, localcluster.KubeAPIServer)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := env.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err == nil {
		t.Error("a frozen kube-apiserver answered")
	}
	resume()
	if _, err := env.Kube.CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{}); err != nil {
		t.Errorf("kube-apiserver does not answer once resumed: %v", err)
	}
}
