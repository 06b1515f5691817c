package testenv

import (
	"bytes"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EbbProcess is a running ebb binary, started by StartEbb.
type EbbProcess struct {
	// MetricsURL and HealthURL are the bases of its /metrics and of its /healthz and /readyz ("" when the
	// command serves none).
	MetricsURL, HealthURL string

	cmd     *exec.Cmd
	exited  chan error
	mu      sync.Mutex
	stderr  bytes.Buffer
	stopped bool
}

func (p *EbbProcess) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

// Logs is what the process wrote to stderr so far.
func (p *EbbProcess) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// StartEbb runs the ebb binary (EbbBinary) with args plus free ports of its own on 127.0.0.1: metrics,
// health and values for the commands that run the controller (`run`, `controller`), metrics for
// `metrics-apiserver`, so several can run on one machine. It is stopped when the test ends (Stop), and its
// log is printed when the test failed.
func StartEbb(t *testing.T, args ...string) *EbbProcess {
	t.Helper()
	p := &EbbProcess{exited: make(chan error, 1)}
	port := func() string { return "127.0.0.1:" + strconv.Itoa(FreePort(t)) }
	switch args[0] {
	case "run", "controller":
		metrics, health := port(), port()
		args = append(args, "--metrics-bind-address="+metrics, "--health-probe-bind-address="+health,
			"--values-bind-address="+port(), "--advertise-address=127.0.0.1")
		p.MetricsURL, p.HealthURL = "http://"+metrics, "http://"+health
	case "metrics-apiserver":
		metrics := port()
		args = append(args, "--metrics-bind-address="+metrics)
		p.MetricsURL = "http://" + metrics
	}
	p.cmd = exec.Command(EbbBinary(t), args...)
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			t.Logf("ebb %s stderr:\n%s", args[0], p.Logs())
		}
	})
	return p
}

// Stop sends SIGTERM and expects a clean exit within 30 s (then kills it). Stopping twice is a no-op.
func (p *EbbProcess) Stop(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	stopped := p.stopped
	p.stopped = true
	p.mu.Unlock()
	if stopped {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("ebb %s exited with %v on SIGTERM", strings.Join(p.cmd.Args[1:2], ""), err)
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("ebb %s did not stop within 30s of SIGTERM", strings.Join(p.cmd.Args[1:2], ""))
	}
}
