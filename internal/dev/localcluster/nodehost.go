package localcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// hostStateDir keeps what a node must find again to undo its changes, even after the process that made
// them died: the lock that makes one node per machine, the sysctls as they were, the node directory of
// the run. It is on tmpfs, like the sysctls themselves, so a reboot forgets both.
const hostStateDir = "/run/ebb-node"

// NodeSysctls are the kernel settings the kubelet and kube-proxy may change; a node saves them before it
// starts and restores them when it stops (or, after a run that died, when the next node starts).
var NodeSysctls = []string{
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"kernel/panic",
	"kernel/panic_on_oops",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
	"net/ipv4/ip_forward",
	"net/ipv4/conf/all/route_localnet",
	"net/bridge/bridge-nf-call-iptables",
	"net/bridge/bridge-nf-call-ip6tables",
	"net/netfilter/nf_conntrack_max",
}

// forwardChain is ours: it drops anything the host would forward into or out of the pod bridge, so no pod
// packet is ever routed off this machine, whatever net.ipv4.ip_forward says.
const forwardChain = "EBB-NODE-FORWARD"

// hostNetwork is the host side of a node: the claim on the machine and what was changed on it.
type hostNetwork struct {
	lock    *os.File
	nodeDir string
}

// claimHost waits for the machine-wide node lock, cleans up after a node whose process died, saves the
// sysctls, and creates the bridge with the node address, the service route and the forwarding guard.
func claimHost(ctx context.Context, nodeDir string) (*hostNetwork, error) {
	lock, err := lockHost(ctx)
	if err != nil {
		return nil, err
	}
	h := &hostNetwork{lock: lock, nodeDir: nodeDir}
	// A previous run that died left its node directory's name here, and maybe its sysctls.
	if prev, err := os.ReadFile(filepath.Join(hostStateDir, "node-dir")); err == nil {
		_ = cleanupHost(strings.TrimSpace(string(prev)))
	} else {
		_ = cleanupHost("")
	}
	if err := saveSysctls(); err != nil {
		h.releaseLock()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(hostStateDir, "node-dir"), []byte(nodeDir+"\n"), 0o600); err != nil {
		h.releaseLock()
		return nil, err
	}
	if err := setUpBridge(); err != nil {
		_ = h.release()
		return nil, err
	}
	return h, nil
}

