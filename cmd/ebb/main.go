// Command ebb is the event-driven autoscaler. See `ebb --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ebbscale/ebb/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.MainAs(ctx, os.Args[0], os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
