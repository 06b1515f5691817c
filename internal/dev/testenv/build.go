package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// builds holds one *goBuild per package built by GoBinary in this process.
var builds sync.Map

type goBuild struct {
	once sync.Once
	path string
	err  error
}

// RepoRoot returns the directory of ebb's go.mod, found upwards from the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// EbbBinary builds cmd/ebb once per test process and returns the binary's path.
func EbbBinary(t testing.TB) string {
	t.Helper()
	return GoBinary(t, "./cmd/ebb")
}

// GoBinary builds the main package pkg, a path from the repository root such as "./examples/consumer",
// once per test process, and returns the binary's path. Under -short it skips the test (Requires).
func GoBinary(t testing.TB, pkg string) string {
	t.Helper()
	Requires(t, "a built binary ("+pkg+")")
	root := RepoRoot(t)
	v, _ := builds.LoadOrStore(pkg, &goBuild{})
	b := v.(*goBuild)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "ebb-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", b.path, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// LookPath returns the path of an outside tool, failing the test with the script that installs it. Under
// -short it skips the test (Requires).
func LookPath(t testing.TB, tool, script string) string {
	t.Helper()
	Requires(t, tool)
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is not installed (%v); run %s", tool, err, script)
	}
	return p
}
