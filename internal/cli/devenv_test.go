package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// `ebb dev` starts a control plane, a Kafka broker and ebb; a ScaledConsumer applied with kubectl wakes its
// Deployment when kcat produces to the topic, and the HPA scales it further as the lag grows; the RabbitMQ
// sample scales on the local RabbitMQ, filled by `ebb load`; Ctrl-C stops every process it started.
func TestDevEnvironment(t *testing.T) {
	kcat := testenv.LookPath(t, "kcat", "hack/ensure-tools.sh")
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	kafkaPort := testenv.FreePort(t)
	cmd := exec.Command(testenv.EbbBinary(t), "dev", "--dir", filepath.Join(dir, "work"), "--kubeconfig-out", kubeconfig,
		"--kafka-listen", "127.0.0.1:"+strconv.Itoa(kafkaPort))
	dev := startDevProcess(t, cmd)
	readyLine := dev.waitReady(t, 3*time.Minute)
	t.Log(readyLine)
	if !strings.Contains(readyLine, "kubectl --kubeconfig "+kubeconfig) || !strings.Contains(readyLine, "Kafka at 127.0.0.1:"+strconv.Itoa(kafkaPort)) {
		t.Errorf("ready line %q does not say how to use it", readyLine)
	}

	kubectl := func(stdin string, args ...string) string {
		t.Helper()
		c := exec.Command(filepath.Join(controlPlaneDir(t), "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
		c.Stdin = strings.NewReader(stdin)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	kubectl(fmt.Sprintf(devManifest, kafkaPort), "apply", "-f", "-")

	replicas := func() string {
		return strings.TrimSpace(kubectl("", "get", "deployment", "consumer", "-n", "default", "-o", "jsonpath={.spec.replicas}"))
	}
	waitFor(t, 30*time.Second, "the ScaledConsumer's HPA does not appear", func() bool {
		return strings.Contains(kubectl("", "get", "hpa", "-n", "default"), "ebb-orders")
	})
	if got := replicas(); got != "0" {
		t.Fatalf("Deployment has %s replicas before any message, want 0", got)
	}
	kcatProduce := func(n int) {
		t.Helper()
		produce := exec.Command(kcat, "-b", "127.0.0.1:"+strconv.Itoa(kafkaPort), "-t", "orders", "-P")
		produce.Stdin = strings.NewReader(strings.Repeat("order\n", n))
		if out, err := produce.CombinedOutput(); err != nil {
			t.Fatalf("kcat: %v: %s", err, out)
		}
	}
	kcatProduce(5)
	waitFor(t, 60*time.Second, "the Deployment did not wake up after kcat produced", func() bool { return replicas() == "1" })
	// Nobody consumes: a lag of 35 is ceil(35/10) = 4 replicas, through ebb's metrics and the HPA.
	kcatProduce(30)
	waitFor(t, 60*time.Second, "the Deployment did not scale to 4 on a lag of 35", func() bool { return replicas() == "4" })

	// RabbitMQ, when it runs here: the sample of manifests/samples, on a queue of this test, filled by
	// `ebb load`. 120 ready messages at 50 a replica are 3 replicas.
	if !strings.Contains(readyLine, "RabbitMQ at 127.0.0.1:5672") {
		t.Fatalf("ready line %q does not mention the local RabbitMQ", readyLine)
	}
	queue := testenv.UniqueName(t, "jobs")
	sample, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "manifests", "samples", "rabbitmq.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kubectl(strings.Replace(string(sample), "queueName: jobs", "queueName: "+queue, 1), "apply", "-f", "-")
	load := exec.Command(testenv.EbbBinary(t), "load", "rabbitmq", "--url", testenv.RabbitMQURL, "--queue", queue, "--declare", "--burst", "120", "--quiet")
	if out, err := load.CombinedOutput(); err != nil || !strings.Contains(string(out), "confirmed 120, failed 0") {
		t.Fatalf("ebb load rabbitmq: %v: %s", err, out)
	}
	t.Cleanup(func() { deleteQueue(t, queue) })
	waitFor(t, 60*time.Second, "the RabbitMQ sample's Deployment did not scale to 3 on 120 messages", func() bool {
		return strings.TrimSpace(kubectl("", "get", "deployment", "jobs-consumer", "-n", "default", "-o", "jsonpath={.spec.replicas}")) == "3"
	})

	// Ctrl-C: a clean exit, and nothing left running that works in ebb dev's directory.
	if err := dev.stop(t, syscall.SIGINT, 60*time.Second); err != nil {
		t.Errorf("ebb dev exited with %v on SIGINT", err)
	}
	if left := processesMentioning(t, dir); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
}

const devManifest = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: consumer, namespace: default}
spec:
  replicas: 0
  selector: {matchLabels: {app: consumer}}
  template:
    metadata: {labels: {app: consumer}}
    spec: {containers: [{name: c, image: consumer}]}
---
apiVersion: ebb.dev/v1alpha1
kind: ScaledConsumer
metadata: {name: orders, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: consumer}
  pollingInterval: 500ms
  guard: {stalledAfterPolls: 0}  # nothing consumes here: the group is stalled by design, and must not hold scale-up
  triggers:
  - type: kafka
    metadata: {bootstrapServers: "127.0.0.1:%d", consumerGroup: workers, topic: orders, offsetResetPolicy: earliest, lagThreshold: "10"}
`

// deleteQueue deletes a RabbitMQ queue.
func deleteQueue(t *testing.T, queue string) {
	conn, err := amqp.Dial(testenv.RabbitMQURL)
	if err != nil {
		t.Errorf("deleting queue %s: %v", queue, err)
		return
	}
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	if err == nil {
		_, err = ch.QueueDelete(queue, false, false, false)
	}
	if err != nil {
		t.Errorf("deleting queue %s: %v", queue, err)
	}
}

// processesMentioning lists the processes whose command line contains s.
func processesMentioning(t *testing.T, s string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(cmdline, []byte(s)) {
			out = append(out, fmt.Sprintf("%d %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return out
}

func controlPlaneDir(t *testing.T) string {
	t.Helper()
	out, err := exec.CommandContext(context.Background(), filepath.Join(testenv.RepoRoot(t), "hack", "install-control-plane.sh")).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
