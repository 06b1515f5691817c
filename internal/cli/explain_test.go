package cli_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ebbscale/ebb/internal/cli"
)

// Run as kubectl-ebb (a link kubectl finds on PATH), the binary is the kubectl plugin: its usage says
// "kubectl ebb" and it offers explain and version, not the server commands.
func TestPluginInvocation(t *testing.T) {
	tests := []struct {
		name, program string
		wantUsage     string
		wantRun       bool
	}{
		{name: "ebb", program: "/usr/local/bin/ebb", wantUsage: "ebb [command]", wantRun: true},
		{name: "kubectl-plugin", program: "/usr/local/bin/kubectl-ebb", wantUsage: "kubectl ebb [command]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := cli.MainAs(t.Context(), tt.program, []string{"--help"}, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			help := out.String()
			if !strings.Contains(help, tt.wantUsage) || !strings.Contains(help, "explain") {
				t.Errorf("help lacks %q or explain:\n%s", tt.wantUsage, help)
			}
			if got := strings.Contains(help, "\n  run "); got != tt.wantRun {
				t.Errorf("help lists run: %v, want %v:\n%s", got, tt.wantRun, help)
			}
		})
	}
}

// explain refuses an output format it does not have before reading any kubeconfig.
func TestExplainOutputFlag(t *testing.T) {
	var out, errb bytes.Buffer
	code := cli.Main(t.Context(), []string{"explain", "orders", "-o", "yaml", "--kubeconfig", "/nonexistent"}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), `-o "yaml": want text or json`) {
		t.Errorf("exit %d, stderr %q; want the -o error", code, errb.String())
	}
}
