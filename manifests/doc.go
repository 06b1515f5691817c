// Package manifests embeds the Kubernetes manifests ebb ships, so that the binary (ebb dev) and the tests
// install exactly the committed files.
package manifests
