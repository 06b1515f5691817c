package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ebbscale/ebb/internal/dev/localcluster"
)

// NodeLeftovers lists what a stopped node, whose cluster directory was dir, left on
// the host, looking for each kind of thing on its own:
// processes, mounts, cgroups, network namespaces, interfaces, iptables chains.
//
// It holds the machine-wide node lock while it looks, so a node starting meanwhile (another package's
// test) cannot be taken for a leftover.
func NodeLeftovers(t testing.TB, dir string) []string {
	t.Helper()
	release, err := localcluster.HoldHost(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var left []string
	names := map[string]bool{"containerd": true, "containerd-shim": true, "containerd-shim-runc-v2": true,
		"kubelet": true, "kube-proxy": true, "kube-scheduler": true, "pause": true}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && (names[filepath.Base(args[0])] || strings.Contains(string(cmdline), dir)) {
			left = append(left, "process "+p.Name()+": "+strings.Join(args, " "))
		}
	}
	mountinfo, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mountinfo), "\n") {
		if strings.Contains(line, dir) || strings.Contains(line, "/run/netns/cni-") || strings.Contains(line, "kubelet") {
			left = append(left, "mount: "+line)
		}
	}
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods*")
	for _, cg := range cgroups {
		left = append(left, "cgroup "+cg)
	}
	netns, _ := filepath.Glob("/run/netns/cni-*")
	for _, ns := range netns {
		left = append(left, "network namespace "+ns)
	}
	links, _ := os.ReadDir("/sys/class/net")
	for _, l := range links {
		if l.Name() == localcluster.NodeBridge || strings.HasPrefix(l.Name(), "veth") {
			left = append(left, "interface "+l.Name())
		}
	}
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		out, err := exec.Command(tool).Output()
		if err != nil {
			t.Errorf("%s: %v", tool, err)
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "KUBE-") || strings.Contains(line, "CNI-") || strings.Contains(line, "EBB-") {
				left = append(left, tool+": "+line)
			}
		}
	}
	// The node's own directory (containerd's root and state, the kubelet's): node in the cluster
	// directory, which is dir or one level below (ebb dev's --dir).
	for _, pattern := range []string{filepath.Join(dir, "node"), filepath.Join(dir, "*", "node")} {
		nodeDirs, _ := filepath.Glob(pattern)
		for _, d := range nodeDirs {
			left = append(left, "directory "+d)
		}
	}
	return left
}

// HostSysctls returns the machine's own values of the sysctls a node changes (localcluster.MachineSysctls:
// after a node that died, the values the next node restores). It holds the machine-wide node lock
// meanwhile, so another package's running node cannot be read instead of the machine.
func HostSysctls(t testing.TB) map[string]string {
	t.Helper()
	release, err := localcluster.HoldHost(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	got, err := localcluster.MachineSysctls()
	if err != nil {
		t.Fatal(err)
	}
	return got
}
