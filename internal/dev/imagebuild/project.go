package imagebuild

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// This project's image references. The ebb image is tagged with the version; the pause image's tag is the
// pause version it stands in for, so containerd's sandbox_image can name it without knowing ebb's version.
const (
	EbbRepository      = "ghcr.io/ebbscale/ebb"
	PauseRef           = "ebb.local/pause:3.10"
	ConsumerRepository = "ebb.local/consumer"
	// Source is the org.opencontainers.image.source label of every image.
	Source = "https://github.com/ebbscale/ebb"
)

// NoDevTag is the build tag that leaves the development commands (`ebb dev`, `ebb load`) out of the
// binary; ebb's image is built with it (docs/design.md, "Images").
const NoDevTag = "ebb_nodev"

// OCI label keys.
const (
	LabelVersion  = "org.opencontainers.image.version"
	LabelSource   = "org.opencontainers.image.source"
	LabelRevision = "org.opencontainers.image.revision"
	LabelTitle    = "org.opencontainers.image.title"
)

// Target is one of this project's images: the Go package its binary is built from, and the image around it.
type Target struct {
	// Name is the short name: "ebb", "pause" or "consumer". `make images` writes bin/<Name>-image.tar.
	Name string
	// Package is the import path of the binary's main package.
	Package string
	// LDFlags are the binary's linker flags.
	LDFlags string
	// Tags are the binary's build tags, comma-separated.
	Tags string
	// Ref is the reference the image is tagged with.
	Ref string
	// Spec is the image; Build fills in Binary.
	Spec Spec
}

// Project returns this project's images at version (the image tag and the version label; a `git describe`
// output) and revision (the git commit, the revision label; may be empty). created is every image's
// timestamp (the commit time makes builds reproducible; zero means the Unix epoch).
func Project(version, revision string, created time.Time) []Target {
	labels := func(title string) map[string]string { return Labels(title, version, revision) }
	return []Target{
		{
			Name:    "ebb",
			Package: "github.com/ebbscale/ebb/cmd/ebb",
			LDFlags: "-s -w -X github.com/ebbscale/ebb/internal/version.Version=" + version,
			// What runs in a cluster: no `ebb dev` or `ebb load`, and none of what only they link.
			Tags: NoDevTag,
			Ref:  EbbRepository + ":" + version,
			Spec: Spec{Path: "/ebb", Labels: labels("ebb"), CABundle: SystemCABundle, Created: created},
		},
		{
			Name:    "pause",
			Package: "github.com/ebbscale/ebb/hack/pause",
			LDFlags: "-s -w",
			Ref:     PauseRef,
			Spec:    Spec{Path: "/pause", Labels: labels("pause"), Created: created},
		},
		{
			Name:    "consumer",
			Package: "github.com/ebbscale/ebb/examples/consumer",
			LDFlags: "-s -w",
			Ref:     ConsumerRepository + ":" + version,
			Spec:    Spec{Path: "/consumer", Labels: labels("consumer"), CABundle: SystemCABundle, Created: created},
		},
	}
}

// Labels returns this project's OCI labels for an image: title, version, source and, when not empty,
// revision.
func Labels(title, version, revision string) map[string]string {
	l := map[string]string{LabelTitle: title, LabelVersion: version, LabelSource: Source}
	if revision != "" {
		l[LabelRevision] = revision
	}
	return l
}

// Lookup returns the target of that name among targets.
func Lookup(targets []Target, name string) (Target, error) {
	for _, t := range targets {
		if t.Name == name {
			return t, nil
		}
	}
	return Target{}, fmt.Errorf("imagebuild: no image %q", name)
}

// Build builds t's binary (in a temporary directory, removed before it returns) and its image.
func (t Target) Build(ctx context.Context) (v1.Image, error) {
	dir, err := os.MkdirTemp("", "ebb-image-")
	if err != nil {
		return nil, fmt.Errorf("imagebuild: %w", err)
	}
	defer os.RemoveAll(dir)
	spec := t.Spec
	spec.Binary = filepath.Join(dir, t.Name)
	if err := BuildGo(ctx, t.Package, spec.Binary, t.LDFlags, t.Tags); err != nil {
		return nil, err
	}
	return Build(spec)
}

// WriteTarball builds t and writes it, tagged t.Ref, to path (see the package function WriteTarball).
func (t Target) WriteTarball(ctx context.Context, path string) (v1.Image, error) {
	img, err := t.Build(ctx)
	if err != nil {
		return nil, err
	}
	return img, WriteTarball(img, t.Ref, path)
}
