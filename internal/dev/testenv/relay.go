package testenv

import (
	"testing"

	"github.com/ebbscale/ebb/internal/dev/tcprelay"
)

// Relay relays connections from listen (host:port; port 0 for a free one) to target until the test ends,
// and returns the address it listens on (see package tcprelay).
func Relay(t testing.TB, listen, target string) string {
	t.Helper()
	r, err := tcprelay.Start(listen, target)
	if err != nil {
		t.Fatalf("relay to %s: %v", target, err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r.Addr()
}
