package rabbitmq

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers"
)

// benchQueues is how many queues (and triggers, one per queue) the benchmark watches on one vhost.
const benchQueues = 1000

// BenchmarkTick times one poll tick of 1,000 triggers, each on its own queue of one vhost (queue lengths
// over AMQP or http, or publish rates over http), the way the controller runs it: every trigger sampled at once (mode=parallel), or one after another
// (mode=sequential). The pool's clock moves past the freshness window before each tick, so every tick
// takes a new reading. It reports what the tick cost the server: management API requests, or AMQP
// connections and passive declares, with the memory RabbitMQ holds for the pool's AMQP connection
// (connection_* in its memory breakdown, before and after the pool connects; other clients of a shared
// server add noise).
func BenchmarkTick(b *testing.B) {
	amqpURL, err := url.Parse(testenv.RabbitMQURL)
	if err != nil {
		b.Fatal(err)
	}
	httpURL, err := url.Parse(testenv.RabbitMQHTTPURL)
	if err != nil {
		b.Fatal(err)
	}
	testenv.RequireTCP(b, "RabbitMQ", amqpURL.Host, "hack/ensure-rabbitmq.sh")
	testenv.RequireTCP(b, "RabbitMQ management API", httpURL.Host, "hack/ensure-rabbitmq.sh")
	mgmt := &benchAPI{b: b, base: httpURL}
	vhost := testenv.UniqueName(b, "ebb-bench")
	mgmt.do(http.MethodPut, "/api/vhosts/"+url.PathEscape(vhost), map[string]any{}, nil)
	b.Cleanup(func() { mgmt.do(http.MethodDelete, "/api/vhosts/"+url.PathEscape(vhost), nil, nil) })
	user := httpURL.User.Username()
	mgmt.do(http.MethodPut, "/api/permissions/"+url.PathEscape(vhost)+"/"+url.PathEscape(user), map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, nil)
	fillQueues(b, amqpURL.String(), vhost)

	for _, trigger := range []string{"amqp", "http", "http-MessageRate"} {
		protocol, rates := strings.CutSuffix(trigger, "-MessageRate")
		for _, mode := range []string{"parallel", "sequential"} {
			b.Run(fmt.Sprintf("trigger=%s/mode=%s", trigger, mode), func(b *testing.B) {
				var clock atomic.Int64
				clock.Store(time.Now().UnixNano())
				name := testenv.UniqueName(b, "ebb-bench")
				p := NewPool(ConnectionName(name))
				p.now = func() time.Time { return time.Unix(0, clock.Load()) }
				defer p.Close()
				host := *amqpURL
				if protocol == "http" {
					host = *httpURL
				}
				host.Path, host.RawPath = "/"+vhost, "/"+url.PathEscape(vhost)
				triggers := make([]scalers.Scaler, benchQueues)
				for i := range triggers {
					md := map[string]string{"queueName": fmt.Sprintf("q%04d", i)}
					if rates {
						md["mode"], md["value"] = "MessageRate", "10"
					}
					s, err := p.New(scalers.Config{TriggerName: "q", Metadata: md, Auth: map[string]string{"host": host.String()}, PollingInterval: 5 * time.Second})
					if err != nil {
						b.Fatal(err)
					}
					triggers[i] = s
				}
				var requests atomic.Int64
				for _, m := range p.mgmt {
					m.client.Transport = countingTransport{next: m.client.Transport, n: &requests}
				}
				memBefore := mgmt.connectionMemory()
				runTick(b, triggers, mode, !rates) // connect, warm up
				memAfter := mgmt.connectionMemory()
				requests.Store(0)
				b.ResetTimer()
				for range b.N {
					clock.Add(int64(2 * time.Second))
					runTick(b, triggers, mode, !rates)
				}
				b.StopTimer()
				if protocol == "amqp" {
					b.ReportMetric(float64(p.Connections()), "connections")
					b.ReportMetric(benchQueues, "declares/tick")
					b.ReportMetric(float64(memAfter-memBefore)/(1<<10), "broker-KiB")
				} else {
					// RabbitMQ's memory breakdown does not count management API clients.
					b.ReportMetric(float64(requests.Load())/float64(b.N), "requests/tick")
				}
			})
		}
	}
}

