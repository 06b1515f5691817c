// Package testenv gives tests a real Kubernetes control plane (internal/localcluster) and the addresses
// of the real brokers hack/setup-test-env.sh provides. Missing pieces fail the test with the command that
// provides them; nothing is skipped, so a green run means the real components were exercised.
package testenv
