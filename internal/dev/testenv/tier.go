package testenv

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ebbscale/ebb/internal/dev/localcluster"
)

// Requires marks t as a test that needs a real component outside the test process (what: "a control
// plane", "RabbitMQ", "a built binary"): under -short, the unit tier (make test-unit), it skips; otherwise
// it does nothing, and the component is provided or the test fails. Every function of this package that
// provides a component calls it first, so a test is in the unit tier exactly when it uses none; a test that
// reaches a component some other way (envtest directly, a tool run by name) calls Requires itself.
func Requires(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("needs %s; -short (make test-unit) runs only the tests that need no component", what)
	}
}

// Shared is a local cluster shared by the tests of a package: the first test that asks for it (Env)
// starts it, and TestMain stops it after m.Run. Tests that never ask run with no cluster, so the package's
// pure tests need no control plane, and under -short none is started.
type Shared struct {
	opts localcluster.Options
	once sync.Once
	env  *Env
	err  error
}

// NewShared returns a cluster with opts that starts on first use.
func NewShared(opts localcluster.Options) *Shared { return &Shared{opts: opts} }

// Env returns the running cluster, starting it on the first call (within two minutes, or the test
// fails); under -short it skips t (Requires).
func (s *Shared) Env(t testing.TB) *Env {
	t.Helper()
	Requires(t, "a control plane")
	s.once.Do(func() {
		// The context bounds the start only; the cluster runs until Stop.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		s.env, s.err = New(ctx, s.opts)
		if s.err != nil {
			s.err = fmt.Errorf("starting the shared control plane: %w", s.err)
		}
	})
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.env
}

// Stop stops the cluster if a test started it. For TestMain, after m.Run.
func (s *Shared) Stop() error {
	if s.env == nil {
		return nil
	}
	return s.env.Stop()
}
