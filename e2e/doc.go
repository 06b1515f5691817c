// Package e2e holds tests over the whole loop: a real kube-apiserver with the aggregation layer,
// kube-controller-manager's HPA controller and garbage collector, ebb's controller and external metrics API
// server, and a trigger.
package e2e
