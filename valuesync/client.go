package valuesync

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/ebbscale/ebb/metricstore"
)

// Sink receives each snapshot; *metricstore.Store is one.
type Sink interface {
	Replace(items []metricstore.Item)
}

// ClientOptions configure a Client. The zero value of each field picks the default its comment gives.
type ClientOptions struct {
	// CAFile is a PEM bundle that verifies the leader's certificate (one from the leader's CertDir, say
	// issued by cert-manager). Default "": the leader's certificate is checked against the pin its Lease
	// identity advertises, which a self-signed leader always does. When there is neither a CA nor a pin (a
	// leader with a CertDir, followers without CAFile, or a StaticLeader without Pin), the certificate is
	// NOT verified (InsecureSkipVerify): whoever answers at the leader's address gets this process's
	// bearer token, and can feed it values. Set CAFile whenever the leader has a CertDir.
	CAFile string
	// ServerName is the name the leader's certificate must carry when CAFile is set. Default: the host of
	// the endpoint's URL (usually a pod IP, which certificates rarely carry: set it to a name they do).
	ServerName string
	// Wait is how long one request waits for a change before the leader answers anyway; default
	// DefaultWait.
	Wait time.Duration
	// LeaderCheck is how often the leader is looked up again while a request waits, so a new leader is
	// followed within about this time; default 2s.
	LeaderCheck time.Duration
	// MaxBackoff is the longest pause between failed attempts; the first pause is 200ms and each failure
	// doubles it. Default 10s.
	MaxBackoff time.Duration
}

// Client mirrors the leader's store into a Sink: it long-polls the leader's Handler and replaces the
// sink's content with every new snapshot. On errors it keeps the last snapshot, backs off and looks for
// the leader again; it logs when its state changes (mirroring from an endpoint, or failing for a reason),
// not at every attempt.
//
// It authenticates with the bearer token of a rest.Config (BearerToken, BearerTokenFile — re-read as it
// rotates — or an exec or auth-provider plugin): in a pod, its ServiceAccount token. That identity needs
// get on the non-resource URL Path.
type Client struct {
	cfg    *rest.Config
	leader Leader
	sink   Sink
	opts   ClientOptions

	synced atomic.Bool

	// Owned by Run.
	httpc   *http.Client
	httpFor Endpoint
	state   string
}

// NewClient returns a Client that finds the leader with leader and writes snapshots to sink.
func NewClient(cfg *rest.Config, leader Leader, sink Sink, opts ClientOptions) (*Client, error) {
	if cfg.BearerToken == "" && cfg.BearerTokenFile == "" && cfg.ExecProvider == nil && cfg.AuthProvider == nil {
		return nil, errors.New("values client: the Kubernetes client configuration carries no bearer token, which the leader needs to authenticate this process (a client certificate cannot be checked with a TokenReview); run with a ServiceAccount, or a kubeconfig with a token")
	}
	if opts.Wait == 0 {
		opts.Wait = DefaultWait
	}
	if opts.LeaderCheck == 0 {
		opts.LeaderCheck = 2 * time.Second
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	if opts.CAFile != "" {
		if _, err := loadPool(opts.CAFile); err != nil {
			return nil, err
		}
	}
	return &Client{cfg: rest.CopyConfig(cfg), leader: leader, sink: sink, opts: opts}, nil
}

// Synced reports whether a snapshot has been written to the sink.
func (c *Client) Synced() bool { return c.synced.Load() }

// errLeaderChanged cancels a request to a leader that no longer is.
var errLeaderChanged = errors.New("the leader changed")

// Run mirrors until ctx ends, and returns nil then.
func (c *Client) Run(ctx context.Context) error {
	log := klog.FromContext(ctx).WithName("values-sync")
	const firstBackoff = 200 * time.Millisecond
	backoff := firstBackoff
	var (
		current  Endpoint
		instance string
		rev      uint64
	)
	for ctx.Err() == nil {
		ep, err := c.leader.Endpoint(ctx)
		if err == nil {
			if ep != current {
				current, instance, rev = ep, "", 0
			}
			var snap *Snapshot
			snap, err = c.fetch(ctx, ep, instance, rev)
			if err == nil {
				if snap.Instance != instance || snap.Revision != rev {
					c.sink.Replace(snap.Items())
					instance, rev = snap.Instance, snap.Revision
					c.synced.Store(true)
				}
				c.report(log, "mirroring "+ep.URL, nil, "endpoint", ep.URL)
				backoff = firstBackoff
				continue
			}
			if errors.Is(err, errLeaderChanged) {
				continue
			}
		}
		if ctx.Err() != nil {
			break
		}
		c.report(log, failureState(current, err), err, "endpoint", current.URL)
		jittered := time.Duration(float64(backoff) * (0.8 + 0.4*rand.Float64()))
		select {
		case <-time.After(jittered):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, c.opts.MaxBackoff)
	}
	if c.httpc != nil {
		c.httpc.CloseIdleConnections()
	}
	return nil
}

// report logs when the state changes; repeats go to verbosity 1.
func (c *Client) report(log logr.Logger, state string, err error, kv ...any) {
	if state == c.state {
		if err != nil {
			log.V(1).Info("still cannot mirror the leader's metric values", append(kv, "error", err)...)
		}
		return
	}
	c.state = state
	if err == nil {
		log.Info("mirroring the leader's metric values", kv...)
		return
	}
	log.Info("cannot mirror the leader's metric values; the last ones received are served until this works again", append(kv, "error", err)...)
}

// failureState names a failure for report: the same kind of failure at the same endpoint is one state.
func failureState(ep Endpoint, err error) string {
	var se *StatusError
	switch {
	case errors.Is(err, ErrNoLeader):
		return "no leader"
	case errors.Is(err, ErrNoEndpoint):
		return "no endpoint"
	case errors.As(err, &se):
		return "status " + strconv.Itoa(se.Code) + " from " + ep.URL
	case errors.Is(err, ErrLease):
		return "lease unreadable"
	default:
		return "unreachable " + ep.URL
	}
}

// StatusError is a response other than 200 OK.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("values endpoint answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Body)
	switch e.Code {
	case http.StatusUnauthorized:
		msg += " (the leader could not authenticate this process's token)"
	case http.StatusForbidden:
		msg += " (grant this process's identity get on the non-resource URL " + Path + ")"
	}
	return msg
}

