package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/rabbitmq"
)

// countingProxy is a reverse proxy in front of the management API that counts requests by path.
type countingProxy struct {
	url *url.URL // with the broker's credentials

	mu       sync.Mutex
	requests []string // "path?page=N&page_size=M[&msg_rates_age=S]"
}

func newCountingProxy(t *testing.T, b *broker) *countingProxy {
	t.Helper()
	target := *b.httpURL
	target.User, target.Path = nil, ""
	rp := httputil.NewSingleHostReverseProxy(&target)
	cp := &countingProxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		cp.mu.Lock()
		req := fmt.Sprintf("%s?page=%s&page_size=%s", r.URL.EscapedPath(), q.Get("page"), q.Get("page_size"))
		if q.Get("msg_rates_age") != "" {
			req += "&msg_rates_age=" + q.Get("msg_rates_age")
		}
		cp.requests = append(cp.requests, req)
		cp.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = b.httpURL.User
	cp.url = u
	return cp
}

// host is the proxy's URL for vhost.
func (cp *countingProxy) host(vhost string) string {
	u := *cp.url
	u.Path, u.RawPath = "/"+vhost, "/"+url.PathEscape(vhost)
	return u.String()
}

// take returns the requests so far and forgets them.
func (cp *countingProxy) take() []string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	out := cp.requests
	cp.requests = nil
	return out
}

// tick samples every trigger at once, as the controller does when their polling intervals align.
func tick(t *testing.T, triggers []scalers.Scaler) []float64 {
	t.Helper()
	got := make([]float64, len(triggers))
	errs := make([]error, len(triggers))
	var wg sync.WaitGroup
	for i, s := range triggers {
		wg.Go(func() {
			smp, err := sampleErr(t, s)
			if errs[i] = err; err == nil {
				got[i] = smp.Values[0]
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("tick: %v", err)
	}
	return got
}

// waitListed waits until the management API lists n queues with these depths in vhost.
func (b *broker) waitDepths(vhost string, depths map[string]int) {
	b.t.Helper()
	eventually(b.t, 20*time.Second, func() error {
		var qs []struct {
			Name     string `json:"name"`
			Messages int    `json:"messages"`
		}
		b.api(http.MethodGet, "/api/queues/"+url.PathEscape(vhost)+"?columns=name,messages", nil, &qs)
		seen := map[string]int{}
		for _, q := range qs {
			seen[q.Name] = q.Messages
		}
		for q, n := range depths {
			if seen[q] != n {
				return fmt.Errorf("management API: queue %q has %d messages (or is not listed), want %d", q, seen[q], n)
			}
		}
		return nil
	})
}

// In http mode a tick costs one queue list per vhost, whatever the number of triggers on it.
func TestHTTPOneListPerVhostPerTick(t *testing.T) {
	b := requireBroker(t)
	proxy := newCountingProxy(t, b)
	vhosts := []string{b.vhost(), b.vhost()}
	depths := map[string]int{}
	for _, vh := range vhosts {
		ch := channel(t, b.conn(vh))
		for i := range 5 {
			q := fmt.Sprintf("q%d", i)
			declare(t, ch, q, nil)
			publish(t, ch, q, i+1)
			depths[q] = i + 1
		}
	}
	for _, vh := range vhosts {
		b.waitDepths(vh, depths)
	}
	pool := rabbitmq.NewPool()
	t.Cleanup(pool.Close)
	var triggers []scalers.Scaler
	var want []float64
	for i := range 60 {
		vh := vhosts[i%2]
		md := map[string]string{"queueName": fmt.Sprintf("q%d", i%5)}
		w := float64(i%5 + 1)
		if i%10 == 0 {
			md = map[string]string{"queueName": "^q[0-2]$", "useRegex": "true", "operation": "max"}
			w = 3
		}
		triggers = append(triggers, newTrigger(t, pool.New, proxy.host(vh), md, 400*time.Millisecond))
		want = append(want, w)
	}
	proxy.take()
	for n := range 3 {
		got := tick(t, triggers)
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("tick %d, trigger %d: %v, want %v", n, i, got[i], want[i])
			}
		}
		reqs := proxy.take()
		wantReqs := []string{
			"/api/queues/" + url.PathEscape(vhosts[0]) + "?page=1&page_size=500",
			"/api/queues/" + url.PathEscape(vhosts[1]) + "?page=1&page_size=500",
		}
		slices.Sort(reqs)
		slices.Sort(wantReqs)
		if !slices.Equal(reqs, wantReqs) {
			t.Errorf("tick %d: management API requests %q, want one list of each vhost: %q", n, reqs, wantReqs)
		}
		time.Sleep(250 * time.Millisecond) // past the freshness window (half the polling interval)
	}

	// Queue lengths need no averaged rates (they double the server's work on the list); a dead-letter
	// reading does, and keeps them in the vhost's readings for a while, so it does not take readings of its
	// own.
	if _, _, err := pool.DeadLetter(t.Context(), vhosts[0], "q1"); err != nil {
		t.Fatal(err)
	}
	withRates := "/api/queues/" + url.PathEscape(vhosts[0]) + "?page=1&page_size=500&msg_rates_age=15"
	if reqs := proxy.take(); len(reqs) != 1 || reqs[0] != withRates {
		t.Errorf("DeadLetter: requests %q, want %q", reqs, withRates)
	}
	time.Sleep(250 * time.Millisecond)
	tick(t, triggers)
	reqs := proxy.take()
	slices.Sort(reqs)
	wantReqs := []string{"/api/queues/" + url.PathEscape(vhosts[1]) + "?page=1&page_size=500", withRates}
	slices.Sort(wantReqs)
	if !slices.Equal(reqs, wantReqs) {
		t.Errorf("tick after DeadLetter: requests %q, want %q", reqs, wantReqs)
	}
}

// A regular expression matches over every page of the list, here 120 queues in pages of 50 (KEDA fails
// past the first page), with sum, avg and max over the matches.
func TestHTTPRegexAcrossPages(t *testing.T) {
	b := requireBroker(t)
	proxy := newCountingProxy(t, b)
	vhost := b.vhost()
	ch := channel(t, b.conn(vhost))
	depths := map[string]int{}
	sum := 0
	for i := range 120 {
		q := fmt.Sprintf("work.%03d", i)
		declare(t, ch, q, nil)
		if i%3 == 0 {
			publish(t, ch, q, i%7+1)
			depths[q] = i%7 + 1
			sum += i%7 + 1
		}
	}
	declare(t, ch, "other", nil)
	publish(t, ch, "other", 1000)
	depths["other"] = 1000
	b.waitDepths(vhost, depths)

	pool := rabbitmq.NewPool()
	t.Cleanup(pool.Close)
	over := func(operation string) scalers.Scaler {
		return newTrigger(t, pool.New, proxy.host(vhost), map[string]string{
			"queueName": `^work\.\d+$`, "useRegex": "true", "operation": operation, "pageSize": "50", "mode": "QueueLength", "value": "10",
		}, time.Second)
	}
	triggers := []scalers.Scaler{over("sum"), over("avg"), over("max")}
	proxy.take()
	got := tick(t, triggers)
	want := []float64{float64(sum), float64(sum) / 120, 7}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Errorf("%s: %v, want %v", []string{"sum", "avg", "max"}[i], got[i], want[i])
		}
	}
	reqs := proxy.take()
	path := "/api/queues/" + url.PathEscape(vhost)
	wantReqs := []string{path + "?page=1&page_size=50", path + "?page=2&page_size=50", path + "?page=3&page_size=50"}
	slices.Sort(reqs) // pages after the first are asked for at once
	if strings.Join(reqs, " ") != strings.Join(wantReqs, " ") {
		t.Errorf("requests %q, want %q", reqs, wantReqs)
	}
	// The next tick asks for all three pages at once, having learnt the page count.
	time.Sleep(600 * time.Millisecond)
	if again := tick(t, triggers); !slices.Equal(again, got) {
		t.Errorf("second tick %v, want %v", again, got)
	}
	if reqs := proxy.take(); len(reqs) != 3 {
		t.Errorf("second tick: requests %q, want the 3 pages", reqs)
	}
	// No match is not an error: the value is 0.
	none := newTrigger(t, pool.New, proxy.host(vhost), map[string]string{"queueName": "^nothing", "useRegex": "true"}, time.Second)
	if got := sample(t, none); got.Values[0] != 0 {
		t.Errorf("regex matching nothing: %v, want 0", got.Values)
	}
}

