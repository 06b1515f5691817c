package rabbitmq_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers"
)

// broker is the test RabbitMQ: its AMQP and management API URLs (with credentials).
type broker struct {
	t         *testing.T
	amqpURL   *url.URL
	httpURL   *url.URL
	user, pwd string
}

// requireBroker fails the test when RabbitMQ or its management API is not reachable.
func requireBroker(t *testing.T) *broker {
	t.Helper()
	a, err := url.Parse(testenv.RabbitMQURL)
	if err != nil {
		t.Fatal(err)
	}
	h, err := url.Parse(testenv.RabbitMQHTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	testenv.RequireTCP(t, "RabbitMQ", a.Host, "hack/ensure-rabbitmq.sh")
	testenv.RequireTCP(t, "RabbitMQ management API", h.Host, "hack/ensure-rabbitmq.sh")
	b := &broker{t: t, amqpURL: a, httpURL: h, user: "guest", pwd: "guest"}
	if a.User != nil {
		b.user = a.User.Username()
		b.pwd, _ = a.User.Password()
	}
	return b
}

// api calls the management API and decodes a JSON answer into out (when not nil). It returns the status.
func (b *broker) api(method, path string, body, out any) int {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			b.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	base := *b.httpURL
	base.User = nil
	req, err := http.NewRequestWithContext(context.Background(), method, strings.TrimSuffix(base.String(), "/")+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	req.SetBasicAuth(b.user, b.pwd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatalf("management API: %s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotFound {
		b.t.Fatalf("management API: %s %s: %s: %s", method, path, resp.Status, raw)
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, out); err != nil {
			b.t.Fatalf("management API: %s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

// vhost creates a vhost unique to the test, with full permissions for the test user, deleted (with its
// queues) when the test ends.
func (b *broker) vhost() string {
	b.t.Helper()
	name := testenv.UniqueName(b.t, "ebb-test")
	b.api(http.MethodPut, "/api/vhosts/"+url.PathEscape(name), map[string]any{}, nil)
	b.t.Cleanup(func() { b.api(http.MethodDelete, "/api/vhosts/"+url.PathEscape(name), nil, nil) })
	b.api(http.MethodPut, "/api/permissions/"+url.PathEscape(name)+"/"+url.PathEscape(b.user),
		map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, nil)
	return name
}

// amqpHost is the AMQP URL of vhost, with credentials (for a TriggerAuthentication).
func (b *broker) amqpHost(vhost string) string {
	u := *b.amqpURL
	u.Path, u.RawPath = "/"+vhost, "/"+url.PathEscape(vhost)
	return u.String()
}

// httpHost is the management API URL of vhost, with credentials (for a TriggerAuthentication).
func (b *broker) httpHost(vhost string) string {
	u := *b.httpURL
	u.Path, u.RawPath = "/"+vhost, "/"+url.PathEscape(vhost)
	return u.String()
}

// conn opens an AMQP connection to vhost for the test's own publishing and consuming.
func (b *broker) conn(vhost string) *amqp.Connection {
	b.t.Helper()
	c, err := amqp.DialConfig(b.amqpURL.String(), amqp.Config{Vhost: vhost})
	if err != nil {
		b.t.Fatalf("dial RabbitMQ vhost %q: %v", vhost, err)
	}
	b.t.Cleanup(func() { _ = c.Close() })
	return c
}

// channel opens a channel in publisher-confirm mode.
func channel(t *testing.T, c *amqp.Connection) *amqp.Channel {
	t.Helper()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	return ch
}

func declare(t *testing.T, ch *amqp.Channel, queue string, args amqp.Table) {
	t.Helper()
	if _, err := ch.QueueDeclare(queue, false, false, false, false, args); err != nil {
		t.Fatalf("declare %q: %v", queue, err)
	}
}

// publish sends n messages to queue through the default exchange and waits for the broker's confirms.
func publish(t *testing.T, ch *amqp.Channel, queue string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	confirms := make([]*amqp.DeferredConfirmation, 0, n)
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, amqp.Publishing{Body: fmt.Appendf(nil, "m%d", i)})
		if err != nil {
			t.Fatalf("publish to %q: %v", queue, err)
		}
		confirms = append(confirms, dc)
	}
	for i, dc := range confirms {
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("publish %d to %q not confirmed: ok=%v err=%v", i, queue, ok, err)
		}
	}
}

// newTrigger builds a trigger from metadata; host goes in the TriggerAuthentication, as credentials do.
func newTrigger(t *testing.T, factory scalers.Factory, host string, md map[string]string, interval time.Duration) scalers.Scaler {
	t.Helper()
	s, err := factory(scalers.Config{TriggerName: "q", Metadata: md, Auth: map[string]string{"host": host}, PollingInterval: interval})
	if err != nil {
		t.Fatalf("new trigger %v: %v", md, err)
	}
	t.Cleanup(func() { _ = s.(io.Closer).Close() })
	return s
}

func sampleErr(t *testing.T, s scalers.Scaler) (scalers.Sample, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return s.Sample(ctx)
}

func sample(t *testing.T, s scalers.Scaler) scalers.Sample {
	t.Helper()
	got, err := sampleErr(t, s)
	if err != nil {
		t.Fatalf("sample: %v", err)
	}
	return got
}

func readErr(t *testing.T, r scalers.DeadLetterReader) (scalers.DeadLetters, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return r.Read(ctx)
}

func read(t *testing.T, r scalers.DeadLetterReader) scalers.DeadLetters {
	t.Helper()
	got, err := readErr(t, r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return got
}

// eventually retries check until it returns nil or timeout passes, then fails with its last error.
func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// valueIs checks a sample's only value.
func valueIs(s scalers.Scaler, want float64) func() error {
	return func() error {
		got, err := s.Sample(context.Background())
		if err != nil {
			return err
		}
		if len(got.Values) != 1 || got.Values[0] != want {
			return fmt.Errorf("values %v, want [%v]", got.Values, want)
		}
		return nil
	}
}

// tcpProxy forwards connections from a local port to target until cut, and again after restore.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	l     net.Listener
	conns []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{t: t, target: target}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = l.Addr().String()
	p.serve(l)
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) serve(l net.Listener) {
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
}

// cut closes the listener and every forwarded connection: the server looks gone (connection refused).
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		_ = p.l.Close()
		p.l = nil
	}
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// restore listens again on the same address.
func (p *tcpProxy) restore() {
	p.t.Helper()
	var l net.Listener
	var err error
	for range 50 {
		if l, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.serve(l)
}

// isErr checks that err wraps want.
func isErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want one wrapping %v", err, want)
	}
}

// deadLettering runs, until the test ends, a consumer of queue that rejects without requeueing (so
// RabbitMQ dead-letters it) one message in failEvery and acknowledges the others, and a producer of
// perSecond messages a second on ch.
func deadLettering(t *testing.T, conn *amqp.Connection, ch *amqp.Channel, queue string, failEvery, perSecond int) {
	t.Helper()
	consumer, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	deliveries, err := consumer.Consume(queue, "failing", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		n := 0
		for {
			select {
			case <-ctx.Done():
				return
			case d, ok := <-deliveries:
				if !ok {
					return
				}
				if n++; n%failEvery == 0 {
					_ = d.Nack(false, false)
				} else {
					_ = d.Ack(false)
				}
			}
		}
	})
	wg.Go(func() {
		tk := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				_ = ch.PublishWithContext(ctx, "", queue, false, false, amqp.Publishing{Body: []byte("m")})
			}
		}
	})
	t.Cleanup(func() { stop(); wg.Wait() })
}
