package imagebuild

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Paths of the files an image holds besides its binary.
const (
	PasswdPath   = "/etc/passwd"
	GroupPath    = "/etc/group"
	CABundlePath = "/etc/ssl/certs/ca-certificates.crt"
)

// DefaultUser is the user an image runs as when Spec.User is empty: the conventional non-root "nonroot"
// of distroless images, which the Pod Security Standard "restricted" accepts.
const DefaultUser = "65532:65532"

// Spec describes a one-layer image around one static binary.
type Spec struct {
	// Binary is the path of a static Linux binary on this machine. Required.
	Binary string
	// Path is where the binary goes in the image. Default: "/" + the binary's file name.
	Path string
	// Entrypoint is the image's entrypoint. Default: [Path].
	Entrypoint []string
	// Cmd is the image's default arguments. Default: none.
	Cmd []string
	// Env holds the image's environment as KEY=VALUE. Default: none (the runtime adds PATH).
	Env []string
	// Labels are the image config's labels, e.g. org.opencontainers.image.version, .source, .revision.
	Labels map[string]string
	// User is "UID:GID", both numeric, the image runs as. Default: DefaultUser. /etc/passwd and /etc/group
	// hold root and, unless UID is 0, a user and group "nonroot" with these ids and home /home/nonroot.
	User string
	// CABundle is the path of a PEM CA bundle on this machine to put at CABundlePath; empty puts none.
	// SystemCABundle is Debian's.
	CABundle string
	// Arch is the image's architecture (GOARCH naming). Default: runtime.GOARCH.
	Arch string
	// Created is the image's creation time and every file's modification time. Default: the Unix epoch.
	Created time.Time
}

// SystemCABundle is where Debian (and most distributions) keep the CA bundle.
const SystemCABundle = "/etc/ssl/certs/ca-certificates.crt"

// Build builds the image Spec describes. It reads the binary and the CA bundle now; the image does not
// refer to them afterwards.
func Build(spec Spec) (v1.Image, error) {
	if spec.Binary == "" {
		return nil, fmt.Errorf("imagebuild: no binary")
	}
	if spec.Path == "" {
		spec.Path = "/" + path.Base(spec.Binary)
	}
	if !path.IsAbs(spec.Path) || path.Clean(spec.Path) != spec.Path || spec.Path == "/" {
		return nil, fmt.Errorf("imagebuild: binary path %q: want a clean absolute file path", spec.Path)
	}
	if len(spec.Entrypoint) == 0 {
		spec.Entrypoint = []string{spec.Path}
	}
	if spec.User == "" {
		spec.User = DefaultUser
	}
	uid, gid, err := parseUser(spec.User)
	if err != nil {
		return nil, err
	}
	if spec.Arch == "" {
		spec.Arch = runtime.GOARCH
	}
	created := spec.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC()

	bin, err := os.ReadFile(spec.Binary)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: %w", err)
	}
	files := []file{
		{name: "/etc/", mode: 0o755},
		{name: PasswdPath, mode: 0o644, data: []byte(passwd(uid, gid))},
		{name: GroupPath, mode: 0o644, data: []byte(group(gid))},
		{name: "/tmp/", mode: 0o1777},
	}
	if uid != 0 {
		files = append(files, file{name: "/home/", mode: 0o755}, file{name: "/home/nonroot/", mode: 0o700, uid: uid, gid: gid})
	}
	if spec.CABundle != "" {
		ca, err := os.ReadFile(spec.CABundle)
		if err != nil {
			return nil, fmt.Errorf("imagebuild: CA bundle: %w", err)
		}
		files = append(files, file{name: "/etc/ssl/", mode: 0o755}, file{name: "/etc/ssl/certs/", mode: 0o755},
			file{name: CABundlePath, mode: 0o644, data: ca})
	}
	for dir := path.Dir(spec.Path); dir != "/"; dir = path.Dir(dir) {
		files = append(files, file{name: dir + "/", mode: 0o755})
	}
	files = append(files, file{name: spec.Path, mode: 0o755, data: bin})

	layerTar, err := tarFiles(files, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("imagebuild: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture = spec.Arch
	cfg.OS = "linux"
	cfg.Created = v1.Time{Time: created}
	cfg.Config = v1.Config{
		Entrypoint: slices.Clone(spec.Entrypoint),
		Cmd:        slices.Clone(spec.Cmd),
		Env:        slices.Clone(spec.Env),
		User:       spec.User,
		WorkingDir: "/",
		Labels:     spec.Labels,
	}
	cfg.History = []v1.History{{Created: v1.Time{Time: created}, CreatedBy: "ebb imagebuild", Comment: spec.Path}}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: %w", err)
	}
	return img, nil
}

// file is an entry of the layer; a name that ends in "/" is a directory.
type file struct {
	name     string
	mode     int64
	uid, gid int
	data     []byte
}

// tarFiles writes files, sorted by name with parents first, as an uncompressed tar.
func tarFiles(files []file, mtime time.Time) ([]byte, error) {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.name, b.name) })
	files = slices.CompactFunc(files, func(a, b file) bool { return a.name == b.name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{
			Name:    strings.TrimPrefix(f.name, "/"),
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.gid,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if strings.HasSuffix(f.name, "/") {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("imagebuild: layer: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("imagebuild: layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("imagebuild: layer: %w", err)
	}
	return buf.Bytes(), nil
}

func parseUser(s string) (uid, gid int, err error) {
	u, g, ok := strings.Cut(s, ":")
	uid, uerr := strconv.Atoi(u)
	gid, gerr := strconv.Atoi(g)
	if !ok || uerr != nil || gerr != nil || uid < 0 || gid < 0 {
		return 0, 0, fmt.Errorf("imagebuild: user %q: want numeric UID:GID", s)
	}
	return uid, gid, nil
}

func passwd(uid, gid int) string {
	s := "root:x:0:0:root:/root:/sbin/nologin\n"
	if uid != 0 {
		s += fmt.Sprintf("nonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", uid, gid)
	}
	return s
}

func group(gid int) string {
	s := "root:x:0:\n"
	if gid != 0 {
		s += fmt.Sprintf("nonroot:x:%d:\n", gid)
	}
	return s
}
