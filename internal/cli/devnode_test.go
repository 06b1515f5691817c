package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ebbscale/ebb/internal/dev/imagebuild"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// `ebb dev --node` runs a real node and ebb on it as two pods installed from manifests/, loads an image
// archive the user names, says in its ready line where Kafka is for pods and this machine, and leaves
// nothing behind on Ctrl-C.
func TestDevNode(t *testing.T) {
	testenv.RequireNode(t)
	dir := t.TempDir()
	// A user's own image: the pause binary under another name.
	pause, err := imagebuild.Lookup(imagebuild.Project("test", "", time.Time{}), "pause")
	if err != nil {
		t.Fatal(err)
	}
	pause.Ref = "example.local/mine:1"
	archive := filepath.Join(dir, "mine.tar")
	if _, err := pause.WriteTarball(t.Context(), archive); err != nil {
		t.Fatal(err)
	}

	kubeconfig := filepath.Join(dir, "kubeconfig")
	kafkaPort := testenv.FreePort(t)
	work := filepath.Join(dir, "work")
	cmd := exec.Command(testenv.EbbBinary(t), "dev", "--node", "--dir", work, "--kubeconfig-out", kubeconfig,
		"--kafka-listen", "127.0.0.1:"+strconv.Itoa(kafkaPort), "--image-archive", archive)
	cmd.Dir = testenv.RepoRoot(t) // the node's images are built from the checkout
	dev := startDevProcess(t, cmd)
	line := dev.waitReady(t, 6*time.Minute)
	t.Log(line)
	for _, want := range []string{
		"ebb runs as 2 pods in ebb-system",
		"Kafka at " + localcluster.NodeIP.String() + ":" + strconv.Itoa(kafkaPort) + " for pods and this machine",
		"kubectl logs -n ebb-system deploy/ebb",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("ready line lacks %q", want)
		}
	}

	kubectl := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(filepath.Join(controlPlaneDir(t), "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	pods := kubectl("get", "pods", "-n", "ebb-system", "-l", "app.kubernetes.io/name=ebb",
		"-o", `jsonpath={range .items[*]}{.status.phase} {.spec.serviceAccountName}{"\n"}{end}`)
	if got := strings.Count(pods, "Running ebb\n"); got != 2 {
		t.Errorf("ebb pods (phase, service account):\n%s\nwant 2 Running under ebb", pods)
	}
	kubectl("run", "mine", "--image", "example.local/mine:1", "--image-pull-policy", "Never", "--restart", "Never")
	waitFor(t, time.Minute, "the pod of the loaded image is not Running", func() bool {
		return kubectl("get", "pod", "mine", "-o", "jsonpath={.status.phase}") == "Running"
	})

	if err := dev.stop(t, syscall.SIGINT, 90*time.Second); err != nil {
		t.Errorf("ebb dev --node exited with %v on SIGINT", err)
	}
	for _, l := range testenv.NodeLeftovers(t, work) {
		t.Errorf("left behind: %s", l)
	}
}

// An `ebb dev --node` killed with SIGKILL cannot clean up; the next node does, before it starts (the killed
// run's etcd and kube-apiserver included): after it stops, nothing of either run is left and the sysctls are
// as they were before the first.
func TestDevNodeAfterKill(t *testing.T) {
	testenv.RequireNode(t)
	sysctls := testenv.HostSysctls(t)
	dir := t.TempDir()
	run := func(name string) (*devProcess, string) {
		work := filepath.Join(dir, name)
		cmd := exec.Command(testenv.EbbBinary(t), "dev", "--node", "--dir", work, "--kubeconfig-out", filepath.Join(work, "kubeconfig"),
			"--kafka-listen", "127.0.0.1:"+strconv.Itoa(testenv.FreePort(t)))
		cmd.Dir = testenv.RepoRoot(t)
		dev := startDevProcess(t, cmd)
		dev.waitReady(t, 6*time.Minute)
		return dev, work
	}

	first, work1 := run("first")
	if err := first.stop(t, syscall.SIGKILL, time.Minute); err == nil {
		t.Fatal("the first ebb dev --node exited cleanly on SIGKILL")
	}
	// What the kubelet's pods and the host network keep after a SIGKILL: the bridge, at least.
	if _, err := os.Stat("/sys/class/net/" + localcluster.NodeBridge); err != nil {
		t.Fatalf("after SIGKILL the bridge is gone already (%v): this test no longer tests a crash", err)
	}
	// Were the next start not to clean up, the test must not leave the killed run's processes behind.
	t.Cleanup(func() {
		for _, p := range processesMentioning(t, work1) {
			if pid, err := strconv.Atoi(strings.Fields(p)[0]); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})

	second, work2 := run("second")
	if err := second.stop(t, syscall.SIGINT, 90*time.Second); err != nil {
		t.Errorf("the second ebb dev --node exited with %v on SIGINT", err)
	}
	for _, work := range []string{work1, work2} {
		for _, l := range testenv.NodeLeftovers(t, work) {
			t.Errorf("left behind: %s", l)
		}
	}
	if diff := cmp.Diff(testenv.HostSysctls(t), sysctls); diff != "" {
		t.Errorf("sysctls after both runs (-got +want):\n%s", diff)
	}
}

// An image archive without a node to load it on is refused before anything starts.
func TestDevImageArchiveNeedsNode(t *testing.T) {
	_, errOut, code := run(t, "dev", "--image-archive", "consumer.tar")
	if code == 0 || !strings.Contains(errOut, "--image-archive needs --node") {
		t.Errorf("exit %d, stderr %q; want a failure saying --image-archive needs --node", code, errOut)
	}
	if strings.Contains(errOut, "starting etcd") {
		t.Errorf("the control plane started before the flags were checked: %q", errOut)
	}
}
