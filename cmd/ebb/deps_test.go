package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// devTooling are packages for development and tests only: what runs in a cluster must not link them.
var devTooling = []string{
	"github.com/ebbscale/ebb/internal/dev/", // the development and test tooling, all of it
	"github.com/ebbscale/ebb/scalers/scalertest",
	"github.com/twmb/franz-go/pkg/kfake",
	"sigs.k8s.io/controller-runtime/pkg/envtest",
	"github.com/google/go-containerregistry/",
}

// linkedDevTooling lists the development packages among the dependencies of pkgs.
func linkedDevTooling(t *testing.T, args ...string) []string {
	t.Helper()
	testenv.Requires(t, "the go tool")
	out, err := exec.Command("go", append([]string{"list", "-deps"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list -deps %v: %v", args, err)
	}
	var bad []string
	for _, dep := range strings.Fields(string(out)) {
		for _, d := range devTooling {
			if dep == d || strings.HasPrefix(dep, d) {
				bad = append(bad, dep)
			}
		}
	}
	return bad
}

// The serving packages (controller, metrics API, scalers, values sync and the process that runs them)
// link no development tooling.
func TestServingPackagesLinkNoDevTooling(t *testing.T) {
	if bad := linkedDevTooling(t, "github.com/ebbscale/ebb/controller/...", "github.com/ebbscale/ebb/metricsapi/...",
		"github.com/ebbscale/ebb/metricstore/...", "github.com/ebbscale/ebb/valuesync/...", "github.com/ebbscale/ebb/internal/app/...",
		"github.com/ebbscale/ebb/scalers", "github.com/ebbscale/ebb/scalers/builtin"); len(bad) > 0 {
		t.Errorf("serving packages link development tooling: %v", bad)
	}
}

// The image's binary (built with the ebb_nodev tag) links none either, while the default build carries
// `ebb dev` and so the local cluster.
func TestImageBinaryLinksNoDevTooling(t *testing.T) {
	if bad := linkedDevTooling(t, "-tags", "ebb_nodev", "github.com/ebbscale/ebb/cmd/ebb"); len(bad) > 0 {
		t.Errorf("ebb built with -tags ebb_nodev links development tooling: %v", bad)
	}
	if bad := linkedDevTooling(t, "github.com/ebbscale/ebb/cmd/ebb"); len(bad) == 0 {
		t.Error("the default build links no development tooling: has ebb dev gone, or is this test looking in the wrong place?")
	}
}
