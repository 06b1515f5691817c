package cli_test

import (
	"bufio"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// devProcess is an `ebb dev` (or `ebb dev kafka`) process whose stdout is watched for its ready line.
type devProcess struct {
	cmd     *exec.Cmd
	stderr  *testenv.Buffer
	ready   chan string
	exited  chan error
	stopped bool
}

// startDevProcess starts cmd and watches its stdout for the line with "ready:". When the test ends, a
// process still running is interrupted (and killed a minute later), and its stderr is logged if the test
// failed.
func startDevProcess(t *testing.T, cmd *exec.Cmd) *devProcess {
	t.Helper()
	p := &devProcess{cmd: cmd, stderr: &testenv.Buffer{}, ready: make(chan string, 1), exited: make(chan error, 1)}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "ready:") {
				select {
				case p.ready <- sc.Text():
				default:
				}
			}
		}
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if !p.stopped {
			_ = cmd.Process.Signal(syscall.SIGINT)
			select {
			case err := <-p.exited:
				if err != nil {
					t.Logf("%v exited with %v", cmd.Args, err)
				}
			case <-time.After(time.Minute):
				_ = cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("%v stderr:\n%s", cmd.Args, p.stderr.String())
		}
	})
	return p
}

// waitReady returns the ready line; the test stops when the process exits first or limit passes.
func (p *devProcess) waitReady(t *testing.T, limit time.Duration) string {
	t.Helper()
	line, err := p.readyOrExit(t, limit)
	if err != nil {
		t.Fatalf("%v exited before it was ready: %v\nstderr:\n%s", p.cmd.Args, err, p.stderr.String())
	}
	return line
}

// readyOrExit returns the ready line, or how the process exited when it exits first (a non-nil error);
// the test stops when limit passes.
func (p *devProcess) readyOrExit(t *testing.T, limit time.Duration) (string, error) {
	t.Helper()
	select {
	case line := <-p.ready:
		return line, nil
	case err := <-p.exited:
		p.stopped = true
		if err == nil {
			err = errors.New("exit status 0")
		}
		return "", err
	case <-time.After(limit):
		t.Fatalf("%v not ready within %v\nstderr:\n%s", p.cmd.Args, limit, p.stderr.String())
	}
	return "", nil
}

// stop sends sig and returns how the process exited; the test stops when it has not exited within limit.
func (p *devProcess) stop(t *testing.T, sig syscall.Signal, limit time.Duration) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.stopped = true
		return err
	case <-time.After(limit):
		t.Fatalf("%v did not stop within %v of %v", p.cmd.Args, limit, sig)
	}
	return nil
}