// runTick samples every trigger; with depths, it checks each value is its queue's depth.
func runTick(b *testing.B, triggers []scalers.Scaler, mode string, depths bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	check := func(i int, s scalers.Scaler) {
		got, err := s.Sample(ctx)
		if err != nil {
			b.Error(err)
			return
		}
		if want := float64(i % 10); depths && got.Values[0] != want {
			b.Errorf("trigger %d: %v, want %v", i, got.Values, want)
		}
	}
	if mode == "sequential" {
		for i, s := range triggers {
			check(i, s)
		}
		return
	}
	var wg sync.WaitGroup
	for i, s := range triggers {
		wg.Go(func() { check(i, s) })
	}
	wg.Wait()
}

// fillQueues declares the benchmark's queues in vhost, queue i holding i%10 messages, and waits until the
// management API lists them all with those depths.
func fillQueues(b *testing.B, amqpURL, vhost string) {
	conn, err := amqp.DialConfig(amqpURL, amqp.Config{Vhost: vhost})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	var confirms []*amqp.DeferredConfirmation
	for i := range benchQueues {
		q := fmt.Sprintf("q%04d", i)
		if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
			b.Fatal(err)
		}
		for range i % 10 {
			dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", q, true, false, amqp.Publishing{Body: []byte("x")})
			if err != nil {
				b.Fatal(err)
			}
			confirms = append(confirms, dc)
		}
	}
	for _, dc := range confirms {
		if ok, err := dc.WaitContext(context.Background()); !ok || err != nil {
			b.Fatalf("publish not confirmed: %v", err)
		}
	}
	// The management API sees the depths within its statistics interval.
	api := &benchAPI{b: b}
	api.base, _ = url.Parse(testenv.RabbitMQHTTPURL)
	deadline := time.Now().Add(60 * time.Second)
	for {
		var qs []struct {
			Name     string `json:"name"`
			Messages int    `json:"messages"`
		}
		api.do(http.MethodGet, "/api/queues/"+url.PathEscape(vhost)+"?columns=name,messages", nil, &qs)
		ok := len(qs) == benchQueues
		for _, q := range qs {
			var i int
			_, _ = fmt.Sscanf(q.Name, "q%04d", &i)
			ok = ok && q.Messages == i%10
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("management API does not list %d queues with their depths after 60 s", benchQueues)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// benchAPI calls the management API for the benchmark's setup.
type benchAPI struct {
	b    *testing.B
	base *url.URL
}

func (a *benchAPI) do(method, path string, body, out any) {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	base := *a.base
	base.User = nil
	req, err := http.NewRequestWithContext(context.Background(), method, strings.TrimSuffix(base.String(), "/")+path, rd)
	if err != nil {
		a.b.Fatal(err)
	}
	pass, _ := a.base.User.Password()
	req.SetBasicAuth(a.base.User.Username(), pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.b.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		a.b.Fatalf("%s %s: %s: %s", method, path, resp.Status, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			a.b.Fatal(err)
		}
	}
}

// connectionMemory is the bytes RabbitMQ's memory breakdown attributes to client connections.
func (a *benchAPI) connectionMemory() int64 {
	var nodes []struct {
		Name string `json:"name"`
	}
	a.do(http.MethodGet, "/api/nodes?columns=name", nil, &nodes)
	var mem struct {
		Memory map[string]any `json:"memory"`
	}
	a.do(http.MethodGet, "/api/nodes/"+url.PathEscape(nodes[0].Name)+"/memory", nil, &mem)
	var total int64
	for k, v := range mem.Memory {
		if n, ok := v.(float64); ok && strings.HasPrefix(k, "connection_") {
			total += int64(n)
		}
	}
	return total
}

// countingTransport counts the requests it sends.
type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}
