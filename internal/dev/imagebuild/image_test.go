package imagebuild_test

import (
	"archive/tar"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ebbscale/ebb/internal/dev/imagebuild"
)

// fakeSpec is a Spec around a small file standing in for a binary, and a CA bundle.
func fakeSpec(t *testing.T) imagebuild.Spec {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "tool")
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(bin, []byte("#!not really a binary\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return imagebuild.Spec{
		Binary:   bin,
		Path:     "/usr/local/bin/tool",
		Cmd:      []string{"run"},
		Env:      []string{"A=b"},
		Labels:   map[string]string{imagebuild.LabelVersion: "v1.2.3", imagebuild.LabelSource: imagebuild.Source},
		CABundle: ca,
		Arch:     "arm64",
		Created:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

type entry struct {
	Type     byte
	Mode     int64
	UID, GID int
	Content  string
	ModTime  time.Time
}

func layerFiles(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = entry{Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid, Content: string(b), ModTime: h.ModTime.UTC()}
	}
	return files
}

func TestBuildAndReadBack(t *testing.T) {
	spec := fakeSpec(t)
	img, err := imagebuild.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	const ref = "ghcr.io/ebbscale/tool:v1.2.3"
	out := filepath.Join(t.TempDir(), "sub", "tool.tar")
	if err := imagebuild.WriteTarball(img, ref, out); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	wantCfg := v1.Config{
		Entrypoint: []string{"/usr/local/bin/tool"},
		Cmd:        []string{"run"},
		Env:        []string{"A=b"},
		User:       "65532:65532",
		WorkingDir: "/",
		Labels:     spec.Labels,
	}
	if diff := cmp.Diff(cfg.Config, wantCfg); diff != "" {
		t.Errorf("config (-got +want):\n%s", diff)
	}
	if cfg.OS != "linux" || cfg.Architecture != "arm64" || !cfg.Created.Equal(spec.Created) {
		t.Errorf("platform %s/%s created %v, want linux/arm64 %v", cfg.OS, cfg.Architecture, cfg.Created, spec.Created)
	}

	mtime := spec.Created
	want := map[string]entry{
		"etc/":                              {Type: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		"etc/group":                         {Type: tar.TypeReg, Mode: 0o644, Content: "root:x:0:\nnonroot:x:65532:\n", ModTime: mtime},
		"etc/passwd":                        {Type: tar.TypeReg, Mode: 0o644, Content: "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n", ModTime: mtime},
		"etc/ssl/":                          {Type: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		"etc/ssl/certs/":                    {Type: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		"etc/ssl/certs/ca-certificates.crt": {Type: tar.TypeReg, Mode: 0o644, Content: "-----BEGIN CERTIFICATE-----\n", ModTime: mtime},
		"home/":                             {Type: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		"home/nonroot/":                     {Type: tar.TypeDir, Mode: 0o700, UID: 65532, GID: 65532, ModTime: mtime},
		"tmp/":                              {Type: tar.TypeDir, Mode: 0o1777, ModTime: mtime},
		"usr/":                              {Type: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		"usr/local/":                        {Type: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		"usr/local/bin/":                    {Type: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		"usr/local/bin/tool":                {Type: tar.TypeReg, Mode: 0o755, Content: "#!not really a binary\n", ModTime: mtime},
	}
	if diff := cmp.Diff(layerFiles(t, got), want); diff != "" {
		t.Errorf("layer files (-got +want):\n%s", diff)
	}

	// The tarball's image is the built one.
	d1, _ := img.Digest()
	d2, _ := got.Digest()
	if d1 != d2 {
		t.Errorf("digest read back %v, built %v", d2, d1)
	}
	// Nothing left beside the tarball.
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Errorf("%d files beside the tarball, want just it", len(entries)-1)
	}
}

func TestBuildDefaults(t *testing.T) {
	spec := fakeSpec(t)
	spec.Path, spec.Cmd, spec.CABundle, spec.Created, spec.User = "", nil, "", time.Time{}, "0:0"
	img, err := imagebuild.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cfg.Config.Entrypoint, []string{"/tool"}); diff != "" {
		t.Errorf("entrypoint (-got +want):\n%s", diff)
	}
	if cfg.Config.User != "0:0" || !cfg.Created.Equal(time.Unix(0, 0)) {
		t.Errorf("user %q created %v, want 0:0 at the epoch", cfg.Config.User, cfg.Created.Time)
	}
	files := layerFiles(t, img)
	for _, absent := range []string{"etc/ssl/certs/ca-certificates.crt", "home/nonroot/"} {
		if _, ok := files[absent]; ok {
			t.Errorf("%s in the layer", absent)
		}
	}
	if got := files["etc/passwd"].Content; got != "root:x:0:0:root:/root:/sbin/nologin\n" {
		t.Errorf("passwd %q", got)
	}
	if _, ok := files["tool"]; !ok {
		t.Errorf("no /tool in %v", files)
	}
}

func TestBuildIsReproducible(t *testing.T) {
	spec := fakeSpec(t)
	var digests []v1.Hash
	for range 2 {
		img, err := imagebuild.Build(spec)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of one spec: %v and %v", digests[0], digests[1])
	}
}

func TestBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*imagebuild.Spec)
		want string
	}{
		{name: "no-binary", edit: func(s *imagebuild.Spec) { s.Binary = "" }, want: "no binary"},
		{name: "missing-binary", edit: func(s *imagebuild.Spec) { s.Binary += ".missing" }, want: "no such file"},
		{name: "relative-path", edit: func(s *imagebuild.Spec) { s.Path = "bin/tool" }, want: "clean absolute"},
		{name: "user-name", edit: func(s *imagebuild.Spec) { s.User = "nonroot" }, want: "numeric UID:GID"},
		{name: "missing-ca", edit: func(s *imagebuild.Spec) { s.CABundle += ".missing" }, want: "CA bundle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := fakeSpec(t)
			tc.edit(&spec)
			_, err := imagebuild.Build(spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestWriteTarballRefusesBadRef(t *testing.T) {
	img, err := imagebuild.Build(fakeSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "x.tar")
	if err := imagebuild.WriteTarball(img, "Bad Ref", out); err == nil {
		t.Fatal("no error")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("tarball written: %v", err)
	}
}

func TestPush(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	img, err := imagebuild.Build(fakeSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	ref := strings.TrimPrefix(srv.URL, "http://") + "/ebbscale/tool:v1"
	if err := imagebuild.Push(t.Context(), img, ref); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(r, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := got.Digest()
	if d1 != d2 {
		t.Errorf("pulled %v, pushed %v", d2, d1)
	}
}
