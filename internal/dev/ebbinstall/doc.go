// Package ebbinstall installs ebb from its own manifests, as a user does: `kubectl apply -k` of an overlay
// of manifests/ that names an image loaded on the node (pulled never), then waits until ebb serves: its
// Deployment Available with every replica Ready, and the external metrics APIService Available.
//
// It is what the real-node tests and `ebb dev --node` use; it needs a checkout (manifests/ on disk) and
// kubectl.
package ebbinstall
