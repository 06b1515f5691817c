package testenv_test

import (
	"testing"

	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// Requires skips under -short (make test-unit) and only then: without -short a test that needs a
// component runs, and fails when the component is missing.
func TestRequires(t *testing.T) {
	ran := false
	t.Run("needs-a-component", func(t *testing.T) {
		testenv.Requires(t, "a component")
		ran = true
	})
	if ran == testing.Short() {
		t.Errorf("with -short=%v, the test after Requires ran=%v; want it to run exactly without -short", testing.Short(), ran)
	}
}

// A Shared cluster no test asked for was never started: stopping it does nothing.
func TestSharedUnused(t *testing.T) {
	if err := testenv.NewShared(localcluster.Options{}).Stop(); err != nil {
		t.Errorf("Stop of an unused Shared: %v", err)
	}
}
