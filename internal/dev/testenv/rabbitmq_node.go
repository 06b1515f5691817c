package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// RabbitMQNode is a rabbitmq-server a test started for itself (the package's Erlang node, from
// hack/ensure-rabbitmq.sh): its own node name, AMQP and distribution ports on loopback, data directory,
// Erlang cookie and configuration, so that stopping it touches nothing another test uses. It runs
// without plugins (AMQP only) and is killed when the test ends.
type RabbitMQNode struct {
	// Name is its Erlang node name (ebbtest-<random>@localhost).
	Name string
	// URL is its AMQP URL, guest:guest on 127.0.0.1.
	URL string
	// Log holds what it printed (its log goes to standard output).
	Log Buffer

	t    testing.TB
	bin  string
	env  []string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// rabbitMQScript is where Debian's package keeps the server's own start script; /usr/sbin/rabbitmq-server
// is a wrapper that, run as root, switches to the rabbitmq user, which cannot write in a test's directory.
const rabbitMQScript = "/usr/lib/rabbitmq/bin/rabbitmq-server"

// rabbitMQBoot bounds one start: a boot takes seconds on an idle machine and well over ten on a loaded one.
const rabbitMQBoot = 3 * time.Minute

// StartRabbitMQNode starts a rabbitmq-server of the test's own and waits until it accepts AMQP
// connections. A missing rabbitmq-server fails the test; under -short it skips (Requires).
func StartRabbitMQNode(t testing.TB) *RabbitMQNode {
	t.Helper()
	Requires(t, "rabbitmq-server")
	bin, err := rabbitMQServerScript()
	if err != nil {
		t.Fatalf("%v; run hack/ensure-rabbitmq.sh", err)
	}
	dir := t.TempDir()
	port, dist := FreePort(t), FreePort(t)
	n := &RabbitMQNode{
		Name: UniqueName(t, "ebbtest") + "@localhost",
		URL:  fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", port),
		t:    t, bin: bin,
	}
	conf := filepath.Join(dir, "rabbitmq.conf")
	files := map[string]string{
		conf:                                    fmt.Sprintf("listeners.tcp.1 = 127.0.0.1:%d\ndisk_free_limit.absolute = 10MB\n", port),
		filepath.Join(dir, "enabled_plugins"):   "[].\n",
		filepath.Join(dir, "rabbitmq-env.conf"): "",
	}
	for name, body := range files {
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n.env = append(os.Environ(),
		"HOME="+dir, // the Erlang cookie: the node's own, in dir
		"RABBITMQ_NODENAME="+n.Name,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(dist),
		"RABBITMQ_CONFIG_FILE="+conf,
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_LOGS=-",
		// Distribution on loopback only; schedulers that sleep when idle rather than spin, which on a
		// small shared machine leaves the CPU to the rest of the test.
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1} +sbwt none +sbwtdcpu none +sbwtdio none",
		"ERL_EPMD_ADDRESS=127.0.0.1",
		// The script then execs the Erlang VM rather than waiting on it in a shell, so the process the
		// test holds is the server itself: SIGTERM stops it cleanly and Pdeathsig reaches it.
		"RUNNING_UNDER_SYSTEMD=true",
		"NOTIFY_SOCKET=",
	)
	t.Cleanup(n.kill)
	n.Start()
	return n
}

// rabbitMQServerScript finds the server's start script: Debian's, or the one rabbitmq-server on PATH
// resolves to.
func rabbitMQServerScript() (string, error) {
	if _, err := os.Stat(rabbitMQScript); err == nil {
		return rabbitMQScript, nil
	}
	p, err := exec.LookPath("rabbitmq-server")
	if err != nil {
		return "", fmt.Errorf("rabbitmq-server is not installed: %w", err)
	}
	return filepath.EvalSymlinks(p)
}

// Start starts the node (again, after Stop, with the same name, ports and data: durable queues and
// persistent messages are still there) and waits until an AMQP client can open a channel on it.
func (n *RabbitMQNode) Start() {
	n.t.Helper()
	cmd := exec.Command(n.bin) //nolint:gosec // the test's own rabbitmq-server
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = &n.Log, &n.Log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("start rabbitmq-server %s: %v", n.Name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	n.cmd, n.done = cmd, done
	began := time.Now()
	var err error
	for deadline := began.Add(rabbitMQBoot); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case <-done:
			n.t.Fatalf("rabbitmq-server %s exited while starting (%v); its log:\n%s", n.Name, cmd.ProcessState, n.Log.String())
		default:
		}
		if err = n.ready(); err == nil {
			n.t.Logf("rabbitmq-server %s accepts AMQP on %s after %s", n.Name, n.URL, time.Since(began).Round(100*time.Millisecond))
			return
		}
	}
	n.t.Fatalf("rabbitmq-server %s did not accept AMQP in %s (%v); its log:\n%s", n.Name, rabbitMQBoot, err, n.Log.String())
}

// ready dials the node and opens a channel.
func (n *RabbitMQNode) ready() error {
	conn, err := amqp.DialConfig(n.URL, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	return ch.Close()
}

// Stop stops the node as an operator's SIGTERM would (it closes every connection and writes its queues
// to disk) and waits until it has exited; after a minute it is killed. Calling it on a stopped node does
// nothing.
func (n *RabbitMQNode) Stop() {
	n.t.Helper()
	if n.cmd == nil {
		return
	}
	began := time.Now()
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		n.t.Logf("rabbitmq-server %s stopped in %s", n.Name, time.Since(began).Round(100*time.Millisecond))
	case <-time.After(time.Minute):
		n.t.Errorf("rabbitmq-server %s did not stop within a minute of SIGTERM; killing it", n.Name)
	}
	n.kill()
}

// kill kills the node's process group (the VM and its helpers) and waits for the VM to exit. Its
// registration with epmd goes with its connection to epmd.
func (n *RabbitMQNode) kill() {
	if n.cmd == nil {
		return
	}
	if err := syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		n.t.Logf("killing rabbitmq-server %s: %v", n.Name, err)
	}
	<-n.done
	n.cmd, n.done = nil, nil
}