// MessageRate follows a steady publisher's rate, averaged over the last 15 s; messages waiting keep the
// trigger active.
func TestHTTPMessageRate(t *testing.T) {
	b := requireBroker(t)
	vhost := b.vhost()
	ch := channel(t, b.conn(vhost))
	declare(t, ch, "events", nil)
	const perSecond = 40
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(time.Second / perSecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				if err := ch.PublishWithContext(ctx, "", "events", false, false, amqp.Publishing{Body: []byte("e")}); err != nil && ctx.Err() == nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
		}
	})
	t.Cleanup(func() { stop(); wg.Wait() })

	pool := rabbitmq.NewPool()
	t.Cleanup(pool.Close)
	s := newTrigger(t, pool.New, b.httpHost(vhost), map[string]string{
		"queueName": "events", "mode": "MessageRate", "value": "10", "activationValue": "5",
	}, 500*time.Millisecond)
	var last scalers.Sample
	var values []float64
	eventually(t, 40*time.Second, func() error {
		last = sample(t, s)
		if len(values) == 0 || values[len(values)-1] != last.Values[0] {
			values = append(values, last.Values[0])
		}
		// The mean over the last 15 s settles on the publisher's rate once the window is full.
		if math.Abs(last.Values[0]-perSecond) > perSecond*0.1 {
			return fmt.Errorf("rate %.1f/s, want %d/s ± 10%%", last.Values[0], perSecond)
		}
		return nil
	})
	// Steady: samples stay close, where the management API's own rate may read 0 or double.
	for range 10 {
		time.Sleep(300 * time.Millisecond)
		got := sample(t, s).Values[0]
		if math.Abs(got-perSecond) > perSecond*0.15 {
			t.Errorf("rate %.1f/s while steady, want %d/s ± 15%%", got, perSecond)
		}
	}
	if len(last.ActivationValues) != 1 || last.ActivationValues[0] < last.Values[0] {
		t.Errorf("activation values %v: want the larger of the rates and the depth", last.ActivationValues)
	}
	t.Logf("rates seen while settling: %.1f", values)
}

