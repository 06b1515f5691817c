// Package app runs ebb's roles — the controller (with its poller) and the external metrics API server —
// in one process or apart. The ebb command line (internal/cli) parses flags into Options and calls Run;
// tests and `ebb dev` call Run directly, with their own trigger registry.
package app
