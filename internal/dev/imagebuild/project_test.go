package imagebuild_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ebbscale/ebb/internal/dev/imagebuild"
)

func TestProject(t *testing.T) {
	targets := imagebuild.Project("v0.1.0-3-gabc", "abc123", time.Unix(1700000000, 0))
	refs := map[string]string{}
	for _, tg := range targets {
		refs[tg.Name] = tg.Ref
		if _, err := name.NewTag(tg.Ref, name.StrictValidation); err != nil {
			t.Errorf("%s: ref %q: %v", tg.Name, tg.Ref, err)
		}
		// The package is in this module.
		dir := filepath.Join("..", "..", "..", strings.TrimPrefix(tg.Package, "github.com/ebbscale/ebb/"))
		if _, err := os.Stat(filepath.Join(dir, "main.go")); err != nil {
			t.Errorf("%s: package %s: %v", tg.Name, tg.Package, err)
		}
		want := map[string]string{
			imagebuild.LabelTitle: tg.Name, imagebuild.LabelVersion: "v0.1.0-3-gabc",
			imagebuild.LabelSource: "https://github.com/ebbscale/ebb", imagebuild.LabelRevision: "abc123",
		}
		if diff := cmp.Diff(tg.Spec.Labels, want); diff != "" {
			t.Errorf("%s: labels (-got +want):\n%s", tg.Name, diff)
		}
	}
	want := map[string]string{
		"ebb":      "ghcr.io/ebbscale/ebb:v0.1.0-3-gabc",
		"pause":    "ebb.local/pause:3.10",
		"consumer": "ebb.local/consumer:v0.1.0-3-gabc",
	}
	if diff := cmp.Diff(refs, want); diff != "" {
		t.Errorf("refs (-got +want):\n%s", diff)
	}
	if _, err := imagebuild.Lookup(targets, "nope"); err == nil {
		t.Error("Lookup of an unknown image: no error")
	}
}
