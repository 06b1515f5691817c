package demo

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Point is one observation of the loop.
type Point struct {
	// At is the time since the demo started.
	At time.Duration
	// Backlog is the consumer group's lag: messages in the topic not yet committed.
	Backlog int64
	// HPADesired is the HPA's status.desiredReplicas; -1 while there is no HPA status.
	HPADesired int32
	// Replicas is the Deployment's spec.replicas.
	Replicas int32
	// Pods is the number of the Deployment's pods Running (and not terminating); -1 where no node runs
	// pods (the consumers are simulated).
	Pods int
	// Consumers is the number of consumers: the simulated ones running, or, with pods, the members of the
	// consumer group as the broker describes it.
	Consumers int
	// Active is ebb's view, from the ScaledConsumer's Active condition: "active", "cooling" (idle, and
	// waiting for cooldownPeriod before it scales to zero), "idle" or "" (unknown).
	Active string
	// Events are the events of ebb and of the HPA that appeared since the previous point, as
	// "source Reason: note".
	Events []string
}

// Timeline is the observations of a demo, in order.
type Timeline []Point

// Header is the column header of Line.
func Header() string {
	return fmt.Sprintf("%6s  %8s  %11s  %8s  %4s  %9s  %-7s  %s", "time", "backlog", "hpa-desired", "replicas", "pods", "consumers", "ebb", "events")
}

// Line renders p under Header.
func (p Point) Line() string {
	desired := "-"
	if p.HPADesired >= 0 {
		desired = strconv.Itoa(int(p.HPADesired))
	}
	pods := "-"
	if p.Pods >= 0 {
		pods = strconv.Itoa(p.Pods)
	}
	active := p.Active
	if active == "" {
		active = "-"
	}
	return strings.TrimRight(fmt.Sprintf("%5ds  %8d  %11s  %8d  %4s  %9d  %-7s  %s",
		int(p.At.Round(time.Second)/time.Second), p.Backlog, desired, p.Replicas, pods, p.Consumers, active, strings.Join(p.Events, "; ")), " ")
}

// Changed reports whether p differs from prev in anything but time: the lines worth printing.
func (p Point) Changed(prev Point) bool {
	return p.Backlog != prev.Backlog || p.HPADesired != prev.HPADesired || p.Replicas != prev.Replicas ||
		p.Pods != prev.Pods || p.Consumers != prev.Consumers || p.Active != prev.Active || len(p.Events) > 0
}

// Shape is what a timeline shows of the loop.
type Shape struct {
	// Peak is the most replicas the Deployment had.
	Peak int32
	// PeakPods is the most pods Running at once; -1 where no pods run (simulated consumers).
	PeakPods int
	// PeakBacklog is the largest backlog seen.
	PeakBacklog int64
	// WokeAt is when the Deployment first left 0; PeakAt when it first reached Peak; ZeroAt when it was
	// back at 0 after Peak, with no backlog, no pod Running and no consumer left in the group. Each is -1
	// when it did not happen.
	WokeAt, PeakAt, ZeroAt time.Duration
}

// Shape summarizes the timeline.
func (tl Timeline) Shape() Shape {
	s := Shape{PeakPods: -1, WokeAt: -1, PeakAt: -1, ZeroAt: -1}
	for _, p := range tl {
		if p.Replicas > 0 && s.WokeAt < 0 {
			s.WokeAt = p.At
		}
		if p.Replicas > s.Peak {
			s.Peak, s.PeakAt, s.ZeroAt = p.Replicas, p.At, -1
		}
		s.PeakBacklog = max(s.PeakBacklog, p.Backlog)
		s.PeakPods = max(s.PeakPods, p.Pods)
		if s.Peak > 0 && s.ZeroAt < 0 && p.Replicas == 0 && p.Backlog == 0 && p.Pods <= 0 && p.Consumers == 0 {
			s.ZeroAt = p.At
		}
	}
	return s
}

// RoundTrip reports whether the timeline went from 0 replicas up to more than one and back to 0 with the
// backlog drained and every consumer stopped: the loop the demo shows.
func (s Shape) RoundTrip() bool {
	return s.WokeAt >= 0 && s.Peak > 1 && s.ZeroAt > s.PeakAt
}

// String says it in one line.
func (s Shape) String() string {
	if s.WokeAt < 0 {
		return "the Deployment never left 0 replicas"
	}
	out := fmt.Sprintf("woke at %v, peaked at %d replicas at %v (backlog peak %d", s.WokeAt.Round(time.Second), s.Peak, s.PeakAt.Round(time.Second), s.PeakBacklog)
	if s.PeakPods >= 0 {
		out += fmt.Sprintf(", at most %d pods Running", s.PeakPods)
	}
	out += ")"
	if s.ZeroAt >= 0 {
		out += fmt.Sprintf(", back to 0 at %v", s.ZeroAt.Round(time.Second))
	} else {
		out += ", not back to 0"
	}
	return out
}
