package localcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// process is a component started by the cluster: kube-controller-manager, containerd, kubelet and so on.
type process struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process exits; err is set before
	err    error
}

// startProcess starts bin with args, its output going to log. The process dies with its parent (so an
// interrupted ebb dev or test binary leaves no orphan behind), and is not tied to a context: it must outlive
// a cancelled ctx until Stop stops everything in order. It fails when the process exits within settle.
func startProcess(ctx context.Context, name, bin string, args []string, log *os.File, settle time.Duration) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	select {
	case <-p.exited:
		return nil, fmt.Errorf("%s exited at start (see %s): %w", name, log.Name(), p.err)
	case <-time.After(settle):
	case <-ctx.Done():
		p.stop(time.Second)
		return nil, ctx.Err()
	}
	return p, nil
}

// running reports whether the process has not exited.
func (p *process) running() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, and SIGKILL after grace.
func (p *process) stop(grace time.Duration) {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}