// Errors a person can act on, over http: missing queue, missing vhost, wrong password, no management API
// at the address, nothing listening, and the server going away and coming back.
func TestHTTPErrors(t *testing.T) {
	b := requireBroker(t)
	vhost := b.vhost()
	ch := channel(t, b.conn(vhost))
	declare(t, ch, "present", nil)
	b.waitDepths(vhost, map[string]int{"present": 0})

	wrongPassword := *b.httpURL
	wrongPassword.User = url.UserPassword(b.user, "not-the-password")
	wrongPassword.Path = "/" + vhost
	wrongPath := *b.httpURL
	wrongPath.Path = "/not-the-api/" + vhost
	closed := "http://127.0.0.1:" + fmt.Sprint(testenv.FreePort(t)) + "/"
	tests := []struct {
		name, host, queue string
		want              error
		mention           string
	}{
		{name: "missing-queue", host: b.httpHost(vhost), queue: "absent", want: rabbitmq.ErrQueueNotFound, mention: `queue "absent"`},
		{name: "missing-vhost", host: b.httpHost("no-such-vhost-" + vhost), queue: "present", want: rabbitmq.ErrVhostNotFound, mention: "no-such-vhost"},
		{name: "wrong-password", host: wrongPassword.String(), queue: "present", want: rabbitmq.ErrAuthentication, mention: "Login failed"},
		{name: "nothing-listening", host: closed, queue: "present", want: rabbitmq.ErrUnreachable, mention: "connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool := rabbitmq.NewPool()
			t.Cleanup(pool.Close)
			s := newTrigger(t, pool.New, tc.host, map[string]string{"queueName": tc.queue}, time.Second)
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
	t.Run("no-management-api-at-path", func(t *testing.T) {
		pool := rabbitmq.NewPool()
		t.Cleanup(pool.Close)
		s := newTrigger(t, pool.New, wrongPath.String(), map[string]string{"queueName": "present"}, time.Second)
		_, err := sampleErr(t, s)
		if err == nil || errors.Is(err, rabbitmq.ErrVhostNotFound) || !strings.Contains(err.Error(), "no RabbitMQ management API at") {
			t.Errorf("error %v: want one saying there is no management API at the address (not a missing vhost)", err)
		}
	})

	t.Run("server-goes-away-and-comes-back", func(t *testing.T) {
		proxy := newTCPProxy(t, b.httpURL.Host)
		via := *b.httpURL
		via.Host = proxy.addr
		via.Path = "/" + vhost
		pool := rabbitmq.NewPool()
		t.Cleanup(pool.Close)
		s := newTrigger(t, pool.New, via.String(), map[string]string{"queueName": "present"}, 200*time.Millisecond)
		eventually(t, 5*time.Second, valueIs(s, 0))
		proxy.cut()
		eventually(t, 5*time.Second, func() error {
			_, err := sampleErr(t, s)
			if !errors.Is(err, rabbitmq.ErrUnreachable) {
				return fmt.Errorf("sample while cut: %w, want ErrUnreachable", err)
			}
			return nil
		})
		publish(t, ch, "present", 3)
		proxy.restore()
		eventually(t, 20*time.Second, valueIs(s, 3))
	})
}

// A vhost whose queue list shrinks by a page between readings keeps working: the page past the new end,
// asked for because the last reading had it, is not an error.
func TestHTTPVhostShrinks(t *testing.T) {
	b := requireBroker(t)
	vhost := b.vhost()
	ch := channel(t, b.conn(vhost))
	for i := range 5 {
		q := fmt.Sprintf("shrink.%d", i)
		declare(t, ch, q, nil)
		publish(t, ch, q, i+1)
	}
	b.waitDepths(vhost, map[string]int{"shrink.0": 1, "shrink.1": 2, "shrink.2": 3, "shrink.3": 4, "shrink.4": 5})
	pool := rabbitmq.NewPool()
	t.Cleanup(pool.Close)
	s := newTrigger(t, pool.New, b.httpHost(vhost), map[string]string{
		"queueName": `^shrink\.`, "useRegex": "true", "pageSize": "2", "mode": "QueueLength", "value": "10",
	}, 100*time.Millisecond)
	eventually(t, 10*time.Second, valueIs(s, 15)) // three pages
	for _, q := range []string{"shrink.2", "shrink.3", "shrink.4"} {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, valueIs(s, 3)) // one page: 1 + 2
}
