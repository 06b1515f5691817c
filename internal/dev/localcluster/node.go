package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// NodeOptions configures the real node a cluster can run: containerd and runc, the kubelet, kube-scheduler
// and kube-proxy, with a pod network of its own (see PodCIDR). It needs root and Linux.
type NodeOptions struct {
	// ImageArchives are loaded into containerd before the kubelet starts: docker (`docker save`) or OCI
	// archives. Pods run them with imagePullPolicy Never or IfNotPresent; nothing is ever pulled.
	ImageArchives []string
	// SandboxImage is the pause image every pod's sandbox runs; it must be in ImageArchives. Required.
	SandboxImage string
}

// ErrNodeUnsupported is returned when this machine cannot run a node: not root, not Linux, or a binary is
// missing. Its message says what to do.
var ErrNodeUnsupported = errors.New("cannot run a node here")

// Node is the running node of a cluster.
type Node struct {
	// Name is the Node object's name (NodeName).
	Name string
	// ContainerdSocket is the address of the node's containerd, for `ctr -a`.
	ContainerdSocket string

	paths      nodePaths
	binDir     string
	host       *hostNetwork
	clientCA   string       // the CA kubelet trusts for client certificates (kube-apiserver's kubelet client)
	serving    servingFiles // kube-apiserver's serving CA and the service-account signing key
	containerd *process
	kubelet    *process
	scheduler  *process
	proxy      *process
	logs       func(name string) (*os.File, error)
}

// nodeBinaries are what a node needs besides the control plane: from the cache, and from Debian.
var (
	nodeKubeBinaries = []string{"kubelet", "kube-scheduler", "kube-proxy"}
	nodeHostBinaries = []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "iptables-save", "iptables-restore", "ip"}
	cniBinDir        = "/usr/lib/cni"
)

// CheckNode says why this machine cannot run a node with the binaries in binDir (an error wrapping
// ErrNodeUnsupported that says what to do), or nil.
func CheckNode(binDir string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: a node needs root (containerd, the kubelet and the pod network change the host)", ErrNodeUnsupported)
	}
	var missing []string
	for _, b := range nodeKubeBinaries {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			missing = append(missing, filepath.Join(binDir, b))
		}
	}
	for _, b := range nodeHostBinaries {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	for _, b := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, b)); err != nil {
			missing = append(missing, filepath.Join(cniBinDir, b))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s; run hack/ensure-node.sh (or make tools)", ErrNodeUnsupported, strings.Join(missing, ", "))
	}
	return nil
}

// prepareNode claims the host (one node per machine at a time; a second waits), cleans up after a run
// that died, and creates the bridge, so that kube-apiserver can listen on the node address.
func prepareNode(ctx context.Context, c *Cluster, opts *NodeOptions) (*Node, error) {
	if err := CheckNode(c.BinDir); err != nil {
		return nil, err
	}
	if opts.SandboxImage == "" {
		return nil, errors.New("NodeOptions.SandboxImage is required")
	}
	n := &Node{Name: NodeName, paths: nodePaths{dir: filepath.Join(c.Dir, "node")}, binDir: c.BinDir, logs: c.createLog}
	n.ContainerdSocket = n.paths.containerdSocket()
	host, err := claimHost(ctx, n.paths.dir)
	if err != nil {
		return nil, err
	}
	n.host = host
	for _, d := range []string{n.paths.cniConfDir(), n.paths.kubeletRoot(), n.paths.path("containerd")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return n, err
		}
	}
	kubeletClient, err := writeKubeletClientPKI(n.paths.dir)
	if err != nil {
		return n, err
	}
	n.clientCA = kubeletClient.CA
	c.kubeletClient = kubeletClient
	return n, nil
}

