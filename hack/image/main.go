// Command image builds this project's container images with no Docker daemon (internal/dev/imagebuild) and
// writes each as a docker-archive tarball, or pushes it to a registry:
//
//	go run ./hack/image --image ebb,pause,consumer --version v0.1.0 --revision $(git rev-parse HEAD)
//	go run ./hack/image --image ebb --ref registry.example.com/ebb:v0.1.0 --push
//	go run ./hack/image --binary-pkg ./cmd/other --ref example.com/other:v1 --out bin/other.tar
//
// `make image`, `make images` and `make image-push` run it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ebbscale/ebb/internal/dev/imagebuild"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		images   = flag.String("image", "ebb", "comma-separated images of this project to build: ebb, pause, consumer")
		pkg      = flag.String("binary-pkg", "", "build an image around this Go package's binary instead (needs --ref)")
		ref      = flag.String("ref", "", "tag the image with this reference instead of the project's (one image only)")
		version  = flag.String("version", "devel", "version: the tag of the ebb and consumer images and their version label")
		revision = flag.String("revision", "", "git commit for the revision label (none when empty)")
		created  = flag.Int64("created", 0, "creation time of the images and their files, in Unix seconds (e.g. the commit's)")
		out      = flag.String("out", "", "tarball path (one image only); default <out-dir>/<image>-image.tar")
		outDir   = flag.String("out-dir", "bin", "directory of the tarballs")
		push     = flag.Bool("push", false, "push to the image's reference (default keychain: ~/.docker/config.json) instead of writing a tarball")
	)
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	project := imagebuild.Project(*version, *revision, time.Unix(*created, 0))
	var targets []imagebuild.Target
	if *pkg != "" {
		if *ref == "" {
			return errors.New("--binary-pkg needs --ref")
		}
		name := path.Base(*pkg)
		targets = append(targets, imagebuild.Target{
			Name:    name,
			Package: *pkg,
			LDFlags: "-s -w",
			Spec: imagebuild.Spec{
				Path:     "/" + name,
				Labels:   imagebuild.Labels(name, *version, *revision),
				CABundle: imagebuild.SystemCABundle,
				Created:  time.Unix(*created, 0),
			},
		})
	} else {
		for name := range strings.SplitSeq(*images, ",") {
			t, err := imagebuild.Lookup(project, strings.TrimSpace(name))
			if err != nil {
				return err
			}
			targets = append(targets, t)
		}
	}
	if len(targets) > 1 && (*ref != "" || *out != "") {
		return errors.New("--ref and --out take one image")
	}
	for _, t := range targets {
		if *ref != "" {
			t.Ref = *ref
		}
		img, err := t.Build(ctx)
		if err != nil {
			return err
		}
		id, err := img.ConfigName()
		if err != nil {
			return err
		}
		if *push {
			if err := imagebuild.Push(ctx, img, t.Ref); err != nil {
				return err
			}
			fmt.Printf("pushed %s (image ID %s)\n", t.Ref, id)
			continue
		}
		file := *out
		if file == "" {
			file = filepath.Join(*outDir, t.Name+"-image.tar")
		}
		if err := imagebuild.WriteTarball(img, t.Ref, file); err != nil {
			return err
		}
		fmt.Printf("wrote %s: %s (image ID %s)\n", file, t.Ref, id)
	}
	return nil
}
