package imagebuild

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// WriteTarball writes img, tagged ref (e.g. "ghcr.io/ebbscale/ebb:v0.1.0"), to path as a docker-archive
// tarball. It writes a temporary file beside path and renames it, so path is either the old file or the
// whole new one. The parent directory is created when missing.
func WriteTarball(img v1.Image, ref, path string) error {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("imagebuild: image reference %q: want registry/name:tag: %w", ref, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("imagebuild: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("imagebuild: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tarball.Write(tag, img, tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("imagebuild: writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("imagebuild: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("imagebuild: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("imagebuild: %w", err)
	}
	return nil
}

// Push pushes img to the registry ref names (a tag or a digest reference), authenticating with the default
// keychain: the Docker config file (~/.docker/config.json, $DOCKER_CONFIG) and its credential helpers.
func Push(ctx context.Context, img v1.Image, ref string) error {
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("imagebuild: image reference %q: %w", ref, err)
	}
	if err := remote.Write(r, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return fmt.Errorf("imagebuild: pushing %s: %w", ref, err)
	}
	return nil
}