// configureAPIServer makes kube-apiserver listen on the node address (where pods reach it, through the
// kubernetes Service, and so does this machine) with a serving certificate that names that address and
// the Service's cluster IP.
func (n *Node) configureAPIServer(api *envtest.APIServer, port int) error {
	if port == 0 {
		l, err := net.Listen("tcp", net.JoinHostPort(NodeIP.String(), "0"))
		if err != nil {
			return fmt.Errorf("finding a port on the node address: %w", err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
	}
	api.SecureServing.Address = NodeIP.String()
	api.SecureServing.Port = strconv.Itoa(port)
	api.CertDir = n.paths.path("apiserver-pki")
	if err := os.MkdirAll(api.CertDir, 0o700); err != nil {
		return err
	}
	files, caPEM, err := writeServingPKI(api.CertDir, []net.IP{NodeIP, kubernetesServiceIP})
	if err != nil {
		return fmt.Errorf("kube-apiserver serving certificate: %w", err)
	}
	n.serving = files
	// envtest makes its own serving certificate only when the directory has none, and then its clients
	// trust its CA; with ours, they must trust ours.
	api.SecureServing.CA = caPEM
	return nil
}

// apiServerArgs are kube-apiserver's flags for a cluster with a node.
func (n *Node) apiServerArgs(args *envtest.Arguments, kubeletClient kubeletClientFiles) {
	args.Set("service-cluster-ip-range", ServiceCIDR)
	args.Set("authorization-mode", "Node", "RBAC")
	// envtest turns the ServiceAccount admission plugin off (it runs no controller-manager); pods need it.
	args.Set("disable-admission-plugins", "")
	args.Set("enable-admission-plugins", "NodeRestriction")
	args.Set("kubelet-preferred-address-types", "InternalIP")
	args.Set("kubelet-client-certificate", kubeletClient.Cert)
	args.Set("kubelet-client-key", kubeletClient.Key)
	args.Set("allow-privileged", "true")
}

// controllerManagerArgs are kube-controller-manager's extra flags when a node runs: every controller but
// node IPAM (the pod network hands out addresses itself), and the files the service-account and root-CA
// controllers need.
func (n *Node) controllerManagerArgs() []string {
	return []string{
		"--controllers=*,-nodeipam",
		"--root-ca-file=" + n.serving.CA,
		"--service-account-private-key-file=" + n.serving.SAKey,
		"--service-cluster-ip-range=" + ServiceCIDR,
	}
}

// start runs containerd (and loads the images), the kubelet, kube-scheduler and kube-proxy, and waits
// until the node is Ready.
func (n *Node) start(ctx context.Context, c *Cluster, opts *NodeOptions) error {
	if err := writeNodeFiles(n.paths, opts.SandboxImage, n.clientCA); err != nil {
		return err
	}
	log, err := n.logs("containerd.log")
	if err != nil {
		return err
	}
	if n.containerd, err = startProcess(ctx, "containerd", "containerd", []string{"--config", n.paths.containerdConfig()}, log, 0); err != nil {
		return err
	}
	if err := waitForSocket(ctx, n.containerd, n.paths.containerdSocket(), log.Name()); err != nil {
		return err
	}
	for _, a := range opts.ImageArchives {
		if err := n.LoadImage(ctx, a); err != nil {
			return err
		}
	}

	users := map[string]envtest.User{
		"kubelet":        {Name: "system:node:" + NodeName, Groups: []string{"system:nodes"}},
		"kube-scheduler": {Name: "system:kube-scheduler"},
		"kube-proxy":     {Name: "system:kube-proxy"},
	}
	kubeconfigs := map[string]string{}
	for name, u := range users {
		user, err := c.env.AddUser(u, nil)
		if err != nil {
			return fmt.Errorf("adding user %s: %w", u.Name, err)
		}
		kc, err := user.KubeConfig()
		if err != nil {
			return err
		}
		kubeconfigs[name] = n.paths.path(name + ".kubeconfig")
		if err := os.WriteFile(kubeconfigs[name], kc, 0o600); err != nil {
			return err
		}
	}
	if err := os.WriteFile(n.paths.kubeProxyConfig(), []byte(kubeProxyConfig(kubeconfigs["kube-proxy"])), 0o600); err != nil {
		return err
	}

	start := func(name string, args ...string) (*process, error) {
		log, err := n.logs(name + ".log")
		if err != nil {
			return nil, err
		}
		return startProcess(ctx, name, filepath.Join(n.binDir, name), args, log, 300*time.Millisecond)
	}
	if n.kubelet, err = start("kubelet",
		"--config="+n.paths.kubeletConfig(),
		"--kubeconfig="+kubeconfigs["kubelet"],
		"--root-dir="+n.paths.kubeletRoot(),
		"--hostname-override="+NodeName,
		"--node-ip="+NodeIP.String(),
		"--v=1",
	); err != nil {
		return err
	}
	if n.scheduler, err = start("kube-scheduler",
		"--kubeconfig="+kubeconfigs["kube-scheduler"],
		"--authentication-kubeconfig="+kubeconfigs["kube-scheduler"],
		"--authorization-kubeconfig="+kubeconfigs["kube-scheduler"],
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=0",
	); err != nil {
		return err
	}
	if n.proxy, err = start("kube-proxy", "--config="+n.paths.kubeProxyConfig()); err != nil {
		return err
	}
	return n.waitReady(ctx, c)
}

// waitReady waits until the Node object says Ready, failing early when a component exits.
func (n *Node) waitReady(ctx context.Context, c *Cluster) error {
	kube, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	last := "not registered"
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, p := range []*process{n.containerd, n.kubelet, n.scheduler, n.proxy} {
			if !p.running() {
				return false, fmt.Errorf("%s exited (see %s): %w", p.name, c.Dir, p.err)
			}
		}
		node, err := kube.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				last = fmt.Sprintf("Ready=%s %s: %s", cond.Status, cond.Reason, cond.Message)
				return cond.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("node %s not Ready (%s): %w (logs in %s)", NodeName, last, err, c.Dir)
	}
	return nil
}

// LoadImage imports a docker or OCI image archive into the node's containerd, where the kubelet finds it.
func (n *Node) LoadImage(ctx context.Context, archive string) error {
	out, err := exec.CommandContext(ctx, "ctr", "--address", n.ContainerdSocket, "--namespace", "k8s.io",
		"images", "import", "--no-unpack=false", archive).CombinedOutput()
	if err != nil {
		return fmt.Errorf("loading image archive %s: %w: %s", archive, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// stop stops the node's processes and removes every pod sandbox (their containers, network namespaces
// and veths), then cleans up what remains on the host. Errors are joined; it does all it can.
func (n *Node) stop() error {
	var errs []error
	n.proxy.stop(5 * time.Second)
	n.scheduler.stop(5 * time.Second)
	n.kubelet.stop(10 * time.Second)
	if n.containerd.running() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := removeAllSandboxes(ctx, n.ContainerdSocket); err != nil {
			errs = append(errs, fmt.Errorf("removing pod sandboxes: %w", err))
		}
		cancel()
	}
	n.containerd.stop(10 * time.Second)
	n.proxy, n.scheduler, n.kubelet, n.containerd = nil, nil, nil, nil
	return errors.Join(errs...)
}

// release undoes what the node changed on the host (see hostNetwork.release) and gives the host up for
// the next node. Called last, after kube-apiserver, which listens on the node address, has stopped.
func (n *Node) release() error {
	if n.host == nil {
		return nil
	}
	err := n.host.release()
	n.host = nil
	return err
}

// waitForSocket waits for a unix socket to accept connections, failing when p exits.
func waitForSocket(ctx context.Context, p *process, path, log string) error {
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		if !p.running() {
			return false, fmt.Errorf("%s exited (see %s): %w", p.name, log, p.err)
		}
		_, err := os.Stat(path)
		return err == nil, nil
	})
}

// writeNodeFiles writes containerd's, the CNI's and the kubelet's configuration.
func writeNodeFiles(p nodePaths, sandboxImage, clientCA string) error {
	files := map[string]string{
		p.containerdConfig():                             containerdConfig(p, sandboxImage, cniBinDir),
		filepath.Join(p.cniConfDir(), "10-ebb.conflist"): cniConfig(p),
		p.kubeletConfig():                                kubeletConfig(p, clientCA),
		p.resolvConf():                                   "# no name servers: pods on this node resolve no names\n",
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}
