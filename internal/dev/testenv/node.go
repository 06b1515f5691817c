package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ebbscale/ebb/internal/dev/imagebuild"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
)

// ImageVersion is the tag of the ebb and consumer images the tests build.
const ImageVersion = "test"

// Images are this project's images built for a test, as tarballs, with the references they carry.
type Images struct {
	// Archives maps an image's name (ebb, pause, consumer) to its tarball.
	Archives map[string]string
	// Refs maps an image's name to its reference.
	Refs map[string]string
}

// BuildImages builds the named images of this project (imagebuild.Project: ebb, pause, consumer) into
// dir. The Go build cache makes a second build cheap.
func BuildImages(ctx context.Context, dir string, names ...string) (*Images, error) {
	targets := imagebuild.Project(ImageVersion, "", time.Time{})
	imgs := &Images{Archives: map[string]string{}, Refs: map[string]string{}}
	for _, name := range names {
		t, err := imagebuild.Lookup(targets, name)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, name+"-image.tar")
		if _, err := t.WriteTarball(ctx, path); err != nil {
			return nil, fmt.Errorf("building image %s: %w", name, err)
		}
		imgs.Archives[name], imgs.Refs[name] = path, t.Ref
	}
	return imgs, nil
}

// NodeOptions returns options for a node that loads these images (pause must be among them).
func (i *Images) NodeOptions() *localcluster.NodeOptions {
	opts := &localcluster.NodeOptions{SandboxImage: i.Refs["pause"]}
	for _, a := range i.Archives {
		opts.ImageArchives = append(opts.ImageArchives, a)
	}
	return opts
}

// RequireNode fails the test when this machine cannot run a node (not root, say), except outside CI,
// where it skips with the reason: CI runs as root and must run every real-node test.
func RequireNode(t testing.TB) {
	t.Helper()
	Requires(t, "a real node")
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("this test runs a real node, which needs root; CI runs as root")
	}
	t.Skip("a real node needs root")
}
