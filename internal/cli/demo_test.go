package cli_test

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// timelineLine is a line of the demo's live timeline: time, backlog, HPA desired, replicas, pods Running
// ("-" when simulated), consumers.
var timelineLine = regexp.MustCompile(`^\s*(\d+)s\s+(\d+)\s+(-|\d+)\s+(\d+)\s+(-|\d+)\s+(\d+)\b`)

// `ebb dev --demo --node` where no node can run (here: outside a checkout of ebb, whose source the node's
// images are built from; elsewhere also without root), made quicker by its flags (a smaller burst, faster
// consumers, a 3 s cooldown), says in one line why it has no node and that the demo simulates its
// consumers, and runs to completion: exit 0, a timeline that goes from 0 replicas to more than one and
// back to 0 with the backlog drained, ebb's two decisions on the way, an SVG that is well-formed XML, and
// no process left.
func TestDevDemo(t *testing.T) {
	dir := t.TempDir()
	svg := filepath.Join(dir, "out", "timeline.svg")
	cmd := quickDemo(t, dir, svg, "--node")
	cmd.Dir = dir // not a checkout of ebb
	out, errOut := runDemo(t, cmd, 6*time.Minute)
	t.Logf("stdout:\n%s", out)

	var replicas []int
	var lastBacklog int
	for line := range strings.Lines(out) {
		m := timelineLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		r, _ := strconv.Atoi(m[4])
		lastBacklog, _ = strconv.Atoi(m[2])
		replicas = append(replicas, r)
	}
	peak := 0
	for _, r := range replicas {
		peak = max(peak, r)
	}
	if len(replicas) == 0 || replicas[0] != 0 || peak < 2 || replicas[len(replicas)-1] != 0 || lastBacklog != 0 {
		t.Errorf("replicas over the timeline: %v, last backlog %d; want 0 first, a peak above 1, 0 last with no backlog", replicas, lastBacklog)
	}
	if !strings.Contains(out, "ebb Activated:") || !strings.Contains(out, "ebb CooledDown:") {
		t.Errorf("the timeline does not show ebb's decisions (Activated, CooledDown)")
	}
	if n := strings.Count(errOut, "ebb dev: no node, so no pods:"); n != 1 || !strings.Contains(errOut, "and the demo simulates its consumers\n") {
		t.Errorf("stderr says %d times why there is no node, want once, with the demo simulating its consumers:\n%s", n, errOut)
	}
	for _, want := range []string{"the consumers are simulated: no kubelet", "applied manifests/samples/kafka.yaml", "the broker confirmed all 600 messages", "timeline written to " + svg} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout does not say %q", want)
		}
	}

	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	var root string
	polylines := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", svg, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			if se.Name.Local == "polyline" {
				polylines++
			}
		}
	}
	if root != "svg" || polylines != 4 {
		t.Errorf("%s: root <%s> with %d polylines, want <svg> with 4 (backlog, consumers, replicas, HPA desired)", svg, root, polylines)
	}
	if left := processesMentioning(t, dir); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
}

// `ebb dev --demo --node` (what make demo runs) runs the consumers as pods of the example consumer on a
// real node: the timeline shows pods Running during the burst, and ends with the Deployment at 0, no
// backlog, no pod Running and no member left in the consumer group; ebb dev exits 0 and leaves no process behind. Only one node runs on a
// machine at a time: this waits for another test's node to stop.
func TestDevDemoNode(t *testing.T) {
	testenv.RequireNode(t)
	dir := t.TempDir()
	svg := filepath.Join(dir, "timeline.svg")
	cmd := quickDemo(t, dir, svg, "--node")
	cmd.Dir = testenv.RepoRoot(t) // the node's images build from this checkout
	start := time.Now()
	out, _ := runDemo(t, cmd, 15*time.Minute) // another node test may hold the machine's node first
	t.Logf("ebb dev --demo --node took %s; stdout:\n%s", time.Since(start).Round(time.Second), out)

	type row struct{ backlog, replicas, pods, consumers int }
	var rows []row
	for line := range strings.Lines(out) {
		m := timelineLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if m[5] == "-" {
			t.Fatalf("timeline line without pods: %q", line)
		}
		var r row
		r.backlog, _ = strconv.Atoi(m[2])
		r.replicas, _ = strconv.Atoi(m[4])
		r.pods, _ = strconv.Atoi(m[5])
		r.consumers, _ = strconv.Atoi(m[6])
		rows = append(rows, r)
	}
	// During the burst: pods Running while a backlog remains, more than one at once at some point.
	maxPods := 0
	for _, r := range rows {
		if r.backlog > 0 {
			maxPods = max(maxPods, r.pods)
		}
	}
	if maxPods < 2 {
		t.Errorf("at most %d pods Running while a backlog remained, want 2 or more: %+v", maxPods, rows)
	}
	if len(rows) == 0 || rows[0] != (row{}) || rows[len(rows)-1] != (row{}) {
		t.Errorf("timeline rows %+v; want the first and the last with no backlog, 0 replicas, 0 pods, 0 consumers", rows)
	}
	for _, want := range []string{"the consumers are pods", "ebb.local/consumer:", "ebb Activated:", "ebb CooledDown:",
		"the broker confirmed all 600 messages", "pods Running), back to 0 at", "timeline written to " + svg} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout does not say %q", want)
		}
	}
	if strings.Contains(out, "simulated") {
		t.Errorf("stdout mentions simulated consumers, with a node")
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`<polyline id="pods"`)) {
		t.Errorf("%s has no pods polyline", svg)
	}
	if left := processesMentioning(t, dir); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
}

