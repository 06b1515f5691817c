package testenv

import (
	"syscall"
	"testing"
	"time"
)

// Kill ends the process with SIGKILL, as a crash or an OOM kill would: no lease is released, nothing is
// flushed. It waits for the exit; Stop is then a no-op.
func (p *EbbProcess) Kill(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	stopped := p.stopped
	p.stopped = true
	p.mu.Unlock()
	if stopped {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case err := <-p.exited:
		_ = err // killed: the exit status says so and nothing else
	case <-time.After(30 * time.Second):
		t.Errorf("ebb %s (pid %d) did not exit within 30s of SIGKILL", p.cmd.Args[1], p.cmd.Process.Pid)
	}
}

// Exited reports whether the process exited by itself (Kill and Stop do not count), with its exit
// error. Once it reports true, Stop is a no-op.
func (p *EbbProcess) Exited() (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false, nil
	}
	select {
	case err := <-p.exited:
		p.stopped = true
		return true, err
	default:
		return false, nil
	}
}

// PID is the process id.
func (p *EbbProcess) PID() int { return p.cmd.Process.Pid }
