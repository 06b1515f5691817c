package cli_test

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// `ebb dev` says where ebb's Prometheus metrics are, serves ebb's own series there as `ebb run` does, and
// its log names the port it bound rather than ":0". Its kube-controller-manager deletes a deleted
// namespace (the namespace controller) rather than leaving it Terminating.
func TestDevMetricsAndNamespaces(t *testing.T) {
	testenv.Requires(t, "ebb dev (a control plane)")
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	work := filepath.Join(dir, "work")
	dev := startDevProcess(t, exec.Command(testenv.EbbBinary(t), "dev", "--dir", work, "--kubeconfig-out", kubeconfig, "--kafka-listen", "0"))
	readyLine := dev.waitReady(t, 3*time.Minute)
	m := regexp.MustCompile(`ebb's metrics at (http://127\.0\.0\.1:(\d+)/metrics)`).FindStringSubmatch(readyLine)
	if m == nil {
		t.Fatalf("ready line %q does not say where ebb's metrics are", readyLine)
	}
	url, port := m[1], m[2]
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	for _, series := range []string{"ebb_build_info{", "ebb_hpa_apply_duration_seconds_count "} {
		if !strings.Contains(string(body), series) {
			t.Errorf("%s has no %s series", url, series)
		}
	}

	log, err := os.ReadFile(filepath.Join(work, "ebb.log"))
	if err != nil {
		t.Fatal(err)
	}
	serving := regexp.MustCompile(`"Serving metrics server".*bindAddress="([^"]*)"`).FindStringSubmatch(string(log))
	if serving == nil || serving[1] != "127.0.0.1:"+port {
		t.Errorf("ebb's log names the metrics address %v, want 127.0.0.1:%s", serving, port)
	}

	kubectl := func(args ...string) (string, error) {
		out, err := exec.Command(filepath.Join(controlPlaneDir(t), "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...).CombinedOutput()
		return string(out), err
	}
	for _, args := range [][]string{{"create", "namespace", "doomed"}, {"create", "configmap", "left", "-n", "doomed"}, {"delete", "namespace", "doomed", "--wait=false"}} {
		if out, err := kubectl(args...); err != nil {
			t.Fatalf("kubectl %v: %v: %s", args, err, out)
		}
	}
	waitFor(t, 90*time.Second, "the deleted namespace stays (Terminating)", func() bool {
		out, err := kubectl("get", "namespace", "doomed")
		return err != nil && strings.Contains(out, "NotFound")
	})
}
