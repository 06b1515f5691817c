//go:build ebb_nodev

package cli

import "github.com/spf13/cobra"

// devCommands: none in a build with the ebb_nodev tag (the container image's); see commands_dev.go.
func devCommands() []*cobra.Command { return nil }
