// Package manifests embeds the Kubernetes manifests ebb ships, so that the binary (ebb dev) and the tests
// install exactly the committed files: the CRDs, and the sample consumers of samples/ that
// `ebb dev --demo` applies.
package manifests
