// Package localcluster runs a real Kubernetes control plane on this machine: etcd and kube-apiserver
// (through controller-runtime's envtest), optionally kube-controller-manager running only the HPA
// controller, with ebb's CRDs installed and the front-proxy (aggregation layer) configured so that an
// external metrics server on a local port can be registered behind an APIService.
//
// It is used by the tests (through internal/dev/testenv) and by `ebb dev`. The binaries come from
// hack/install-control-plane.sh, which builds them into a per-user cache; KUBEBUILDER_ASSETS, when set and
// complete, wins. Nothing here downloads anything.
package localcluster
