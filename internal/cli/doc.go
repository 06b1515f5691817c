// Package cli builds the `ebb` command tree. Each subcommand parses its flags and hands over to the
// package that does the work; no behaviour lives here beyond wiring and messages for the user.
package cli
