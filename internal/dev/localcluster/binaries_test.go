package localcluster_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebbscale/ebb/internal/dev/localcluster"
)

func fakeBinaries(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestFindBinaries(t *testing.T) {
	all := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kubectl"}
	tests := []struct {
		name        string
		assets      []string // binaries in KUBEBUILDER_ASSETS; nil: unset
		cache       []string // binaries in the cache directory
		want        string   // "assets", "cache" or "" for an error
		wantMissing string
	}{
		{name: "assets-complete", assets: all, cache: all, want: "assets"},
		{name: "assets-incomplete-falls-back", assets: all[:2], cache: all, want: "cache"},
		{name: "no-assets", cache: all, want: "cache"},
		{name: "nothing", assets: all[:3], cache: all[1:], wantMissing: "missing [kubectl]"},
		{name: "nothing-at-all", wantMissing: "missing [etcd kube-apiserver kube-controller-manager kubectl]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cacheBase := t.TempDir()
			t.Setenv("EBB_CACHE_DIR", cacheBase)
			cacheDir := localcluster.CacheDir()
			if !strings.HasPrefix(cacheDir, cacheBase) {
				t.Fatalf("CacheDir() = %s, want it under EBB_CACHE_DIR %s", cacheDir, cacheBase)
			}
			if err := os.MkdirAll(cacheDir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, n := range tc.cache {
				if err := os.WriteFile(filepath.Join(cacheDir, n), nil, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			assetsDir := ""
			if tc.assets != nil {
				assetsDir = fakeBinaries(t, tc.assets...)
			}
			t.Setenv("KUBEBUILDER_ASSETS", assetsDir)

			got, err := localcluster.FindBinaries()
			switch tc.want {
			case "assets", "cache":
				want := map[string]string{"assets": assetsDir, "cache": cacheDir}[tc.want]
				if err != nil || got != want {
					t.Errorf("FindBinaries() = %q, %v; want %q", got, err, want)
				}
			default:
				if !errors.Is(err, localcluster.ErrBinariesMissing) {
					t.Fatalf("FindBinaries() error = %v, want ErrBinariesMissing", err)
				}
				for _, want := range []string{tc.wantMissing, "hack/install-control-plane.sh"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
			}
		})
	}
}

// Start fails at once, with the way to fix it, when the binaries are missing.
func TestStartWithoutBinaries(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", "")
	t.Setenv("EBB_CACHE_DIR", t.TempDir())
	c, err := localcluster.Start(t.Context(), localcluster.Options{})
	if err == nil {
		_ = c.Stop()
		t.Fatal("Start succeeded without binaries")
	}
	if !errors.Is(err, localcluster.ErrBinariesMissing) || !strings.Contains(err.Error(), "hack/install-control-plane.sh") {
		t.Errorf("Start error = %v, want ErrBinariesMissing naming hack/install-control-plane.sh", err)
	}
}
