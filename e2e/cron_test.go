package e2e_test

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers/builtin"
	"github.com/ebbscale/ebb/scalers/cron"
	"github.com/ebbscale/ebb/scalers/scalertest"
)

// TestCronWindow runs a cron trigger through the whole loop with the real HPA controller: before the
// window the target stays at zero; the window wakes it and the HPA holds exactly desiredReplicas; a
// backlog trigger beside it that asks for more wins (the HPA takes the largest), and when its backlog is
// gone the window holds desiredReplicas again; at the window's end the HPA goes down to one and ebb, only
// after the cooldown, to zero. Status says when the window closes or opens.
//
// The cron trigger reads a clock the test moves (cron.WithClock, through the registry the test gives
// ebb), so five-field minute schedules open and close within seconds; the cooldown and the HPA run on
// real time.
func TestCronWindow(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 12, 7, 8, 59, 0, 0, berlin))
	src := scalertest.New()
	reg := src.Register(builtin.Registry(builtin.Options{}))
	reg[cron.Type] = cron.NewType(cron.WithClock(clk))

	env, ns, replicas := startLoop(t, reg, "cron")
	ctx := t.Context()
	c := env.Client
	key := testenv.UniqueName(t, "k")
	src.Set(key, 0)
	maxReplicas, cooldown := int32(10), 8*time.Second
	if err := c.Create(ctx, &ebbv1.ScaledConsumer{
		ObjectMeta: metav1.ObjectMeta{Name: "reports", Namespace: ns},
		Spec: ebbv1.ScaledConsumerSpec{
			ScaleTargetRef:  ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "consumer"},
			MaxReplicas:     &maxReplicas,
			PollingInterval: &metav1.Duration{Duration: 200 * time.Millisecond},
			CooldownPeriod:  &metav1.Duration{Duration: cooldown},
			Triggers: []ebbv1.Trigger{
				{Name: "hours", Type: cron.Type, Metadata: map[string]string{
					"timezone": "Europe/Berlin", "start": "0 9 * * 1-5", "end": "0 17 * * 1-5", "desiredReplicas": "3",
				}},
				{Name: "backlog", Type: scalertest.Type, Metadata: map[string]string{"key": key, "target": "10"}},
			},
		},
	}); err != nil {
		t.Fatal(err)
	}

	message := func() string {
		sc := &ebbv1.ScaledConsumer{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "reports"}, sc); err != nil {
			t.Fatal(err)
		}
		for _, tr := range sc.Status.Triggers {
			if tr.Name == "hours" {
				return tr.Message
			}
		}
		return ""
	}
	// wait waits for the metrics API to serve served for the cron trigger, the Deployment to have want
	// replicas and the trigger's status message to contain msg; it returns when that happened.
	wait := func(name string, served int64, want int32, msg string) time.Time {
		t.Helper()
		wantValue := resource.NewQuantity(served, resource.DecimalSI)
		deadline := time.Now().Add(60 * time.Second)
		var value, m string
		var got int32
		for time.Now().Before(deadline) {
			v, err := env.RawExternalMetric(t, ns, "hours", "reports")
			value, got, m = v, replicas(), message()
			if q, perr := resource.ParseQuantity(value); err == nil && perr == nil && q.Cmp(*wantValue) == 0 && got == want && strings.Contains(m, msg) {
				t.Logf("%s: served %s, replicas %d, status %q", name, value, got, m)
				return time.Now()
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("%s: metrics API says %q, Deployment has %d replicas, status %q; want %s, %d and %q", name, value, got, m, wantValue, want, msg)
		return time.Time{}
	}

	wait("before the window", 0, 0, "the next opens at 2026-12-07T09:00:00+01:00 (Europe/Berlin)")
	time.Sleep(2 * time.Second)
	if n := replicas(); n != 0 {
		t.Fatalf("before the window: %d replicas, want 0", n)
	}

	clk.SetTime(time.Date(2026, 12, 7, 9, 0, 0, 0, berlin))
	wait("the window opens", 3, 3, "in a window (3 replicas) until 2026-12-07T17:00:00+01:00 (Europe/Berlin)")

	src.Set(key, 55)
	wait("a backlog asks for more", 3, 6, "until") // ceil(55/10) beats the window's 3
	src.Set(key, 0)
	wait("the backlog is gone", 3, 3, "until")

	clk.SetTime(time.Date(2026, 12, 7, 17, 0, 0, 0, berlin))
	ended := time.Now()
	wait("the window closes: the HPA goes to one", 0, 1, "the next opens at 2026-12-08T09:00:00+01:00 (Europe/Berlin)")
	// ebb holds one replica for the cooldown, counted from the last sample inside the window.
	for time.Since(ended) < cooldown-time.Second {
		if n := replicas(); n == 0 {
			t.Fatalf("at zero %s after the window's end; the cooldown is %s", time.Since(ended).Round(time.Millisecond), cooldown)
		}
		time.Sleep(200 * time.Millisecond)
	}
	done := wait("after the cooldown", 0, 0, "the next opens")
	t.Logf("at zero %s after the window's end (cooldown %s)", done.Sub(ended).Round(100*time.Millisecond), cooldown)
}
