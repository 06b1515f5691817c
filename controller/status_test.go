package controller

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

func TestOnlyValuesChanged(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	base := ebbv1.ScaledConsumerStatus{
		ObservedGeneration: 2,
		HPAName:            "ebb-orders",
		Conditions: []metav1.Condition{{
			Type: ebbv1.ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonHPAReady, Message: "ready",
			LastTransitionTime: metav1.NewTime(t0), ObservedGeneration: 2,
		}},
		LastActiveTime: &metav1.Time{Time: t0},
		Triggers: []ebbv1.TriggerStatus{
			{Name: "kafka", Value: "12", Active: true, LastPollTime: &metav1.Time{Time: t0}},
			{Name: "rabbitmq", Value: "0", LastPollTime: &metav1.Time{Time: t0}},
		},
	}
	later := &metav1.Time{Time: t0.Add(5 * time.Second)}
	tests := []struct {
		name   string
		change func(*ebbv1.ScaledConsumerStatus)
		want   bool
	}{
		{name: "nothing", change: func(*ebbv1.ScaledConsumerStatus) {}, want: true},
		{name: "value", change: func(s *ebbv1.ScaledConsumerStatus) { s.Triggers[0].Value = "40" }, want: true},
		{name: "poll-time", change: func(s *ebbv1.ScaledConsumerStatus) { s.Triggers[1].LastPollTime = later }, want: true},
		{name: "values-and-poll-times", change: func(s *ebbv1.ScaledConsumerStatus) {
			for i := range s.Triggers {
				s.Triggers[i].Value, s.Triggers[i].LastPollTime = "7", later
			}
		}, want: true},
		// A trigger's message (a cron window's next change) changes with its activity, which is written at
		// once; alone it is throttled like values.
		{name: "message", change: func(s *ebbv1.ScaledConsumerStatus) { s.Triggers[0].Message = "in a window until 17:00" }, want: true},
		{name: "first-value", change: func(s *ebbv1.ScaledConsumerStatus) { s.Triggers[1].Value = "" }, want: true},
		{name: "active", change: func(s *ebbv1.ScaledConsumerStatus) { s.Triggers[1].Active = true }, want: false},
		// Error text and failure counts change every tick during an outage; the Fallback condition carries
		// the transitions that matter, so these alone are throttled like values.
		{name: "last-error", change: func(s *ebbv1.ScaledConsumerStatus) { s.Triggers[0].LastError = "broker down" }, want: true},
		{name: "consecutive-failures", change: func(s *ebbv1.ScaledConsumerStatus) { s.Triggers[0].ConsecutiveFailures = 1 }, want: true},
		{name: "trigger-removed", change: func(s *ebbv1.ScaledConsumerStatus) { s.Triggers = s.Triggers[:1] }, want: false},
		{name: "trigger-renamed", change: func(s *ebbv1.ScaledConsumerStatus) { s.Triggers[1].Name = "nats" }, want: false},
		{name: "condition", change: func(s *ebbv1.ScaledConsumerStatus) { s.Conditions[0].Message = "other" }, want: false},
		// lastActiveTime moves at every sample while a trigger is active: throttled like values. Its first
		// value is written at once, as is the change of activity that stops it.
		{name: "last-active-time", change: func(s *ebbv1.ScaledConsumerStatus) { s.LastActiveTime = later }, want: true},
		{name: "first-last-active-time", change: func(s *ebbv1.ScaledConsumerStatus) { s.LastActiveTime = nil }, want: false},
		{name: "hpa-name", change: func(s *ebbv1.ScaledConsumerStatus) { s.HPAName = "orders-hpa" }, want: false},
		{name: "observed-generation", change: func(s *ebbv1.ScaledConsumerStatus) { s.ObservedGeneration = 3 }, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := *base.DeepCopy(), *base.DeepCopy()
			tc.change(&b)
			wantA, wantB := *a.DeepCopy(), *b.DeepCopy()
			if got := onlyValuesChanged(a, b); got != tc.want {
				t.Errorf("onlyValuesChanged = %v, want %v", got, tc.want)
			}
			if diff := cmp.Diff(a, wantA); diff != "" {
				t.Errorf("onlyValuesChanged changed its first argument (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(b, wantB); diff != "" {
				t.Errorf("onlyValuesChanged changed its second argument (-got +want):\n%s", diff)
			}
		})
	}
}
