package imagebuild

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
)

// BuildGo builds the Go package pkg (an import path, or a path relative to the working directory inside
// this module) into out as a static Linux binary for this machine's architecture: CGO_ENABLED=0,
// GOOS=linux, -trimpath, with ldflags (e.g. "-s -w -X main.version=v1") and build tags (comma-separated)
// when not empty.
func BuildGo(ctx context.Context, pkg, out, ldflags, tags string) error {
	args := []string{"build", "-trimpath", "-o", out}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	args = append(args, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("imagebuild: go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}