// fetch asks ep for the snapshot after (instance, rev), giving up with errLeaderChanged when the leader
// moves while the request waits.
func (c *Client) fetch(ctx context.Context, ep Endpoint, instance string, rev uint64) (*Snapshot, error) {
	httpc, err := c.httpClient(ep)
	if err != nil {
		return nil, err
	}
	q := url.Values{"timeout": {c.opts.Wait.String()}}
	if instance != "" {
		q.Set("instance", instance)
		q.Set("after", strconv.FormatUint(rev, 10))
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ctx, cancelTimeout := context.WithTimeout(ctx, c.opts.Wait+15*time.Second)
	defer cancelTimeout()
	go c.watchLeader(ctx, ep, cancel)

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(ep.URL, "/")+Path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errLeaderChanged) {
			return nil, cause
		}
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	snap := &Snapshot{}
	if err := json.NewDecoder(resp.Body).Decode(snap); err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errLeaderChanged) {
			return nil, cause
		}
		return nil, fmt.Errorf("decoding the values snapshot: %w", err)
	}
	return snap, nil
}

// watchLeader cancels a request when another leader is found.
func (c *Client) watchLeader(ctx context.Context, ep Endpoint, cancel context.CancelCauseFunc) {
	t := time.NewTicker(c.opts.LeaderCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, err := c.leader.Endpoint(ctx)
		if err == nil && now != ep {
			cancel(errLeaderChanged)
			return
		}
	}
}

// httpClient returns a client that verifies ep's certificate and sends the bearer token; it is made
// again when the endpoint changes.
func (c *Client) httpClient(ep Endpoint) (*http.Client, error) {
	if c.httpc != nil && c.httpFor == ep {
		return c.httpc, nil
	}
	if c.httpc != nil {
		c.httpc.CloseIdleConnections()
		c.httpc = nil
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case c.opts.CAFile != "":
		pool, err := loadPool(c.opts.CAFile)
		if err != nil {
			return nil, err
		}
		tlsCfg.RootCAs, tlsCfg.ServerName = pool, c.opts.ServerName
	case ep.Pin != "":
		// The chain is not verified against a CA (there is none); the key is, against the pin the Lease
		// advertises, which only ebb's leader can write.
		tlsCfg.InsecureSkipVerify = true
		pin := ep.Pin
		tlsCfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || PinOf(cs.PeerCertificates[0]) != pin {
				return fmt.Errorf("the server's certificate key does not match the pin %s the leader advertises", pin)
			}
			return nil
		}
	default:
		tlsCfg.InsecureSkipVerify = true // see ClientOptions.CAFile
	}
	cfg := rest.CopyConfig(c.cfg)
	cfg.TLSClientConfig = rest.TLSClientConfig{}
	cfg.Impersonate = rest.ImpersonationConfig{}
	cfg.Timeout = 0 // each request has its own deadline, longer than its wait
	cfg.Proxy = nil
	cfg.Transport = &http.Transport{
		// Pod addresses are reached directly, never through a proxy from the environment.
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConnsPerHost: 1,
	}
	httpc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("values client: %w", err)
	}
	c.httpc, c.httpFor = httpc, ep
	return httpc, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("values client: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("values client: CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}
