package imagebuild_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/internal/dev/imagebuild"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// needContainerd skips, or fails in CI, when this machine cannot run a containerd of its own.
func needContainerd(t *testing.T) {
	t.Helper()
	testenv.Requires(t, "containerd")
	var why string
	switch {
	case os.Geteuid() != 0:
		why = "containerd needs root"
	default:
		for _, tool := range []string{"containerd", "ctr"} {
			if _, err := exec.LookPath(tool); err != nil {
				why = tool + " is not installed (apt-get install containerd)"
			}
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// startContainerd starts a containerd with its own root, state and socket, without the CRI plugin, and
// returns its socket.
func startContainerd(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "containerd.sock")
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command("containerd", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("containerd:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if exec.Command("ctr", "-a", sock, "version").Run() == nil {
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd not answering on %s after 20s", sock)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestContainerdImport builds the pause image from its Go package and imports its tarball into a real
// containerd in the namespace the kubelet uses, as the real node does.
func TestContainerdImport(t *testing.T) {
	needContainerd(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	target, err := imagebuild.Lookup(imagebuild.Project("v0.0.0-test", "0123abc", time.Time{}), "pause")
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "pause-image.tar")
	img, err := target.WriteTarball(ctx, archive)
	if err != nil {
		t.Fatal(err)
	}
	// A docker archive carries no manifest (the importer writes its own), so the config's digest, the
	// image ID, is what identifies the image across the import.
	configDigest, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	sock := startContainerd(t)
	ctr := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, "ctr", append([]string{"-a", sock, "-n", "k8s.io"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ctr("images", "import", archive)
	ls := ctr("images", "ls")
	var line string
	for l := range strings.Lines(ls) {
		if strings.HasPrefix(l, imagebuild.PauseRef+" ") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("%s not in ctr images ls:\n%s", imagebuild.PauseRef, ls)
	}
	if out := ctr("content", "ls"); !strings.Contains(out, configDigest.String()) {
		t.Errorf("config %v not in the content store:\n%s", configDigest, out)
	}
	if out := ctr("images", "check"); !strings.Contains(out, "complete") {
		t.Errorf("ctr images check:\n%s", out)
	}
	// The layer unpacked into the default snapshotter, so a container can start from it.
	if out := ctr("snapshots", "ls"); !strings.Contains(out, "Committed") {
		t.Errorf("no committed snapshot after the import:\n%s", out)
	}

	// It runs under runc as its user, and exits 0 on SIGTERM.
	const id = "pause-test"
	run := exec.CommandContext(ctx, "ctr", "-a", sock, "-n", "k8s.io", "run", "--rm", imagebuild.PauseRef, id)
	var runOut bytes.Buffer
	run.Stdout, run.Stderr = &runOut, &runOut
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	t.Cleanup(func() {
		// After a failure: nothing may stay running or mounted in the test's directory.
		_ = exec.Command("ctr", "-a", sock, "-n", "k8s.io", "task", "kill", "-s", "SIGKILL", id).Run()
		_ = exec.Command("ctr", "-a", sock, "-n", "k8s.io", "task", "rm", "-f", id).Run()
		_ = exec.Command("ctr", "-a", sock, "-n", "k8s.io", "containers", "rm", id).Run()
	})
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(ctr("task", "ls"), "RUNNING") {
		if time.Now().After(deadline) {
			t.Fatalf("the pause container is not running after 30s:\n%s", runOut.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The task's PID is a host PID: its credentials are the image's user.
	checked := false
	for l := range strings.Lines(ctr("task", "ls")) {
		if f := strings.Fields(l); len(f) == 3 && f[0] == id {
			checked = true
			status, err := os.ReadFile("/proc/" + f[1] + "/status")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(status), "\nUid:\t65532\t") || !strings.Contains(string(status), "\nGid:\t65532\t") {
				t.Errorf("the pause process does not run as 65532:65532:\n%s", status)
			}
		}
	}
	if !checked {
		t.Errorf("no task %s in ctr task ls", id)
	}
	ctr("task", "kill", "-s", "SIGTERM", id)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the pause container after SIGTERM: %v\n%s", err, runOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("the pause container still running 30s after SIGTERM")
	}
}
