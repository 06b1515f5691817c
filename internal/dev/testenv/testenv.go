package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/scheme"
)

// Scheme knows the built-in types, APIService and ebb's types.
func Scheme() *runtime.Scheme { return scheme.New() }

// Env is a running local cluster with clients for it.
type Env struct {
	*localcluster.Cluster
	// Client is a controller-runtime client (no cache) with Scheme().
	Client client.Client
	// Kube is a typed clientset.
	Kube kubernetes.Interface
}

// New starts a cluster; the caller stops it with Stop. Tests use Start, or a package's Shared; New does
// not skip under -short, having no test to skip.
func New(ctx context.Context, opts localcluster.Options) (*Env, error) {
	c, err := localcluster.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	e := &Env{Cluster: c}
	if e.Client, err = client.New(c.Config, client.Options{Scheme: Scheme()}); err != nil {
		_ = c.Stop()
		return nil, err
	}
	if e.Kube, err = kubernetes.NewForConfig(c.Config); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return e, nil
}

// Start starts a cluster for the test and stops it when the test ends. When the test failed, the tail of
// each component's log is printed first. Under -short it skips the test (Requires).
func Start(t testing.TB, opts localcluster.Options) *Env {
	t.Helper()
	Requires(t, "a control plane")
	e, err := New(t.Context(), opts)
	if err != nil {
		t.Fatalf("starting local cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			e.LogTails(t, 30)
		}
		if err := e.Stop(); err != nil {
			t.Errorf("stopping local cluster: %v", err)
		}
	})
	return e
}

// LogTails prints the last n lines of every component log in the cluster directory.
func (e *Env) LogTails(t testing.TB, n int) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(e.Dir, "*.log"))
	for _, l := range logs {
		f, err := os.Open(l)
		if err != nil {
			continue
		}
		var lines []string
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if len(lines) > n {
				lines = lines[1:]
			}
		}
		_ = f.Close()
		t.Logf("--- last %d lines of %s ---\n%s", len(lines), filepath.Base(l), strings.Join(lines, "\n"))
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// Broker addresses. The defaults are where hack/setup-test-env.sh puts the servers; the EBB_* variables
// point tests elsewhere.
var (
	RabbitMQURL     = envOr("EBB_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
	RabbitMQHTTPURL = envOr("EBB_RABBITMQ_HTTP_URL", "http://guest:guest@127.0.0.1:15672/")
	NATSURL         = envOr("EBB_NATS_URL", "nats://127.0.0.1:4222")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// RequireTCP fails the test when nothing listens at addr, naming the script that provides it. Under
// -short it skips the test (Requires).
func RequireTCP(t testing.TB, what, addr, script string) {
	t.Helper()
	Requires(t, what)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("%s is not reachable at %s (%v); run %s", what, addr, err, script)
	}
	_ = conn.Close()
}

// UniqueName returns a name unique to this test run, usable as a queue, topic or stream name.
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%x", prefix, b)
}
