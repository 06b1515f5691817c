package localcluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Versions of the control-plane binaries this package expects; hack/lib.sh pins the same.
const (
	KubernetesVersion = "1.37.2"
	EtcdVersion       = "3.7.0"
	// BuildRecipe names the way hack/install-control-plane.sh builds them (hack/lib.sh's EBB_BUILD_RECIPE);
	// it is part of the cache directory's name.
	BuildRecipe = "r2"
)

// Binaries a full local cluster needs.
var requiredBinaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kubectl"}

// ErrBinariesMissing is returned when the control-plane binaries are nowhere to be found.
var ErrBinariesMissing = errors.New("control-plane binaries not found")

// CacheDir returns the directory hack/install-control-plane.sh builds the pinned binaries into.
func CacheDir() string {
	base := os.Getenv("EBB_CACHE_DIR")
	if base == "" {
		xdg := os.Getenv("XDG_CACHE_HOME")
		if xdg == "" {
			home, _ := os.UserHomeDir()
			xdg = filepath.Join(home, ".cache")
		}
		base = filepath.Join(xdg, "ebb")
	}
	return filepath.Join(base, "control-plane", fmt.Sprintf("k8s-v%s-etcd-v%s-%s", KubernetesVersion, EtcdVersion, BuildRecipe))
}

// FindBinaries returns the directory holding etcd, kube-apiserver, kube-controller-manager and kubectl:
// KUBEBUILDER_ASSETS when it holds all of them, else the cache directory. The error names what is missing
// and how to build it.
func FindBinaries() (string, error) {
	var tried []string
	for _, dir := range []string{os.Getenv("KUBEBUILDER_ASSETS"), CacheDir()} {
		if dir == "" {
			continue
		}
		missing := missingIn(dir)
		if len(missing) == 0 {
			return dir, nil
		}
		tried = append(tried, fmt.Sprintf("%s (missing %v)", dir, missing))
	}
	return "", fmt.Errorf("%w in %v; run hack/install-control-plane.sh (or make tools) to build them", ErrBinariesMissing, tried)
}

func missingIn(dir string) []string {
	var missing []string
	for _, b := range requiredBinaries {
		fi, err := os.Stat(filepath.Join(dir, b))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	return missing
}
