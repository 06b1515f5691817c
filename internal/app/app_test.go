package app

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The manager's error on a lost Lease is explained (and still wraps it); other errors, and a process
// without leader election, pass through.
func TestLeaseLost(t *testing.T) {
	lost := errors.New("leader election lost")
	other := errors.New("cache did not sync")
	for _, tc := range []struct {
		name    string
		elect   bool
		err     error
		want    string
		wrapped error
	}{
		{name: "lost", elect: true, err: lost, wrapped: lost,
			want: "lost the leader Lease ebb-controller-leader (not renewed within the renew deadline; is the API server reachable?): " +
				"exiting so that nothing of this process writes once another replica leads; restarted, it rejoins as a follower: leader election lost"},
		{name: "other error", elect: true, err: other, want: other.Error(), wrapped: other},
		{name: "no leader election", elect: false, err: lost, want: lost.Error(), wrapped: lost},
		{name: "clean end", elect: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := leaseLost(Options{LeaderElection: tc.elect}, tc.err)
			if tc.err == nil {
				if got != nil {
					t.Fatalf("leaseLost(nil) = %v", got)
				}
				return
			}
			if diff := cmp.Diff(got.Error(), tc.want); diff != "" {
				t.Errorf("message (-got +want):\n%s", diff)
			}
			if !errors.Is(got, tc.wrapped) {
				t.Errorf("%v does not wrap %v", got, tc.wrapped)
			}
		})
	}
}
