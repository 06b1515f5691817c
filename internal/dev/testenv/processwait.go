package testenv

import (
	"testing"
	"time"
)

// WaitExit waits up to limit for the process to exit by itself: it reports whether it did and how (the
// error of exec.Cmd.Wait). Once it has exited, Stop does nothing.
func (p *EbbProcess) WaitExit(t *testing.T, limit time.Duration) (exited bool, err error) {
	t.Helper()
	select {
	case err := <-p.exited:
		p.mu.Lock()
		p.stopped = true
		p.mu.Unlock()
		return true, err
	case <-time.After(limit):
		return false, nil
	}
}
