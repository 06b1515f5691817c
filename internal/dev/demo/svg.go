package demo

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// The picture's geometry, in SVG user units.
const (
	svgWidth, svgHeight            = 960, 440
	marginLeft, marginRight        = 80, 80
	marginTop, marginBottom        = 70, 60
	plotWidth                      = svgWidth - marginLeft - marginRight
	plotHeight                     = svgHeight - marginTop - marginBottom
	colorBacklog, colorBacklogFill = "#1f77b4", "#c6dbef"
	colorReplicas                  = "#d95f02"
	colorDesired                   = "#7570b3"
	colorConsumers                 = "#1b9e77"
	colorPods                      = "#e7298a"
)

// WriteSVG draws the timeline: the backlog as an area on the left axis; the Deployment's replicas, the
// HPA's desired replicas, the pods Running (when pods run: a point with Pods >= 0) and the consumers as
// steps on the right axis; ebb's scale decisions (events whose source is ebb) as labelled vertical lines.
// It is hand-written SVG 1.1, readable by any browser.
func WriteSVG(w io.Writer, tl Timeline, title, subtitle string) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(bw, format, args...) }

	var endT time.Duration
	var maxBacklog int64
	maxReplicas := int32(1)
	pods := false
	for _, pt := range tl {
		endT = max(endT, pt.At)
		maxBacklog = max(maxBacklog, pt.Backlog)
		maxReplicas = max(maxReplicas, pt.Replicas, pt.HPADesired, int32(pt.Consumers), int32(pt.Pods))
		pods = pods || pt.Pods >= 0
	}
	tMax, tStep := axis(math.Max(endT.Seconds(), 1))
	bMax, bStep := axis(math.Max(float64(maxBacklog), 10))
	rMax := float64(maxReplicas)
	x := func(d time.Duration) float64 { return marginLeft + d.Seconds()/tMax*plotWidth }
	yB := func(v float64) float64 { return marginTop + plotHeight - v/bMax*plotHeight }
	yR := func(v float64) float64 { return marginTop + plotHeight - v/rMax*plotHeight }

	p(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	p(`<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, svgHeight, svgWidth, svgHeight)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", marginLeft, esc(title))
	p(`<text x="%d" y="44" fill="#555">%s</text>`+"\n", marginLeft, esc(subtitle))

	// Grid and axes: time below, backlog left, replicas right.
	p(`<g stroke="#e5e5e5">` + "\n")
	for _, v := range ticks(bMax, bStep) {
		p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`+"\n", marginLeft, yB(v), marginLeft+plotWidth, yB(v))
	}
	p("</g>\n")
	p(`<g fill="%s" text-anchor="end">`+"\n", colorBacklog)
	for _, v := range ticks(bMax, bStep) {
		p(`<text x="%d" y="%.1f">%s</text>`+"\n", marginLeft-6, yB(v)+4, formatCount(v))
	}
	p("</g>\n")
	p(`<g fill="%s">`+"\n", colorReplicas)
	for r := 0; r <= int(rMax); r += max(1, int(rMax)/8) {
		p(`<text x="%d" y="%.1f">%d</text>`+"\n", marginLeft+plotWidth+6, yR(float64(r))+4, r)
	}
	p("</g>\n")
	p(`<g fill="#333" text-anchor="middle">` + "\n")
	for _, v := range ticks(tMax, tStep) {
		p(`<text x="%.1f" y="%d">%gs</text>`+"\n", x(time.Duration(v*float64(time.Second))), marginTop+plotHeight+18, v)
	}
	p("</g>\n")
	p(`<text x="%d" y="%d" fill="#333" text-anchor="middle">time since the demo started</text>`+"\n", marginLeft+plotWidth/2, svgHeight-16)
	p(`<text transform="translate(22 %d) rotate(-90)" fill="%s" text-anchor="middle">backlog (messages)</text>`+"\n", marginTop+plotHeight/2, colorBacklog)
	p(`<text transform="translate(%d %d) rotate(90)" fill="%s" text-anchor="middle">replicas</text>`+"\n", svgWidth-22, marginTop+plotHeight/2, colorReplicas)
	p(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", marginLeft, marginTop, plotWidth, plotHeight)

	if len(tl) > 0 {
		// ebb's cooldowns: no trigger active, the Deployment held until cooldownPeriod has passed.
		p(`<g id="cooldowns" fill="#f0f0f0">` + "\n")
		for i := 0; i < len(tl); i++ {
			if tl[i].Active != "cooling" {
				continue
			}
			j := i
			for j+1 < len(tl) && tl[j+1].Active == "cooling" {
				j++
			}
			end := tl[j].At
			if j+1 < len(tl) {
				end = tl[j+1].At
			}
			p(`<rect x="%.1f" y="%d" width="%.1f" height="%d"/>`+"\n", x(tl[i].At), marginTop, x(end)-x(tl[i].At), plotHeight)
			p(`<text x="%.1f" y="%d" fill="#777" text-anchor="middle">cooldown</text>`+"\n", (x(tl[i].At)+x(end))/2, marginTop+plotHeight-8)
			i = j
		}
		p("</g>\n")
		// Backlog: an area under a line through the samples.
		var line []string
		for _, pt := range tl {
			line = append(line, fmt.Sprintf("%.1f,%.1f", x(pt.At), yB(float64(pt.Backlog))))
		}
		area := fmt.Sprintf("%.1f,%.1f %s %.1f,%.1f", x(tl[0].At), yB(0), strings.Join(line, " "), x(tl[len(tl)-1].At), yB(0))
		p(`<polygon points="%s" fill="%s" stroke="none"/>`+"\n", area, colorBacklogFill)
		p(`<polyline id="backlog" points="%s" fill="none" stroke="%s" stroke-width="1.5"/>`+"\n", strings.Join(line, " "), colorBacklog)
		step := func(id, color, extra string, v func(Point) float64) {
			var pts []string
			for i, pt := range tl {
				if i > 0 {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(pt.At), yR(v(tl[i-1]))))
				}
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(pt.At), yR(v(pt))))
			}
			p(`<polyline id="%s" points="%s" fill="none" stroke="%s" %s/>`+"\n", id, strings.Join(pts, " "), color, extra)
		}
		// Widest first: where the three agree, each still shows.
		step("consumers", colorConsumers, `stroke-width="7" stroke-opacity="0.45"`, func(pt Point) float64 { return float64(pt.Consumers) })
		if pods {
			step("pods", colorPods, `stroke-width="4" stroke-opacity="0.6"`, func(pt Point) float64 { return float64(max(pt.Pods, 0)) })
		}
		step("replicas", colorReplicas, `stroke-width="2.5"`, func(pt Point) float64 { return float64(pt.Replicas) })
		step("hpa-desired", colorDesired, `stroke-width="1.5" stroke-dasharray="6 4"`, func(pt Point) float64 { return float64(max(pt.HPADesired, 0)) })

		// ebb's decisions.
		p(`<g id="decisions" fill="#333" font-size="11">` + "\n")
		for _, pt := range tl {
			for _, ev := range pt.Events {
				reason, ok := strings.CutPrefix(ev, "ebb ")
				if !ok {
					continue
				}
				reason, _, _ = strings.Cut(reason, ":")
				p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333" stroke-dasharray="2 3"/>`+"\n", x(pt.At), marginTop, x(pt.At), marginTop+plotHeight)
				p(`<text x="%.1f" y="%d">ebb: %s</text>`+"\n", x(pt.At)+3, marginTop+12, esc(reason))
			}
		}
		p("</g>\n")
	}

	// Legend, between the subtitle and the plot.
	type legend struct{ color, extra, label string }
	items := []legend{
		{colorBacklog, `stroke-width="2.5"`, "backlog (group lag)"},
		{colorReplicas, `stroke-width="2.5"`, "Deployment replicas"},
		{colorDesired, `stroke-width="1.5" stroke-dasharray="6 4"`, "HPA desired replicas"},
	}
	if pods {
		items = append(items, legend{colorPods, `stroke-width="4" stroke-opacity="0.6"`, "pods Running"},
			legend{colorConsumers, `stroke-width="7" stroke-opacity="0.45"`, "group members"})
	} else {
		items = append(items, legend{colorConsumers, `stroke-width="7" stroke-opacity="0.45"`, "simulated consumers"})
	}
	lx, ly := marginLeft, marginTop-10
	for _, item := range items {
		p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" %s/>`+"\n", lx, ly-4, lx+22, ly-4, item.color, item.extra)
		p(`<text x="%d" y="%d">%s</text>`+"\n", lx+27, ly, item.label)
		lx += 27 + 7*len(item.label) + 24 // about 7 units a character at 12px
	}
	p("</svg>\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the SVG: %w", err)
	}
	return nil
}

func esc(s string) string { return html.EscapeString(s) }

// axis picks an axis for values up to v: a step of 1, 2 or 5 times a power of ten giving at most five
// steps, and the first multiple of it at or above v.
func axis(v float64) (top, step float64) {
	step = niceCeil(v / 5)
	return math.Ceil(v/step) * step, step
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*pow >= v {
			return m * pow
		}
	}
	return 10 * pow
}

// ticks are the multiples of step from 0 to top, top included.
func ticks(top, step float64) []float64 {
	var out []float64
	for i := 0; float64(i)*step <= top+step/1e6; i++ {
		out = append(out, float64(i)*step)
	}
	return out
}

func formatCount(v float64) string {
	if v >= 1000 && math.Mod(v, 1000) == 0 {
		return fmt.Sprintf("%gk", v/1000)
	}
	return fmt.Sprintf("%g", v)
}
