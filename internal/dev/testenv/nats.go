package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// NATSServer is a nats-server a test started on loopback ports (Debian's binary, from
// hack/ensure-nats.sh), stopped when the test ends.
type NATSServer struct {
	// Name is its server name (-server_name).
	Name string
	// URL is its client URL (nats://127.0.0.1:port) and Monitor its monitoring endpoint's host:port.
	URL, Monitor string
	// Log holds what it printed.
	Log Buffer

	bin  string
	cmd  *exec.Cmd
	args []string
	t    testing.TB
	// health is the client, and scheme the scheme, of the readiness check on the monitoring endpoint.
	health *http.Client
	scheme string
}

// NATSOptions configure StartNATS.
type NATSOptions struct {
	// Name is the server name. Default: "n1".
	Name string
	// NoJetStream starts it without -js.
	NoJetStream bool
	// Args are more command-line arguments (--user, --pass, -c file, ...).
	Args []string
	// TLS, when set, makes the server require TLS of its clients, with this certificate, and serve its
	// monitoring endpoint over HTTPS only (https_port; Monitor is then an HTTPS host:port).
	TLS *ServerTLS
}

// StartNATS starts one nats-server with JetStream (unless opts say not), a monitoring endpoint and a store
// of its own, and waits until it answers. A missing nats-server fails the test; under -short it skips
// (Requires).
func StartNATS(t testing.TB, opts NATSOptions) *NATSServer {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "n1"
	}
	args := opts.Args
	if opts.TLS != nil {
		args = append(slices.Clone(args), "--tls", "--tlscert", opts.TLS.CertFile, "--tlskey", opts.TLS.KeyFile)
	}
	s := newNATS(t, opts.Name, !opts.NoJetStream, args)
	if opts.TLS != nil {
		for i, a := range s.args {
			if a == "-m" {
				s.args[i] = "-ms" // the monitoring port serves HTTPS (a server takes one of the two)
			}
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(opts.TLS.CAPEM))
		s.health = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
		s.scheme = "https"
	}
	s.start()
	return s
}

// StartNATSCluster starts n nats-servers (n1, n2, ...) with JetStream that form one cluster over
// loopback routes, and waits until JetStream has a meta leader.
func StartNATSCluster(t testing.TB, n int) []*NATSServer {
	t.Helper()
	ports := make([]int, n)
	routes := make([]string, n)
	for i := range ports {
		ports[i] = FreePort(t)
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", ports[i])
	}
	servers := make([]*NATSServer, n)
	for i := range servers {
		servers[i] = newNATS(t, fmt.Sprintf("n%d", i+1), true, []string{
			"-cluster_name", "ebb", "-cluster", routes[i], "-routes", strings.Join(routes, ","),
		})
		servers[i].start()
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if metaLeader(servers[0].Monitor) != "" {
			return servers
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the nats-server cluster elected no JetStream meta leader in 30s; log of n1:\n%s", servers[0].Log.String())
	return nil
}

func newNATS(t testing.TB, name string, js bool, extra []string) *NATSServer {
	t.Helper()
	Requires(t, "nats-server")
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nats-server"); serr != nil {
			t.Fatalf("nats-server is not installed (%v); run hack/ensure-nats.sh", err)
		}
		bin = "/usr/sbin/nats-server"
	}
	port, mport := FreePort(t), FreePort(t)
	dir := t.TempDir()
	args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(mport), "-server_name", name}
	if js {
		args = append(args, "-js", "-sd", filepath.Join(dir, "store"))
	}
	s := &NATSServer{Name: name, URL: fmt.Sprintf("nats://127.0.0.1:%d", port), Monitor: fmt.Sprintf("127.0.0.1:%d", mport),
		bin: bin, args: append(args, extra...), t: t, health: http.DefaultClient, scheme: "http"}
	t.Cleanup(s.Stop)
	return s
}

func (s *NATSServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, s.args...) //nolint:gosec // the test's own nats-server
	s.cmd.Stdout, s.cmd.Stderr = &s.Log, &s.Log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server %s: %v", s.Name, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := s.health.Get(s.scheme + "://" + s.Monitor + "/healthz"); err == nil {
			_ = resp.Body.Close()
			if c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "nats://")); err == nil {
				_ = c.Close()
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("nats-server %s did not answer in 20s; its log:\n%s", s.Name, s.Log.String())
}

// Stop kills the server (as a crash would) and waits for it to exit. It may be called more than once.
func (s *NATSServer) Stop() {
	if s.cmd == nil || s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// metaLeader is the JetStream meta leader the monitoring endpoint at addr names ("" for none yet).
func metaLeader(addr string) string {
	resp, err := http.Get("http://" + addr + "/jsz")
	if err != nil {
		return ""
	}
	defer func() { _ = resp.Body.Close() }()
	var j struct {
		Meta *struct {
			Leader string `json:"leader"`
		} `json:"meta_cluster"`
	}
	if json.NewDecoder(resp.Body).Decode(&j) != nil || j.Meta == nil {
		return ""
	}
	return j.Meta.Leader
}
