package localcluster

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
)

// The node's network. Every address is on this machine: the node's address sits on a bridge the cluster
// creates, pods get addresses on that bridge inside their own network namespaces, and cluster IPs exist
// only as kube-proxy's rewrites. The range is 198.18.0.0/15, set aside for network tests (RFC 2544), so it
// cannot be confused with a network this machine is attached to. Nothing is masqueraded or forwarded: the
// host does not route pod traffic anywhere (net.ipv4.ip_forward is left as it is, and a rule drops any
// forwarding out of the bridge), and the service range is routed onto the bridge so that a cluster IP
// without rules never leaves the machine. Pods reach the node (and, through kube-proxy's rewrites, the
// services whose endpoints are the node) but not each other through cluster IPs, which would need forwarding.
const (
	// NodeName is the name of the node the cluster runs.
	NodeName = "ebb-node"
	// NodeBridge is the bridge the pods are attached to; the node's address is on it.
	NodeBridge = "ebb0"
	// PodCIDR holds the pods' addresses; the first is the node's own.
	PodCIDR = "198.18.0.0/24"
	// ServiceCIDR holds the cluster IPs; the first is the kubernetes Service's.
	ServiceCIDR = "198.19.0.0/24"
)

var (
	// NodeIP is the node's address: kube-apiserver, the kubelet and brokers meant for pods listen on it, and
	// both pods and this machine reach it.
	NodeIP = net.IPv4(198, 18, 0, 1)
	// kubernetesServiceIP is the cluster IP of the default/kubernetes Service, the first of ServiceCIDR.
	kubernetesServiceIP = net.IPv4(198, 19, 0, 1)
)

// nodePaths are the files and directories of one node, all under its directory.
type nodePaths struct {
	dir string
}

func (p nodePaths) path(elem ...string) string {
	return filepath.Join(append([]string{p.dir}, elem...)...)
}

func (p nodePaths) containerdConfig() string { return p.path("containerd.toml") }
func (p nodePaths) containerdSocket() string { return p.path("containerd.sock") }
func (p nodePaths) cniConfDir() string       { return p.path("cni", "net.d") }
func (p nodePaths) kubeletRoot() string      { return p.path("kubelet") }
func (p nodePaths) kubeletConfig() string    { return p.path("kubelet.yaml") }
func (p nodePaths) kubeProxyConfig() string  { return p.path("kube-proxy.yaml") }
func (p nodePaths) resolvConf() string       { return p.path("resolv.conf") }

// containerdConfig is containerd's configuration: its own root, state and sockets, so it does not meet a
// containerd the machine may run; the CRI plugin with our pause image, our CNI configuration, and
// restrict_oom_score_adj (without it runc fails every sandbox here, because this machine's capability
// bounding set lacks CAP_SYS_RESOURCE and runc cannot lower oom_score_adj).
func containerdConfig(p nodePaths, sandboxImage, cniBinDir string) string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	return fmt.Sprintf(`version = 2
root = %s
state = %s
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %s

[ttrpc]
  address = %s

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %s
  restrict_oom_score_adj = true
  enable_selinux = false

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = %s
  conf_dir = %s
`, q(p.path("containerd", "root")), q(p.path("containerd", "state")), q(p.containerdSocket()),
		q(p.containerdSocket()+".ttrpc"), q(sandboxImage), q(cniBinDir), q(p.cniConfDir()))
}

// cniConfig is the pod network: the bridge, addresses from PodCIDR, no masquerading.
func cniConfig(p nodePaths) string {
	_, pods, _ := net.ParseCIDR(PodCIDR)
	conf := map[string]any{
		"cniVersion": "0.4.0",
		"name":       "ebb",
		"plugins": []any{map[string]any{
			"type":   "bridge",
			"bridge": NodeBridge,
			// Not a gateway: the node address is ours to put on the bridge (before kube-apiserver listens on
			// it), and a gateway bridge would turn on net.ipv4.ip_forward, which the host must not do.
			"isGateway":   false,
			"ipMasq":      false,
			"hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"dataDir": p.path("cni", "ipam"),
				"ranges":  [][]map[string]string{{{"subnet": pods.String(), "gateway": NodeIP.String()}}},
				"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
			},
		}},
	}
	b, _ := json.MarshalIndent(conf, "", "  ")
	return string(b)
}

// kubeletConfig is the kubelet's configuration for this machine: cgroup v1 with the cgroupfs driver (the
// kubelet would refuse cgroup v1 otherwise), no swap check, our containerd, an API on the node address
// only, no DNS for pods (an empty resolv.conf: a pod resolving a name fails at once instead of asking a
// name server off this machine), and eviction and image GC thresholds that a shared machine's disk does
// not trip.
func kubeletConfig(p nodePaths, clientCA string) string {
	sock := "unix://" + p.containerdSocket()
	return strings.Join([]string{
		"apiVersion: kubelet.config.k8s.io/v1beta1",
		"kind: KubeletConfiguration",
		"address: " + NodeIP.String(),
		"port: 10250",
		"readOnlyPort: 0",
		"healthzBindAddress: 127.0.0.1",
		"healthzPort: 10248",
		"cgroupDriver: cgroupfs",
		"failCgroupV1: false",
		"failSwapOn: false",
		"containerRuntimeEndpoint: " + sock,
		"imageServiceEndpoint: " + sock,
		"resolvConf: " + p.resolvConf(),
		"authentication:",
		"  anonymous: {enabled: false}",
		"  webhook: {enabled: true}",
		"  x509: {clientCAFile: " + clientCA + "}",
		"authorization: {mode: Webhook}",
		"serializeImagePulls: false",
		"imageGCHighThresholdPercent: 100",
		"imageGCLowThresholdPercent: 99",
		"evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}",
		"nodeStatusReportFrequency: 10s",
		"registerNode: true",
		"",
	}, "\n")
}

// kubeProxyConfig runs kube-proxy in iptables mode for cluster IPs, without touching conntrack limits
// (conntrack sysctls are the machine's) and with node ports only on the node address.
func kubeProxyConfig(kubeconfig string) string {
	return strings.Join([]string{
		"apiVersion: kubeproxy.config.k8s.io/v1alpha1",
		"kind: KubeProxyConfiguration",
		"clientConnection: {kubeconfig: " + kubeconfig + "}",
		"mode: iptables",
		"clusterCIDR: " + PodCIDR,
		"hostnameOverride: " + NodeName,
		"bindAddress: " + NodeIP.String(),
		"healthzBindAddress: 127.0.0.1:10256",
		"metricsBindAddress: 127.0.0.1:10249",
		"nodePortAddresses: [" + NodeIP.String() + "/32]",
		"iptables: {localhostNodePorts: false}",
		"conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}",
		"",
	}, "\n")
}
