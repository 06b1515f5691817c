package e2e_test

import (
	"testing"
	"time"

	"github.com/ebbscale/ebb/controller"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers/builtin"
)

// brokerFault is a broker a scenario stops and starts again.
type brokerFault struct {
	broker   chaosBroker
	down, up func()
}

// TestChaosBrokerOutage stops each broker type under a backlog, with and without fallback, and starts it
// again at the same address: one control plane with the HPA controller and one ebb (in this process) for
// every scenario, each in its own namespace with its own broker, in parallel.
func TestChaosBrokerOutage(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, localcluster.Options{ControllerManager: true})
	startEbb(t, env, builtin.Registry(builtin.Options{}))
	kafka := func(t *testing.T, _ *chaosTarget) brokerFault {
		b := newChaosKafka(t)
		return brokerFault{broker: b, down: b.stop, up: func() { b.start(t) }}
	}
	rabbitmq := func(t *testing.T, ct *chaosTarget) brokerFault {
		b := newChaosRabbitMQ(t, ct)
		return brokerFault{broker: b, down: b.stop, up: func() { b.start(t) }}
	}
	natsServer := func(t *testing.T, _ *chaosTarget) brokerFault {
		b := newChaosNATS(t)
		return brokerFault{broker: b, down: b.srv.Stop, up: b.srv.Restart}
	}
	for _, tc := range []struct {
		name     string
		fallback int32
		broker   func(*testing.T, *chaosTarget) brokerFault
	}{
		{name: "kafka-with-fallback", fallback: 2, broker: kafka},
		{name: "kafka-without-fallback", broker: kafka},
		{name: "rabbitmq-with-fallback", fallback: 2, broker: rabbitmq},
		{name: "rabbitmq-without-fallback", broker: rabbitmq},
		{name: "nats-with-fallback", fallback: 2, broker: natsServer},
		{name: "nats-without-fallback", broker: natsServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ct := newChaosTarget(t, env.Config, "chaos")
			brokerOutage(t, ct, tc.broker(t, ct), tc.fallback)
		})
	}
}

// brokerOutage: a backlog that needs chaosMax replicas; the broker stops for at least 15 s (longer than
// the cooldown) while the consumers stop too; it starts again; then a smaller backlog must still be
// followed. With fallback the target goes to the fallback replicas during the outage; without, it stays
// where it was. The invariant watcher runs throughout.
func brokerOutage(t *testing.T, ct *chaosTarget, f brokerFault, fallback int32) {
	const outage = 15 * time.Second
	w, inv := startWork(t, ct, f.broker, 400, 10*time.Second, fallback)
	time.Sleep(2 * time.Second)

	w.paused.Store(true)
	if fallback > 0 {
		inv.allowed.Store(fallback)
	}
	down := time.Now()
	f.down()
	if fallback > 0 {
		ct.waitFallback(time.Minute, controller.ReasonTriggersFailing)
		timing(t, "broker down -> Fallback=True (TriggersFailing)", time.Since(down))
		ct.waitReplicas(time.Minute, fallback)
		timing(t, "broker down -> target at fallback.replicas", time.Since(down))
	} else {
		ct.waitFallback(time.Minute, controller.ReasonNoFallbackConfigured)
		timing(t, "broker down -> Fallback=False (NoFallbackConfigured): the failure is in status", time.Since(down))
	}
	time.Sleep(time.Until(down.Add(outage)))
	if got, err := ct.replicas(t.Context()); err != nil || (fallback == 0 && got != chaosMax) || (fallback > 0 && got != fallback) {
		t.Errorf("after %s of outage: %d replicas (err %v); want %d", outage, got, err, map[bool]int32{true: fallback, false: chaosMax}[fallback > 0])
	}

	f.up()
	up := time.Now()
	w.paused.Store(false)
	ct.waitFallback(2*time.Minute, controller.ReasonTriggersHealthy)
	timing(t, "broker back -> Fallback=False (TriggersHealthy): values served again", time.Since(up))
	ct.waitReplicas(2*time.Minute, need(w.current()))
	timing(t, "broker back -> target at the replicas the backlog needs", time.Since(up))
	inv.allowed.Store(chaosMax)

	// Scaling goes on: a smaller backlog (held still) is followed.
	w.paused.Store(true)
	w.setBacklog(t, 25)
	timing(t, "after recovery, backlog 25 -> target at 3", ct.waitReplicas(time.Minute, need(25)))
}
