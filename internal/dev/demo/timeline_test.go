package demo

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const s = time.Second

// loop is a made-up timeline of the shape the demo shows with simulated consumers (no pods): idle, a
// burst, up to 4, down, cooldown, 0.
var loop = Timeline{
	{At: 0, HPADesired: -1, Pods: -1},
	{At: 1 * s, HPADesired: 0, Pods: -1, Active: "idle"},
	{At: 2 * s, Backlog: 400, HPADesired: 0, Replicas: 1, Pods: -1, Consumers: 1, Active: "active", Events: []string{"ebb Activated: Deployment c: waking the target from 0 to 1 replicas"}},
	{At: 3 * s, Backlog: 390, HPADesired: 4, Replicas: 4, Pods: -1, Consumers: 4, Active: "active", Events: []string{"hpa SuccessfulRescale: New size: 4 (above target)"}},
	{At: 4 * s, Backlog: 100, HPADesired: 4, Replicas: 4, Pods: -1, Consumers: 4, Active: "active"},
	{At: 5 * s, Backlog: 0, HPADesired: 1, Replicas: 1, Pods: -1, Consumers: 1, Active: "cooling"},
	{At: 6 * s, Backlog: 0, HPADesired: 1, Replicas: 1, Pods: -1, Consumers: 1, Active: "cooling"},
	{At: 7 * s, Backlog: 0, HPADesired: 1, Replicas: 0, Pods: -1, Consumers: 0, Active: "idle", Events: []string{"ebb CooledDown: Deployment c: scaling from 1 to 0"}},
}

// podLoop is the same loop with real pods: they start after the replicas are set and join the consumer
// group after they start, and the last one stops a second after the Deployment is back at 0.
var podLoop = Timeline{
	{At: 0, HPADesired: -1},
	{At: 1 * s, HPADesired: 0, Active: "idle"},
	{At: 2 * s, Backlog: 400, HPADesired: 0, Replicas: 1, Active: "active", Events: []string{"ebb Activated: Deployment c: waking the target from 0 to 1 replicas"}},
	{At: 3 * s, Backlog: 400, HPADesired: 4, Replicas: 4, Pods: 1, Active: "active", Events: []string{"hpa SuccessfulRescale: New size: 4 (above target)"}},
	{At: 4 * s, Backlog: 380, HPADesired: 4, Replicas: 4, Pods: 4, Consumers: 1, Active: "active"},
	{At: 5 * s, Backlog: 100, HPADesired: 4, Replicas: 4, Pods: 4, Consumers: 4, Active: "active"},
	{At: 6 * s, Backlog: 0, HPADesired: 1, Replicas: 1, Pods: 1, Consumers: 1, Active: "cooling"},
	{At: 7 * s, Backlog: 0, HPADesired: 1, Replicas: 0, Pods: 1, Consumers: 1, Active: "idle", Events: []string{"ebb CooledDown: Deployment c: scaling from 1 to 0"}},
	{At: 8 * s, Backlog: 0, HPADesired: 1, Replicas: 0, Pods: 0, Consumers: 0, Active: "idle"},
}

func TestLines(t *testing.T) {
	tests := []struct {
		name string
		tl   Timeline
		want []string
	}{{
		name: "simulated",
		tl:   loop,
		want: []string{
			"    0s         0            -         0     -          0  -",
			"    1s         0            0         0     -          0  idle",
			"    2s       400            0         1     -          1  active   ebb Activated: Deployment c: waking the target from 0 to 1 replicas",
			"    3s       390            4         4     -          4  active   hpa SuccessfulRescale: New size: 4 (above target)",
			"    4s       100            4         4     -          4  active",
			"    5s         0            1         1     -          1  cooling",
			// 6s changed nothing: no line.
			"    7s         0            1         0     -          0  idle     ebb CooledDown: Deployment c: scaling from 1 to 0",
		},
	}, {
		name: "pods",
		tl:   podLoop,
		want: []string{
			"    0s         0            -         0     0          0  -",
			"    1s         0            0         0     0          0  idle",
			"    2s       400            0         1     0          0  active   ebb Activated: Deployment c: waking the target from 0 to 1 replicas",
			"    3s       400            4         4     1          0  active   hpa SuccessfulRescale: New size: 4 (above target)",
			"    4s       380            4         4     4          1  active",
			"    5s       100            4         4     4          4  active",
			"    6s         0            1         1     1          1  cooling",
			"    7s         0            1         0     1          1  idle     ebb CooledDown: Deployment c: scaling from 1 to 0",
			"    8s         0            1         0     0          0  idle",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for i, p := range tt.tl {
				if i == 0 || p.Changed(tt.tl[i-1]) {
					got = append(got, p.Line())
				}
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("lines (-got +want):\n%s", diff)
			}
		})
	}
	if got, want := Header(), "  time   backlog  hpa-desired  replicas  pods  consumers  ebb      events"; got != want {
		t.Errorf("Header() = %q, want %q", got, want)
	}
}

