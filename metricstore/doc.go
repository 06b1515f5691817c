// Package metricstore holds the last sample of every trigger metric: the poller writes it, the metrics
// API server and the controller read it. Reads never block on a broker; a value is as fresh as the last
// poll, and carries its time so readers can tell a stale one.
package metricstore
