//go:build !ebb_nodev

package cli

import "github.com/spf13/cobra"

// devCommands are the development commands, `ebb dev` and `ebb load`; a build with the ebb_nodev tag (the
// container image's) leaves them, and what only they link (the local cluster, the Kafka-protocol broker,
// the demo, the load generator, the image builder), out.
func devCommands() []*cobra.Command { return []*cobra.Command{newDevCommand(), newLoadCommand()} }
