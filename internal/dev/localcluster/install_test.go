package localcluster_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// hack/install-control-plane.sh provides a working control plane where there is none: into an empty cache
// directory, with KUBEBUILDER_ASSETS unset. (The Go build cache is shared with the test run, so this costs
// seconds here; from a cold Go cache it takes about six minutes.) A second run builds nothing and prints
// only the directory.
func TestInstallScriptIntoEmptyCache(t *testing.T) {
	testenv.Requires(t, "hack/install-control-plane.sh (bash, go)")
	script := filepath.Join(testenv.RepoRoot(t), "hack", "install-control-plane.sh")
	cache := t.TempDir()
	run := func() (string, string) {
		cmd := exec.CommandContext(t.Context(), script)
		cmd.Env = append(os.Environ(), "EBB_CACHE_DIR="+cache, "KUBEBUILDER_ASSETS=")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", script, err, stderr.String())
		}
		return strings.TrimSpace(stdout.String()), stderr.String()
	}
	dir, progress := run()
	t.Setenv("EBB_CACHE_DIR", cache)
	if want := localcluster.CacheDir(); dir != want {
		t.Fatalf("script printed %q, want the cache directory %q", dir, want)
	}
	if !strings.Contains(progress, "building kube-apiserver") {
		t.Errorf("first run printed no progress line; stderr: %q", progress)
	}
	again, quiet := run()
	if again != dir || quiet != "" {
		t.Errorf("second run: stdout %q stderr %q; want %q and nothing on stderr", again, quiet, dir)
	}

	c, err := localcluster.Start(t.Context(), localcluster.Options{BinDir: dir, ControllerManager: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	}()
	out, err := exec.CommandContext(t.Context(), filepath.Join(dir, "kubectl"), "--kubeconfig", c.Kubeconfig,
		"get", "crd", "scaledconsumers.ebb.dev", "-o", "jsonpath={.status.acceptedNames.kind}").CombinedOutput()
	if err != nil || string(out) != "ScaledConsumer" {
		t.Errorf("kubectl get crd: %q, %v; want ScaledConsumer", out, err)
	}
	if !c.ControllerManagerRunning() {
		t.Error("kube-controller-manager from the fresh build is not running")
	}
}
