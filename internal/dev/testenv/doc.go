// Package testenv gives tests a real Kubernetes control plane (internal/dev/localcluster) and the addresses
// of the real brokers hack/setup-test-env.sh provides. Missing pieces fail the test with the command that
// provides them; nothing is skipped, so a green run means the real components were exercised.
//
// The one exception is -short, the unit tier (make test-unit): every function here that provides a
// component calls Requires first, which skips the test under -short, so `go test -short ./...` runs
// exactly the tests that need nothing outside the test process. A package whose tests share a cluster
// keeps it in a Shared, started by the first test that needs it and stopped by TestMain.
package testenv
