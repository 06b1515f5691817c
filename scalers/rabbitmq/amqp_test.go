package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/rabbitmq"
)

// Queue length with ready and unacknowledged messages: AMQP's passive declare counts the ready ones, the
// management API both (or the ready ones with excludeUnacknowledged).
func TestQueueLengthReadyAndUnacknowledged(t *testing.T) {
	b := requireBroker(t)
	vhost := b.vhost()
	conn := b.conn(vhost)
	ch := channel(t, conn)
	queue := "orders"
	declare(t, ch, queue, nil)
	publish(t, ch, queue, 7)

	// Take 3 without acknowledging them, on a channel kept open until the test ends.
	consumer, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := consumer.Qos(3, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := consumer.Consume(queue, "held", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		select {
		case <-deliveries:
		case <-time.After(10 * time.Second):
			t.Fatal("no delivery")
		}
	}

	pool := rabbitmq.NewPool()
	t.Cleanup(pool.Close)
	over := func(host string, extra ...string) scalers.Scaler {
		md := map[string]string{"queueName": queue, "mode": "QueueLength", "value": "5"}
		for i := 0; i+1 < len(extra); i += 2 {
			md[extra[i]] = extra[i+1]
		}
		return newTrigger(t, pool.New, host, md, 100*time.Millisecond)
	}
	amqpTrigger := over(b.amqpHost(vhost))
	httpTrigger := over(b.httpHost(vhost))
	readyOnly := over(b.httpHost(vhost), "excludeUnacknowledged", "true")

	// RabbitMQ settles the prefetch at once over AMQP; the management API within its statistics interval.
	eventually(t, 5*time.Second, valueIs(amqpTrigger, 4))
	eventually(t, 15*time.Second, valueIs(httpTrigger, 7))
	eventually(t, 15*time.Second, valueIs(readyOnly, 4))
	if got := amqpTrigger.Metrics(); len(got) != 1 || got[0].Target != 5 || got[0].Activation != 0 {
		t.Errorf("metrics %+v, want one with target 5 and activation 0", got)
	}
}

// connInfo is a connection as the management API lists it.
type connInfo struct {
	Name             string         `json:"name"`
	Vhost            string         `json:"vhost"`
	Channels         int            `json:"channels"`
	ConnectedAt      int64          `json:"connected_at"`
	ClientProperties map[string]any `json:"client_properties"`
}

// connectionsNamed lists the server's connections with the client-provided name.
func (b *broker) connectionsNamed(name string) []connInfo {
	b.t.Helper()
	var all []connInfo
	b.api(http.MethodGet, "/api/connections?columns=name,vhost,channels,connected_at,client_properties", nil, &all)
	var out []connInfo
	for _, c := range all {
		if c.ClientProperties["connection_name"] == name {
			out = append(out, c)
		}
	}
	return out
}

// 100 triggers on one server, credentials and vhost hold one AMQP connection with a few channels, and a
// tick (every trigger sampled at once) reads every queue through it. Closing the last trigger closes it.
func TestHundredTriggersOneConnection(t *testing.T) {
	b := requireBroker(t)
	vhost := b.vhost()
	ch := channel(t, b.conn(vhost))
	const queues, triggers = 20, 100
	for i := range queues {
		q := fmt.Sprintf("q%02d", i)
		declare(t, ch, q, nil)
		publish(t, ch, q, i)
	}
	name := testenv.UniqueName(t, "ebb-100")
	pool := rabbitmq.NewPool(rabbitmq.ConnectionName(name))
	t.Cleanup(pool.Close)
	var all []scalers.Scaler
	for i := range triggers {
		s, err := pool.New(scalers.Config{
			TriggerName:     "q",
			Metadata:        map[string]string{"queueName": fmt.Sprintf("q%02d", i%queues), "value": "10", "mode": "QueueLength"},
			Auth:            map[string]string{"host": b.amqpHost(vhost)},
			PollingInterval: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, s)
	}
	for tick := range 3 {
		var wg sync.WaitGroup
		errs := make([]error, triggers)
		got := make([]float64, triggers)
		for i, s := range all {
			wg.Go(func() {
				smp, err := sampleErr(t, s)
				errs[i] = err
				if err == nil {
					got[i] = smp.Values[0]
				}
			})
		}
		wg.Wait()
		for i := range all {
			if errs[i] != nil {
				t.Fatalf("tick %d, trigger %d: %v", tick, i, errs[i])
			}
			if want := float64(i % queues); got[i] != want {
				t.Errorf("tick %d, trigger %d: %v, want %v", tick, i, got[i], want)
			}
		}
		time.Sleep(600 * time.Millisecond) // the next tick takes a new reading
	}
	if got := pool.Connections(); got != 1 {
		t.Errorf("pool holds %d connections, want 1", got)
	}
	var conns []connInfo
	eventually(t, 10*time.Second, func() error {
		conns = b.connectionsNamed(name)
		if len(conns) != 1 {
			return fmt.Errorf("server lists %d connections named %q, want 1", len(conns), name)
		}
		return nil
	})
	// One channel per 64 watched queues: 20 queues take one.
	if c := conns[0]; c.Vhost != vhost || c.Channels != 1 {
		t.Errorf("connection %+v: want vhost %q and 1 channel", c, vhost)
	}

	for _, s := range all {
		if err := s.(io.Closer).Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := pool.Connections(); got != 0 {
		t.Errorf("after closing every trigger the pool holds %d connections, want 0", got)
	}
	eventually(t, 10*time.Second, func() error {
		if n := len(b.connectionsNamed(name)); n != 0 {
			return fmt.Errorf("server still lists %d connections named %q", n, name)
		}
		return nil
	})
}

// A missing queue is ErrQueueNotFound for its trigger only: the 404 closes one channel, which is replaced,
// and the connection (and every other trigger's reading) goes on. Creating the queue ends the error.
func TestAMQPMissingQueue(t *testing.T) {
	b := requireBroker(t)
	vhost := b.vhost()
	ch := channel(t, b.conn(vhost))
	declare(t, ch, "present", nil)
	publish(t, ch, "present", 3)
	name := testenv.UniqueName(t, "ebb-missing")
	pool := rabbitmq.NewPool(rabbitmq.ConnectionName(name))
	t.Cleanup(pool.Close)
	present := newTrigger(t, pool.New, b.amqpHost(vhost), map[string]string{"queueName": "present"}, 100*time.Millisecond)
	missing := newTrigger(t, pool.New, b.amqpHost(vhost), map[string]string{"queueName": "absent"}, 100*time.Millisecond)

	var connectedAt int64
	for i := range 5 {
		_, err := sampleErr(t, missing)
		isErr(t, err, rabbitmq.ErrQueueNotFound)
		if !strings.Contains(err.Error(), `"absent"`) {
			t.Errorf("error %q does not name the queue", err)
		}
		if got := sample(t, present); got.Values[0] != 3 {
			t.Errorf("round %d: present queue %v, want 3", i, got.Values)
		}
		if i == 0 {
			eventually(t, 10*time.Second, func() error {
				conns := b.connectionsNamed(name)
				if len(conns) != 1 {
					return fmt.Errorf("%d connections named %q, want 1", len(conns), name)
				}
				connectedAt = conns[0].ConnectedAt
				return nil
			})
		}
		time.Sleep(60 * time.Millisecond)
	}
	conns := b.connectionsNamed(name)
	if len(conns) != 1 || conns[0].ConnectedAt != connectedAt {
		t.Errorf("connections %+v: want the same one connection as at first (connected at %d)", conns, connectedAt)
	}
	declare(t, ch, "absent", nil)
	publish(t, ch, "absent", 2)
	eventually(t, 5*time.Second, valueIs(missing, 2))
}

// Errors a person can act on: wrong credentials, missing vhost, nothing listening.
func TestAMQPErrors(t *testing.T) {
	b := requireBroker(t)
	vhost := b.vhost()
	wrongPassword := *b.amqpURL
	wrongPassword.User = url.UserPassword(b.user, "not-the-password")
	wrongPassword.Path = "/" + vhost
	closed := "amqp://127.0.0.1:" + fmt.Sprint(testenv.FreePort(t)) + "/"
	tests := []struct {
		name string
		host string
		want error
		// mention is a part of the message that helps: what, or where.
		mention string
	}{
		{name: "wrong-password", host: wrongPassword.String(), want: rabbitmq.ErrAuthentication, mention: "127.0.0.1"},
		{name: "missing-vhost", host: b.amqpHost("no-such-vhost-" + vhost), want: rabbitmq.ErrVhostNotFound, mention: "no-such-vhost"},
		{name: "nothing-listening", host: closed, want: rabbitmq.ErrUnreachable, mention: "connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool := rabbitmq.NewPool()
			t.Cleanup(pool.Close)
			s := newTrigger(t, pool.New, tc.host, map[string]string{"queueName": "q"}, time.Second)
			_, err := sampleErr(t, s)
			isErr(t, err, tc.want)
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
			if strings.Contains(err.Error(), "not-the-password") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// A wrong password is an authentication failure from the first sample on, also when the polling interval
// (and so the sample's deadline) is short: RabbitMQ refuses the login at once when the client asks it to
// (authentication_failure_close), and closes the socket without a word only after 3 s otherwise, which
// read as "unreachable" for every sample with a shorter deadline. Later samples, which dial again after
// the backoff, keep saying so.
func TestAMQPWrongPasswordShortDeadline(t *testing.T) {
	b := requireBroker(t)
	wrong := *b.amqpURL
	wrong.User = url.UserPassword(b.user, "not-the-password")
	pool := rabbitmq.NewPool()
	t.Cleanup(pool.Close)
	s := newTrigger(t, pool.New, wrong.String(), map[string]string{"queueName": "q"}, time.Second)
	for i := range 4 {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		_, err := s.Sample(ctx)
		cancel()
		if !errors.Is(err, rabbitmq.ErrAuthentication) {
			t.Fatalf("sample %d: %v, want %v", i, err, rabbitmq.ErrAuthentication)
		}
		if !strings.Contains(err.Error(), "ACCESS_REFUSED") {
			t.Errorf("sample %d: %q does not carry RabbitMQ's answer (ACCESS_REFUSED)", i, err)
		}
		if strings.Contains(err.Error(), "not-the-password") {
			t.Errorf("error %q shows the password", err)
		}
		time.Sleep(time.Second)
	}
}

// The server going away and coming back, through a TCP proxy the test cuts and restores (RabbitMQ itself
// is shared and keeps running): while it is cut the trigger fails with ErrUnreachable, and once restored it
// reads again, over a new connection, without a restart.
func TestAMQPServerGoesAwayAndComesBack(t *testing.T) {
	b := requireBroker(t)
	vhost := b.vhost()
	ch := channel(t, b.conn(vhost))
	declare(t, ch, "jobs", nil)
	publish(t, ch, "jobs", 4)
	proxy := newTCPProxy(t, b.amqpURL.Host)
	via := *b.amqpURL
	via.Host = proxy.addr
	via.Path = "/" + vhost
	name := testenv.UniqueName(t, "ebb-proxy")
	pool := rabbitmq.NewPool(rabbitmq.ConnectionName(name))
	t.Cleanup(pool.Close)
	s := newTrigger(t, pool.New, via.String(), map[string]string{"queueName": "jobs"}, 200*time.Millisecond)
	eventually(t, 5*time.Second, valueIs(s, 4))

	proxy.cut()
	var cutErr error
	eventually(t, 10*time.Second, func() error {
		_, cutErr = sampleErr(t, s)
		if !errors.Is(cutErr, rabbitmq.ErrUnreachable) {
			return fmt.Errorf("sample while cut: %w, want ErrUnreachable", cutErr)
		}
		return nil
	})
	t.Logf("while cut: %v", cutErr)
	// It keeps failing (and does not hang) while the server is away.
	for range 5 {
		time.Sleep(150 * time.Millisecond)
		start := time.Now()
		_, err := sampleErr(t, s)
		isErr(t, err, rabbitmq.ErrUnreachable)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("a sample while cut took %s", took)
		}
	}
	if got := pool.Connections(); got != 0 {
		t.Errorf("pool holds %d open connections while the server is away, want 0", got)
	}

	publish(t, ch, "jobs", 2)
	proxy.restore()
	// Backoff is at most 10 s (plus jitter), so the trigger reads again within that.
	eventually(t, 20*time.Second, valueIs(s, 6))
	eventually(t, 10*time.Second, func() error {
		if n := len(b.connectionsNamed(name)); n != 1 {
			return fmt.Errorf("server lists %d connections named %q, want 1", n, name)
		}
		return nil
	})
}
