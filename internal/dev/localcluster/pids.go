package localcluster

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Control-plane components whose process ID PID reports.
const (
	Etcd                  = "etcd"
	KubeAPIServer         = "kube-apiserver"
	KubeControllerManager = "kube-controller-manager"
)

// PID returns the process ID of a running control-plane component (Etcd, KubeAPIServer or
// KubeControllerManager), so that a test can signal it: freeze it with SIGSTOP and resume it with SIGCONT,
// say. etcd and kube-apiserver are started by envtest, which keeps their processes to itself, so they are
// found in /proc by a flag that names this cluster's own directories.
func (c *Cluster) PID(component string) (int, error) {
	switch component {
	case KubeControllerManager:
		if !c.kcm.running() {
			return 0, fmt.Errorf("%s is not running", component)
		}
		return c.kcm.cmd.Process.Pid, nil
	case Etcd:
		if c.env == nil || c.env.ControlPlane.Etcd == nil {
			return 0, fmt.Errorf("%s is not running", component)
		}
		return findProcess(component, "--data-dir="+c.env.ControlPlane.Etcd.DataDir)
	case KubeAPIServer:
		if c.env == nil || c.env.ControlPlane.APIServer == nil {
			return 0, fmt.Errorf("%s is not running", component)
		}
		return findProcess(component, "--cert-dir="+c.env.ControlPlane.APIServer.CertDir)
	default:
		return 0, fmt.Errorf("no component %q (want %s, %s or %s)", component, Etcd, KubeAPIServer, KubeControllerManager)
	}
}

// findProcess returns the ID of the one process whose program is named name and one of whose arguments is
// arg.
func findProcess(name, arg string) (int, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue // gone since the listing, or a kernel thread
		}
		args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
		if filepath.Base(string(args[0])) != name {
			continue
		}
		for _, a := range args[1:] {
			if string(a) == arg {
				return strconv.Atoi(filepath.Base(d))
			}
		}
	}
	return 0, fmt.Errorf("no %s process with %s", name, arg)
}
