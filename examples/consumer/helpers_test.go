package main

import (
	"context"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// process is the consumer running as a subprocess.
type process struct {
	cmd  *exec.Cmd
	out  *testenv.Buffer
	done chan error
}

func startProcess(t *testing.T, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(testenv.GoBinary(t, "./examples/consumer"), args...), out: &testenv.Buffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("consumer %v output:\n%s", args, p.out.String())
		}
	})
	return p
}

// terminate sends SIGTERM and requires exit code 0 within the grace period Kubernetes gives by default.
func (p *process) terminate(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30s after SIGTERM:\n%s", p.out.String())
	}
	return time.Since(start)
}

// runInProcess runs the consumer until the returned stop is called, which waits for it and fails the
// test on an error.
func runInProcess(t *testing.T, cfg config) (out *testenv.Buffer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out = &testenv.Buffer{}
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, cfg, out) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("run: %v\n%s", err, out.String())
			}
		})
	}
	t.Cleanup(stop)
	return out, stop
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tally counts the messages of a results or dead-letter sink by key; readers add to it in the background.
type tally struct {
	mu       sync.Mutex
	messages int
	keys     map[string]int
}

func newTally() *tally { return &tally{keys: map[string]int{}} }

func (r *tally) add(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.messages++
	r.keys[key]++
}

func (r *tally) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys)
}

func (r *tally) snapshot() (messages int, keys map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys = make(map[string]int, len(r.keys))
	for k, v := range r.keys {
		keys[k] = v
	}
	return r.messages, keys
}

func keysN(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = prefix + "-" + strconv.Itoa(i)
	}
	return keys
}

// checkOutcomes requires every key in exactly one of results and dead letters, each result once (the
// duplicates skipped), and about failRatio of the keys dead-lettered.
func checkOutcomes(t *testing.T, keys []string, results, deadLetters *tally, failRatio float64) {
	t.Helper()
	nResults, resultKeys := results.snapshot()
	_, dlqKeys := deadLetters.snapshot()
	for _, k := range keys {
		_, inResults := resultKeys[k]
		_, inDLQ := dlqKeys[k]
		if inResults == inDLQ {
			t.Errorf("key %s: in results %v, in dead letters %v; want exactly one", k, inResults, inDLQ)
		}
	}
	if nResults != len(resultKeys) {
		t.Errorf("%d results for %d keys: a duplicate was processed again", nResults, len(resultKeys))
	}
	if share := float64(len(dlqKeys)) / float64(len(keys)); share < failRatio-0.1 || share > failRatio+0.1 {
		t.Errorf("%.2f of the messages dead-lettered, want about %.2f", share, failRatio)
	}
}
