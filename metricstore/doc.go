// Package metricstore holds the last sample of every trigger metric: the poller writes it, the metrics
// API server and the controller read it. Reads never block on a broker; a value is as fresh as the last
// poll, and carries its time so readers can tell a stale one.
//
// A store counts its changes (its revision), hands out a consistent copy of its content (Snapshot), takes
// a whole new content at once (Replace), and lets any number of readers wait for the next change
// (Changed). That is what package valuesync needs to mirror the leader's store into another process.
package metricstore
