package ebbinstall

import (
	"strings"
	"testing"
)

func TestSplitImage(t *testing.T) {
	tests := []struct {
		image, name, tag string
		wantErr          bool
	}{
		{image: "ghcr.io/ebbscale/ebb:v0.1.0", name: "ghcr.io/ebbscale/ebb", tag: "v0.1.0"},
		{image: "localhost:5000/ebb:dev", name: "localhost:5000/ebb", tag: "dev"},
		{image: "localhost:5000/ebb", wantErr: true},
		{image: "ebb", wantErr: true},
		{image: "ebb@sha256:abc", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(tc.image), func(t *testing.T) {
			name, tag, err := splitImage(tc.image)
			if (err != nil) != tc.wantErr {
				t.Fatalf("splitImage(%q) error = %v, want error %v", tc.image, err, tc.wantErr)
			}
			if name != tc.name || tag != tc.tag {
				t.Errorf("splitImage(%q) = %q, %q, want %q, %q", tc.image, name, tag, tc.name, tc.tag)
			}
		})
	}
}

func TestOverlay(t *testing.T) {
	got, err := Overlay("../../manifests", "ghcr.io/ebbscale/ebb:v1-2-gabc")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"- ../../manifests\n", "newName: ghcr.io/ebbscale/ebb\n", `newTag: "v1-2-gabc"`, "value: Never"} {
		if !strings.Contains(got, want) {
			t.Errorf("overlay lacks %q:\n%s", want, got)
		}
	}
}