func TestShape(t *testing.T) {
	tests := []struct {
		name      string
		tl        Timeline
		want      Shape
		roundTrip bool
		text      string
	}{{
		name:      "round-trip",
		tl:        loop,
		want:      Shape{Peak: 4, PeakPods: -1, PeakBacklog: 400, WokeAt: 2 * s, PeakAt: 3 * s, ZeroAt: 7 * s},
		roundTrip: true,
		text:      "woke at 2s, peaked at 4 replicas at 3s (backlog peak 400), back to 0 at 7s",
	}, {
		name:      "pods-round-trip",
		tl:        podLoop,
		want:      Shape{Peak: 4, PeakPods: 4, PeakBacklog: 400, WokeAt: 2 * s, PeakAt: 3 * s, ZeroAt: 8 * s},
		roundTrip: true,
		text:      "woke at 2s, peaked at 4 replicas at 3s (backlog peak 400, at most 4 pods Running), back to 0 at 8s",
	}, {
		name:      "pods-still-running-is-not-done",
		tl:        podLoop[:8],
		want:      Shape{Peak: 4, PeakPods: 4, PeakBacklog: 400, WokeAt: 2 * s, PeakAt: 3 * s, ZeroAt: -1},
		roundTrip: false,
		text:      "woke at 2s, peaked at 4 replicas at 3s (backlog peak 400, at most 4 pods Running), not back to 0",
	}, {
		name: "pods-stopped-but-members-left-is-not-done",
		tl: append(podLoop[:7:7],
			Point{At: 7 * s, Backlog: 0, HPADesired: 1, Replicas: 0, Pods: 0, Consumers: 1, Active: "idle"},
			Point{At: 8 * s, Backlog: 0, HPADesired: 1, Replicas: 0, Pods: 0, Consumers: 0, Active: "idle"}),
		want:      Shape{Peak: 4, PeakPods: 4, PeakBacklog: 400, WokeAt: 2 * s, PeakAt: 3 * s, ZeroAt: 8 * s},
		roundTrip: true,
		text:      "woke at 2s, peaked at 4 replicas at 3s (backlog peak 400, at most 4 pods Running), back to 0 at 8s",
	}, {
		name:      "never-woke",
		tl:        loop[:2],
		want:      Shape{PeakPods: -1, WokeAt: -1, PeakAt: -1, ZeroAt: -1},
		roundTrip: false,
		text:      "the Deployment never left 0 replicas",
	}, {
		name:      "not-back",
		tl:        loop[:6],
		want:      Shape{Peak: 4, PeakPods: -1, PeakBacklog: 400, WokeAt: 2 * s, PeakAt: 3 * s, ZeroAt: -1},
		roundTrip: false,
		text:      "woke at 2s, peaked at 4 replicas at 3s (backlog peak 400), not back to 0",
	}, {
		name: "only-one-replica",
		tl: Timeline{
			{At: 0, Pods: -1}, {At: s, Backlog: 5, Replicas: 1, Pods: -1}, {At: 2 * s, Replicas: 0, Pods: -1},
		},
		want:      Shape{Peak: 1, PeakPods: -1, PeakBacklog: 5, WokeAt: s, PeakAt: s, ZeroAt: 2 * s},
		roundTrip: false,
		text:      "woke at 1s, peaked at 1 replicas at 1s (backlog peak 5), back to 0 at 2s",
	}, {
		name: "zero-with-backlog-left-is-not-done",
		tl: Timeline{
			{At: 0, Pods: -1}, {At: s, Backlog: 500, Replicas: 2, Pods: -1}, {At: 2 * s, Backlog: 300, Replicas: 0, Pods: -1},
		},
		want:      Shape{Peak: 2, PeakPods: -1, PeakBacklog: 500, WokeAt: s, PeakAt: s, ZeroAt: -1},
		roundTrip: false,
		text:      "woke at 1s, peaked at 2 replicas at 1s (backlog peak 500), not back to 0",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.tl.Shape()
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Shape() (-got +want):\n%s", diff)
			}
			if got.RoundTrip() != tt.roundTrip {
				t.Errorf("RoundTrip() = %t, want %t", got.RoundTrip(), tt.roundTrip)
			}
			if got.String() != tt.text {
				t.Errorf("String() = %q, want %q", got.String(), tt.text)
			}
		})
	}
}

func TestShortNote(t *testing.T) {
	for _, tc := range []struct{ source, note, want string }{
		{"hpa", "New size: 5; reason: external metric s0-lag(&LabelSelector{MatchLabels:map[string]string{ebb.dev/scaledconsumer: orders,},MatchExpressions:[]LabelSelectorRequirement{},}) above target", "New size: 5 (above target)"},
		{"hpa", "New size: 1; reason: All metrics below target", "New size: 1 (below target)"},
		{"hpa", "New size: 3; reason: something else", "New size: 3 (something else)"},
		{"hpa", "failed to get external metric", "failed to get external metric"},
		{"ebb", "Deployment c: x; reason: y", "Deployment c: x; reason: y"},
	} {
		if got := shortNote(tc.source, tc.note); got != tc.want {
			t.Errorf("shortNote(%q, %q) = %q, want %q", tc.source, tc.note, got, tc.want)
		}
	}
}
