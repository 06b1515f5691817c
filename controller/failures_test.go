package controller

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/log"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

// A trigger that starts failing, fallback, and the way back each send one event and one log line at the
// default verbosity, once per transition: the polls in between send nothing (issue 16, item 5).
func TestAnnounceFailures(t *testing.T) {
	sc := &ebbv1.ScaledConsumer{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "orders"}}
	sc.Spec.Fallback = &ebbv1.Fallback{FailureThreshold: 2, Replicas: 4}
	rec := events.NewFakeRecorder(100)
	r := &Reconciler{Recorder: rec, Metrics: NewMetrics(nil)}
	var logs []string
	ctx := log.IntoContext(t.Context(), funcr.New(func(prefix, args string) { logs = append(logs, args) }, funcr.Options{Verbosity: 0}))

	ok := triggerState{Name: "lag", Sampled: true, Values: []float64{7}}
	failing := func(n int32) triggerState {
		s := triggerState{Name: "lag", Sampled: true, Values: []float64{7}, Err: errors.New("broker unreachable"), ConsecutiveFailures: n}
		s.FallbackDue = n >= 2
		return s
	}
	steps := []struct {
		name   string
		state  triggerState
		events []string // "type reason" of the events this step sends
		log    string   // a word of the one log line this step writes (none when empty)
	}{
		{name: "healthy", state: ok},
		{name: "starts-failing", state: failing(1), events: []string{"Warning TriggerFailing"}, log: "trigger failing"},
		{name: "enters-fallback", state: failing(2), events: []string{"Warning TriggersFailing"}, log: "entering fallback"},
		{name: "still-failing", state: failing(3)},
		{name: "still-failing-again", state: failing(9)},
		{name: "recovers", state: ok, events: []string{"Normal TriggerRecovered", "Normal FallbackEnded"}, log: "recovered"},
		{name: "healthy-again", state: ok},
	}
	for _, s := range steps {
		logs = nil
		states := []triggerState{s.state}
		before := r.failuresBefore(sc)
		r.setActivityConditions(sc, states, activationResult{})
		r.setTriggerStatus(sc, states)
		r.announceFailures(ctx, sc, before, states)
		var got []string
		for len(rec.Events) > 0 {
			e := <-rec.Events
			f := strings.SplitN(e, " ", 3)
			got = append(got, f[0]+" "+f[1])
			if f[1] == ReasonTriggerFailing && !strings.Contains(e, "broker unreachable") {
				t.Errorf("%s: event %q does not name the error", s.name, e)
			}
			if f[1] == ReasonTriggersFailing && !strings.Contains(e, "fallback.replicas=4") {
				t.Errorf("%s: event %q does not name the fallback replicas", s.name, e)
			}
		}
		if diff := cmp.Diff(got, s.events); diff != "" {
			t.Errorf("%s: events (-got +want):\n%s", s.name, diff)
		}
		if s.log == "" && len(logs) > 0 || s.log != "" && (len(logs) == 0 || !strings.Contains(strings.Join(logs, "\n"), s.log)) {
			t.Errorf("%s: logs %q, want one saying %q", s.name, logs, s.log)
		}
	}

	// A new process reads what status says and announces nothing that was announced before.
	restarted := &Reconciler{Recorder: rec, Metrics: NewMetrics(nil)}
	for _, st := range []triggerState{failing(1), failing(2), failing(5)} {
		before := restarted.failuresBefore(sc)
		restarted.setActivityConditions(sc, []triggerState{st}, activationResult{})
		restarted.setTriggerStatus(sc, []triggerState{st})
		restarted.announceFailures(ctx, sc, before, []triggerState{st})
	}
	if n := len(rec.Events); n != 2 {
		t.Fatalf("a failure seen for the first time by a new process sent %d events, want 2 (failing, fallback)", n)
	}
	sc2 := sc.DeepCopy()
	again := &Reconciler{Recorder: rec, Metrics: NewMetrics(nil)}
	before := again.failuresBefore(sc2)
	again.setActivityConditions(sc2, []triggerState{failing(5)}, activationResult{})
	again.setTriggerStatus(sc2, []triggerState{failing(5)})
	again.announceFailures(ctx, sc2, before, []triggerState{failing(5)})
	if n := len(rec.Events); n != 2 {
		t.Errorf("a restart during fallback sent %d more events, want none", n-2)
	}
}
