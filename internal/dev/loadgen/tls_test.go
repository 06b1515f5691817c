package loadgen_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebbscale/ebb/internal/dev/loadgen"
)

func TestTLSFilesRejectGarbage(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files loadgen.TLSFiles
		want  string
	}{
		{name: "missing-ca", files: loadgen.TLSFiles{CAFile: filepath.Join(t.TempDir(), "nope.pem")}, want: "no such file"},
		{name: "ca-not-pem", files: loadgen.TLSFiles{CAFile: garbage}, want: "ca: no PEM certificate found"},
		{name: "cert-without-key", files: loadgen.TLSFiles{CertFile: garbage}, want: "go together"},
		{name: "cert-not-pem", files: loadgen.TLSFiles{CertFile: garbage, KeyFile: garbage}, want: "cert: cert and key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.files.Config(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to say %q", err, tc.want)
			}
		})
	}
}