// lockHost takes the machine-wide node lock, waiting while another node runs.
func lockHost(ctx context.Context) (*os.File, error) {
	if err := os.MkdirAll(hostStateDir, 0o700); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(hostStateDir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return lock, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = lock.Close()
			return nil, fmt.Errorf("locking %s: %w", lock.Name(), err)
		}
		select {
		case <-ctx.Done():
			_ = lock.Close()
			return nil, fmt.Errorf("waiting for another node on this machine to stop: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// HoldHost takes the machine-wide node lock, so that no node starts until release is called: a test
// checking what a stopped node left behind holds it, lest it see the next node's processes.
func HoldHost(ctx context.Context) (release func(), err error) {
	lock, err := lockHost(ctx)
	if err != nil {
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
		_ = lock.Close()
	}, nil
}

func setUpBridge() error {
	steps := [][]string{
		{"ip", "link", "add", NodeBridge, "type", "bridge"},
		{"ip", "addr", "add", NodeIP.String() + "/24", "dev", NodeBridge},
		{"ip", "link", "set", NodeBridge, "up"},
		{"ip", "route", "add", ServiceCIDR, "dev", NodeBridge},
		{"iptables", "-w", "-N", forwardChain},
		{"iptables", "-w", "-A", forwardChain, "-i", NodeBridge, "!", "-o", NodeBridge, "-j", "DROP"},
		{"iptables", "-w", "-A", forwardChain, "-o", NodeBridge, "!", "-i", NodeBridge, "-j", "DROP"},
		{"iptables", "-w", "-I", "FORWARD", "1", "-j", forwardChain},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("setting up the pod network: %s: %w: %s", strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// release undoes everything and gives up the lock.
func (h *hostNetwork) release() error {
	err := cleanupHost(h.nodeDir)
	_ = os.Remove(filepath.Join(hostStateDir, "node-dir"))
	h.releaseLock()
	return err
}

func (h *hostNetwork) releaseLock() {
	if h.lock != nil {
		_ = syscall.Flock(int(h.lock.Fd()), syscall.LOCK_UN)
		_ = h.lock.Close()
		h.lock = nil
	}
}

// cleanupHost removes what a node leaves on the host, whether it stopped cleanly or died: processes that
// belong to it or its cluster (those naming the cluster directory, nodeDir's parent, and everything in the
// pods' cgroups), mounts under nodeDir and the
// pods' network namespaces, the pods' cgroups, the bridge and its veths, the iptables chains of the
// kubelet, kube-proxy, the CNI and ours, and the saved sysctls. Idempotent; errors are joined and it goes on.
func cleanupHost(nodeDir string) error {
	var errs []error
	if nodeDir != "" {
		// The node's processes, and the cluster's around it (etcd and kube-apiserver of a run that was
		// killed: envtest starts them without a parent-death signal), all name the cluster directory.
		killAll(filepath.Dir(nodeDir))
	}
	errs = append(errs, unmountUnder(nodeDir), removeNetns(), removeCgroups())
	errs = append(errs, removeLinks(), cleanIptables("iptables"), cleanIptables("ip6tables"), restoreSysctls())
	if nodeDir != "" {
		if err := os.RemoveAll(nodeDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killAll kills every process whose command line names dir (containerd, its shims, the kubelet; etcd and
// kube-apiserver when dir is the cluster's) and every process in the pods' cgroups, and waits a moment for
// them to go.
func killAll(nodeDir string) {
	for i := 0; i < 50; i++ {
		pids := nodePids(nodeDir)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nodePids lists the processes killAll kills.
func nodePids(nodeDir string) []int {
	seen := map[int]bool{}
	self := os.Getpid()
	if nodeDir != "" {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == self {
				continue
			}
			cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err == nil && bytes.Contains(cmdline, []byte(nodeDir)) {
				seen[pid] = true
			}
		}
	}
	for _, dir := range podCgroups() {
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(path)
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil && pid != self {
					seen[pid] = true
				}
			}
			return nil
		})
	}
	pids := make([]int, 0, len(seen))
	for pid := range seen {
		pids = append(pids, pid)
	}
	return pids
}

// podCgroups lists the kubelet's top cgroups (kubepods) in every cgroup hierarchy.
func podCgroups() []string {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods*")
	top, _ := filepath.Glob("/sys/fs/cgroup/kubepods*")
	return append(dirs, top...)
}

// removeCgroups removes the pods' cgroups, deepest first (a cgroup goes only once it has no children).
func removeCgroups() error {
	var errs []error
	for _, top := range podCgroups() {
		var dirs []string
		_ = filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// unmountUnder unmounts everything mounted under dir, deepest first.
func unmountUnder(dir string) error {
	if dir == "" {
		return nil
	}
	var errs []error
	for _, m := range mountsUnder(dir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points under dir (or the network-namespace mounts of the pods when dir is
// "/run/netns"), deepest first.
func mountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	return mounts
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeNetns removes the network namespaces containerd made for pods (/run/netns/cni-*).
func removeNetns() error {
	var errs []error
	names, _ := filepath.Glob("/run/netns/cni-*")
	for _, ns := range names {
		if err := syscall.Unmount(ns, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", ns, err))
		}
		if err := os.Remove(ns); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeLinks deletes the veths on the bridge, then the bridge (with its address and the service route).
func removeLinks() error {
	if _, err := os.Stat("/sys/class/net/" + NodeBridge); err != nil {
		return nil
	}
	ports, _ := filepath.Glob("/sys/class/net/" + NodeBridge + "/brif/*")
	for _, p := range ports {
		_ = exec.Command("ip", "link", "del", filepath.Base(p)).Run()
	}
	if out, err := exec.Command("ip", "link", "del", NodeBridge).CombinedOutput(); err != nil {
		return fmt.Errorf("deleting %s: %w: %s", NodeBridge, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// IsNodeChain reports whether an iptables chain is one a node creates: the kubelet's and kube-proxy's
// (KUBE-), the CNI's (CNI-) and ours (EBB-NODE-).
func IsNodeChain(name string) bool {
	for _, p := range []string{"KUBE-", "CNI-", "EBB-NODE-"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// cleanIptables removes the node's chains, and every rule that jumps to one, from every table of tool
// (iptables or ip6tables), leaving everything else as it was.
func cleanIptables(tool string) error {
	saved, err := exec.Command(tool+"-save", "-w").Output()
	if err != nil {
		if _, lookErr := exec.LookPath(tool + "-save"); lookErr != nil {
			return nil
		}
		// Some builds take no -w.
		if saved, err = exec.Command(tool + "-save").Output(); err != nil {
			return fmt.Errorf("%s-save: %w", tool, err)
		}
	}
	cleaned, changed := withoutNodeChains(string(saved))
	if !changed {
		return nil
	}
	cmd := exec.Command(tool+"-restore", "-w")
	cmd.Stdin = strings.NewReader(cleaned)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s-restore: %w: %s", tool, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// withoutNodeChains edits iptables-save output: the node's chain declarations, their rules and the rules
// that jump to them go. It reports whether anything went.
func withoutNodeChains(saved string) (string, bool) {
	var out []string
	changed := false
	for _, line := range strings.Split(saved, "\n") {
		f := strings.Fields(line)
		drop := false
		switch {
		case len(f) > 0 && strings.HasPrefix(f[0], ":"):
			drop = IsNodeChain(strings.TrimPrefix(f[0], ":"))
		case len(f) > 1 && f[0] == "-A":
			drop = IsNodeChain(f[1])
			for i := 2; i+1 < len(f) && !drop; i++ {
				if (f[i] == "-j" || f[i] == "-g") && IsNodeChain(f[i+1]) {
					drop = true
				}
			}
		}
		if drop {
			changed = true
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n"), changed
}

// ReadSysctls reads NodeSysctls; a setting this kernel lacks is left out.
func ReadSysctls() map[string]string {
	got := map[string]string{}
	for _, k := range NodeSysctls {
		if v, err := os.ReadFile(filepath.Join("/proc/sys", k)); err == nil {
			got[k] = strings.TrimSpace(string(v))
		}
	}
	return got
}

// MachineSysctls are the machine's own values of NodeSysctls: those a node that died saved (and the next
// node restores) when there are any, else the current ones. Read it while no node runs (HoldHost).
func MachineSysctls() (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(hostStateDir, "sysctls.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return ReadSysctls(), nil
	} else if err != nil {
		return nil, err
	}
	var saved map[string]string
	if err := json.Unmarshal(b, &saved); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(hostStateDir, "sysctls.json"), err)
	}
	return saved, nil
}

func saveSysctls() error {
	b, _ := json.Marshal(ReadSysctls())
	return os.WriteFile(filepath.Join(hostStateDir, "sysctls.json"), b, 0o600)
}

// restoreSysctls writes back the saved sysctls, if any were saved, and forgets them.
func restoreSysctls() error {
	path := filepath.Join(hostStateDir, "sysctls.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	var saved map[string]string
	if err := json.Unmarshal(b, &saved); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	var errs []error
	for k, v := range saved {
		p := filepath.Join("/proc/sys", k)
		if cur, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(cur)) == v {
			continue
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restoring sysctl %s=%s: %w", k, v, err))
		}
	}
	if len(errs) == 0 {
		_ = os.Remove(path)
	}
	return errors.Join(errs...)
}