// quickDemo is `ebb dev --demo` made quicker by its flags (a smaller burst, faster consumers, a 3 s
// cooldown), working in dir and drawing svg; its broker takes a free port.
func quickDemo(t *testing.T, dir, svg string, args ...string) *exec.Cmd {
	return exec.Command(testenv.EbbBinary(t), append([]string{"dev", "--demo", "--dir", filepath.Join(dir, "work"),
		"--kubeconfig-out", filepath.Join(dir, "kubeconfig"), "--demo-burst", "600", "--demo-consume-rate", "50",
		"--demo-cooldown", "3s", "--demo-timeout", "4m", "--demo-svg", svg}, args...)...)
}

// runDemo runs cmd to its end and returns its stdout and stderr. The test stops when it fails or does not
// exit within limit (it is then interrupted, and killed a minute later), with both in the log.
func runDemo(t *testing.T, cmd *exec.Cmd, limit time.Duration) (stdout, stderr string) {
	t.Helper()
	var out, errOut testenv.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("%v: %v", cmd.Args, err)
		}
	case <-time.After(limit):
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-exited:
			t.Errorf("%v did not finish within %v (interrupted: %v)", cmd.Args, limit, err)
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			t.Errorf("%v did not finish within %v, nor stop on SIGINT (killed: %v)", cmd.Args, limit, <-exited)
		}
	}
	if t.Failed() {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

// Ctrl-C in the middle of the demo, with consumers running: a clean exit, the picture of what was seen,
// and no process left.
func TestDevDemoInterrupted(t *testing.T) {
	dir := t.TempDir()
	svg := filepath.Join(dir, "timeline.svg")
	cmd := exec.Command(testenv.EbbBinary(t), "dev", "--demo", "--dir", filepath.Join(dir, "work"),
		"--kubeconfig-out", filepath.Join(dir, "kubeconfig"), "--demo-svg", svg)
	var stdout, stderr testenv.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			t.Logf("ebb dev --demo killed: %v", <-exited)
		}
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	})
	// Interrupted once a row of the timeline shows replicas (the event that says ebb woke the Deployment
	// can come a row before the Deployment is seen at 1).
	waitFor(t, 3*time.Minute, "the demo did not wake the Deployment", func() bool {
		for _, line := range strings.Split(stdout.String(), "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && strings.HasSuffix(f[0], "s") && f[3] != "0" && f[3] != "replicas" {
				if _, err := strconv.Atoi(f[3]); err == nil {
					return true
				}
			}
		}
		return false
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("ebb dev --demo exited with %v on SIGINT", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("ebb dev --demo did not stop within 60s of SIGINT")
	}
	if out := stdout.String(); !strings.Contains(out, "not back to 0") || !strings.Contains(out, "timeline written to "+svg) {
		t.Errorf("stdout does not end with the partial timeline's summary and picture:\n%s", out)
	}
	if _, err := os.Stat(svg); err != nil {
		t.Error(err)
	}
	if left := processesMentioning(t, dir); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
}

// Garbage in the demo's flags is refused before anything starts, naming each flag.
func TestDevDemoRejectsBadFlags(t *testing.T) {
	_, errOut, code := run(t, "dev", "--demo", "--demo-burst", "-5", "--demo-consume-rate", "NaN", "--demo-cooldown", "-1s", "--demo-timeout", "0s", "--kafka-listen", "garbage")
	for _, want := range []string{"--demo-burst must be at least 1", "--demo-consume-rate must be a number above 0", "--demo-cooldown must not be negative", "--demo-timeout must be above 0", "--kafka-listen"} {
		if code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("exit %d, stderr %q; want a failure saying %q", code, errOut, want)
		}
	}
	if strings.Contains(errOut, "starting etcd") {
		t.Errorf("the control plane started before the flags were checked: %q", errOut)
	}
}

func TestDevDemoNeedsKafka(t *testing.T) {
	_, errOut, code := run(t, "dev", "--demo", "--kafka-listen", "0")
	if code == 0 || !strings.Contains(errOut, "--demo needs the Kafka broker") {
		t.Errorf("exit %d, stderr %q; want a failure saying --demo needs the Kafka broker", code, errOut)
	}
}

// `ebb dev --demo | head`: once the reader of its output has gone, ebb dev stops as on Ctrl-C and leaves
// no process behind (by default a Go program dies of SIGPIPE on such a write, orphaning etcd and
// kube-apiserver).
func TestDevDemoOutputClosed(t *testing.T) {
	dir := t.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.EbbBinary(t), "dev", "--demo", "--dir", filepath.Join(dir, "work"),
		"--kubeconfig-out", filepath.Join(dir, "kubeconfig"), "--demo-svg", filepath.Join(dir, "timeline.svg"))
	var stderr testenv.Buffer
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = w.Close() // the child holds its own copy
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			t.Logf("ebb dev --demo killed: %v", <-exited)
		}
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	})
	// Read until the timeline starts, as `head` would, then go away.
	sc := bufio.NewScanner(r)
	for sc.Scan() && !strings.Contains(sc.Text(), "backlog") {
	}
	_ = r.Close()
	select {
	case err := <-exited:
		// Exit status is not asserted: the demo was cut short, which it reports as a failure.
		t.Logf("ebb dev --demo exited: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("ebb dev --demo still runs 90s after the reader of its output went away")
	}
	if left := processesMentioning(t, dir); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
}
