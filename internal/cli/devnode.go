//go:build !ebb_nodev

package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/ebbscale/ebb/internal/app"
	"github.com/ebbscale/ebb/internal/dev/ebbinstall"
	"github.com/ebbscale/ebb/internal/dev/imagebuild"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/version"
	"github.com/ebbscale/ebb/metricsapi"
	"github.com/ebbscale/ebb/metricstore"
)

// devImages are the images `ebb dev --node` builds and loads: ebb's own, the pods' sandbox, and the
// example consumer the demo runs.
var devImages = []string{"ebb", "pause", "consumer"}

// nodeImages are the images of a dev node: references by name, and the archives to load.
type nodeImages struct {
	refs     map[string]string
	archives []string
}

// errNoCheckout: a node runs images built from this project's source, so ebb dev must run in a checkout.
var errNoCheckout = errors.New("the node's images are built from ebb's source: run ebb dev from a checkout of github.com/ebbscale/ebb")

// findCheckout returns the root of the ebb checkout holding dir (the directory with ebb's go.mod).
func findCheckout(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/ebbscale/ebb\n")) {
			if _, err := os.Stat(filepath.Join(dir, "manifests", "kustomization.yaml")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errNoCheckout
		}
		dir = parent
	}
}

// devNodeUnsupported says why ebb dev cannot run a node here, or nil.
func devNodeUnsupported(bin string) error {
	if err := localcluster.CheckNode(bin); err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	_, err = findCheckout(wd)
	return err
}

var badTagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// imageTag is this build's version as an image tag.
func imageTag() string {
	tag := badTagChars.ReplaceAllString(version.Get().Version, "-")
	if tag == "" || tag[0] == '.' || tag[0] == '-' {
		tag = "dev" + tag
	}
	if len(tag) > 128 {
		tag = tag[:128]
	}
	return tag
}

// buildDevImages builds the node's images into dir, from the source of the checkout ebb dev runs in.
func buildDevImages(ctx context.Context, dir string, extra []string, errOut io.Writer) (*nodeImages, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	_, _ = fmt.Fprintf(errOut, "ebb dev: building the images %v from source\n", devImages)
	targets := imagebuild.Project(imageTag(), "", time.Time{})
	imgs := &nodeImages{refs: map[string]string{}}
	for _, name := range devImages {
		t, err := imagebuild.Lookup(targets, name)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, name+"-image.tar")
		if _, err := t.WriteTarball(ctx, path); err != nil {
			return nil, fmt.Errorf("building the %s image: %w", name, err)
		}
		imgs.refs[name] = t.Ref
		imgs.archives = append(imgs.archives, path)
	}
	for _, a := range extra {
		if _, err := os.Stat(a); err != nil {
			return nil, fmt.Errorf("--image-archive: %w", err)
		}
		imgs.archives = append(imgs.archives, a)
	}
	_, _ = fmt.Fprintf(errOut, "ebb dev: images built in %s\n", time.Since(start).Round(100*time.Millisecond))
	return imgs, nil
}

// runDevEbb runs ebb's controller and metrics API server in this process, behind the aggregator, with
// the Prometheus metrics `ebb run` has (ebb_*) served at metricsURL; done receives app.Run's result. The
// returned stop ends it (the caller then reads done). It is called once in a process: the metrics are
// registered with controller-runtime's registry.
func runDevEbb(ctx context.Context, cluster *localcluster.Cluster, clusterDir string, done chan error) (stop func(), metricsURL string, err error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	// A port chosen here rather than ":0", so that ebb's log and the ready line name the one it serves on.
	metricsPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	metricsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(metricsPort))
	fs := pflag.NewFlagSet("ebb", pflag.ContinueOnError)
	store := metricstore.New()
	provider := metricsapi.NewProvider(store)
	adapter := metricsapi.NewAdapter(provider, fs)
	if err := fs.Parse(metricsapi.LocalFlags(port, filepath.Join(clusterDir, "ebb-certs"), cluster.Kubeconfig)); err != nil {
		return nil, "", err
	}
	registry := registerMetrics(ctrlmetrics.Registry, provider)
	runCtx, stop := context.WithCancel(ctx)
	go func() {
		done <- app.Run(runCtx, app.Options{
			Config: cluster.Config, Store: store, Controller: true, Registry: registry, MetricsAPI: adapter,
			MetricsBindAddress: metricsAddr, HealthProbeBindAddress: "0",
		})
	}()
	if err := cluster.RegisterExternalMetrics(ctx, port); err != nil {
		stop()
		rerr := <-done
		done <- nil
		if rerr != nil && !errors.Is(rerr, context.Canceled) {
			err = errors.Join(err, rerr)
		}
		return nil, "", fmt.Errorf("registering ebb's external metrics API: %w", err)
	}
	return stop, "http://" + metricsAddr + "/metrics", nil
}

// installDevEbb installs ebb on the node from the checkout's manifests/, as a user would, with the image
// just built, and waits until it serves.
func installDevEbb(ctx context.Context, cluster *localcluster.Cluster, node *nodeImages, dir string, errOut io.Writer) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	checkout, err := findCheckout(wd)
	if err != nil {
		return err
	}
	_, _ = fmt.Fprintf(errOut, "ebb dev: installing ebb from %s (kubectl apply -k of an overlay with %s)\n",
		filepath.Join(checkout, "manifests"), node.refs["ebb"])
	start := time.Now()
	if err := ebbinstall.Apply(ctx, ebbinstall.Options{
		Kubectl: filepath.Join(cluster.BinDir, "kubectl"), Kubeconfig: cluster.Kubeconfig,
		Manifests: filepath.Join(checkout, "manifests"), OverlayDir: filepath.Join(dir, "overlay"), Image: node.refs["ebb"],
	}); err != nil {
		return err
	}
	if err := ebbinstall.WaitReady(ctx, cluster.Config, 3*time.Minute); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(errOut, "ebb dev: ebb is serving from its pods (%s)\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}
