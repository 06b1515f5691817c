package testenv

import (
	"syscall"
	"testing"
)

// Freeze stops a control-plane component of the cluster (localcluster.Etcd, KubeAPIServer or
// KubeControllerManager) with SIGSTOP, as a hung process or a paused VM would, and returns the function
// that resumes it with SIGCONT. It is resumed when the test ends in any case, so the cluster can stop.
func (e *Env) Freeze(t testing.TB, component string) (resume func()) {
	t.Helper()
	pid, err := e.PID(component)
	if err != nil {
		t.Fatalf("freezing %s: %v", component, err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("freezing %s (pid %d): %v", component, pid, err)
	}
	resume = func() { _ = syscall.Kill(pid, syscall.SIGCONT) }
	t.Cleanup(resume)
	return resume
}
