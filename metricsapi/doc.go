// Package metricsapi serves ebb's trigger values as external.metrics.k8s.io/v1beta1, through
// sigs.k8s.io/custom-metrics-apiserver, behind kube-apiserver's aggregation layer.
//
// The server answers from values already sampled; it never calls a broker on a request's path. Unknown
// metrics and selectors get the library's typed not-found errors.
package metricsapi
