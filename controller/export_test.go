package controller

import "k8s.io/apimachinery/pkg/types"

// PollFingerprint is the fingerprint of the poll running for key, for the tests of package
// controller_test.
func PollFingerprint(r *Reconciler, key types.NamespacedName) (string, bool) {
	return r.poller.Fingerprint(key)
}
