package version

import "github.com/prometheus/client_golang/prometheus"

// Collector returns the gauge ebb_build_info: always 1, with the build's version, revision, goversion
// and platform as labels. Every ebb process registers it, so its absence means no ebb is scraped.
func Collector() prometheus.Collector {
	i := Get()
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ebb_build_info",
		Help: "Always 1; the labels describe the running build of ebb.",
		ConstLabels: prometheus.Labels{
			"version": i.Version, "revision": i.Revision, "goversion": i.GoVersion, "platform": i.Platform,
		},
	}, func() float64 { return 1 })
}
