// Package metricsapi serves ebb's trigger values as external.metrics.k8s.io/v1beta1, through
// sigs.k8s.io/custom-metrics-apiserver, behind kube-apiserver's aggregation layer.
//
// The server answers from values already sampled; it never calls a broker on a request's path. Unknown
// metrics and selectors get the library's typed not-found errors.
//
// A value whose sample is stale when it is asked for (metricstore.Entry.Stale: its poller has stopped
// sampling it) is logged, at most once a minute per ScaledConsumer and metric, and counted; it is replaced
// by the entry's fallback value when the ScaledConsumer has a fallback, and served as it is otherwise.
// The provider's Prometheus metrics are named ebb_metricsapi_*.
package metricsapi
