// Package valuesync lets a process that does not poll serve the values of the one that does: the leader's
// metric store is mirrored, whole, into a follower's store over a small authenticated HTTPS endpoint.
//
// The leader serves GET /ebb/v1/values (Handler, behind Server's TLS listener and kube-apiserver's
// delegated authentication and authorization). A request names the last revision the caller has and waits
// (long-polls) until the store has a newer one or its timeout passes, then gets the full snapshot. Full
// snapshots keep the protocol stateless: a follower that missed anything, a new leader, a restarted
// leader, all converge with the next response.
//
// Followers find the leader through the leader-election Lease: the leader's identity advertises its
// endpoint and, when its certificate is self-signed, the SHA-256 of that certificate's public key, which
// followers pin (Identity, ParseIdentity, LeaseLeader). Client long-polls the leader it finds and replaces
// its store's content with every snapshot.
package valuesync
