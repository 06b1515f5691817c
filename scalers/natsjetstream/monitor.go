package natsjetstream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ebbscale/ebb/scalers"
)

// defaultAccount is the account of a server with no accounts configured (KEDA's default too).
const defaultAccount = "$G"

// monitor reads the HTTP monitoring endpoints of one server set: per reading, one GET of
// /jsz?accounts=true&consumers=true per endpoint for every trigger on them.
type monitor struct {
	endpoints []string // base URLs, scheme://host:port
	account   string   // name or ID to match
	byID      bool     // account is an ID (accountID)
	query     string
	client    *http.Client
	observe   scalers.RequestObserver
}

func newMonitor(c *Connection, observe scalers.RequestObserver) (*monitor, error) {
	m := &monitor{account: c.Account, observe: observe}
	if c.AccountID != "" {
		m.account, m.byID = c.AccountID, true
	}
	if m.account == "" {
		m.account = defaultAccount
	}
	scheme := "http"
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c.UseHTTPS {
		scheme = "https"
		tc, err := c.TLS.Config()
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
	}
	for _, e := range c.MonitoringEndpoints {
		m.endpoints = append(m.endpoints, scheme+"://"+strings.TrimSpace(e))
	}
	q := url.Values{"accounts": {"true"}, "consumers": {"true"}, "acc": {m.account}}
	m.query = q.Encode()
	m.client = &http.Client{Transport: tr}
	return m, nil
}

func (m *monitor) close() { m.client.CloseIdleConnections() }

// jsz is the part of a /jsz answer ebb reads.
type jsz struct {
	ServerID string       `json:"server_id"`
	Disabled bool         `json:"disabled"`
	Accounts []jszAccount `json:"account_details"`
}

// jszAccount is one account of a /jsz answer.
type jszAccount struct {
	Name    string      `json:"name"`
	ID      string      `json:"id"`
	Streams []jszStream `json:"stream_detail"`
}

// jszStream is one stream of a /jsz answer, as the answering server hosts it.
type jszStream struct {
	Name      string                    `json:"name"`
	Cluster   *jetstream.ClusterInfo    `json:"cluster"`
	State     jetstream.StreamState     `json:"state"`
	Consumers []*jetstream.ConsumerInfo `json:"consumer_detail"`
}

// answer is one endpoint's /jsz, or why there is none.
type answer struct {
	endpoint string
	jsz      *jsz
	err      error
}

// fetch GETs every endpoint's /jsz at once and takes each watched consumer and stream from the entry of
// its leader.
func (m *monitor) fetch(ctx context.Context, watches []watch) (*reading, error) {
	answers := make([]answer, len(m.endpoints))
	var wg sync.WaitGroup
	for i, ep := range m.endpoints {
		wg.Go(func() {
			j, err := m.get(ctx, ep)
			answers[i] = answer{endpoint: ep, jsz: j, err: err}
		})
	}
	wg.Wait()

	var failed []string
	var firstErr error
	answered, enabled, withAccount := 0, 0, 0
	for _, a := range answers {
		if a.err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", a.endpoint, a.err))
			firstErr = cmpErr(firstErr, a.err)
			continue
		}
		answered++
		if !a.jsz.Disabled {
			enabled++
		}
		if m.accountOf(a.jsz) >= 0 {
			withAccount++
		}
	}
	switch {
	case answered == 0 && len(failed) == 1:
		return nil, fmt.Errorf("monitoring endpoint %s: %w", strings.TrimPrefix(strings.TrimPrefix(m.endpoints[0], "http://"), "https://"), classify(firstErr))
	case answered == 0:
		return nil, fmt.Errorf("no monitoring endpoint answered (%s): %w", strings.Join(failed, "; "), classify(firstErr))
	case enabled == 0:
		return nil, fmt.Errorf("%w: /jsz says JetStream is disabled", ErrNoJetStream)
	case withAccount == 0:
		key := "account"
		if m.byID {
			key = "accountID"
		}
		return nil, fmt.Errorf("%w: no monitoring endpoint lists %s %q among its JetStream accounts", ErrAccountNotFound, key, m.account)
	}

	r := newReading()
	for _, w := range watches {
		e, found, err := m.leaderEntry(answers, w)
		switch {
		case err == nil:
			r.entries[w] = e
		case !found && len(failed) > 0:
			r.errs[w] = fmt.Errorf("%w; endpoints that did not answer: %s", err, strings.Join(failed, "; "))
		default:
			r.errs[w] = err
		}
	}
	return r, nil
}

// cmpErr keeps the first error.
func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// accountOf is the index of the watched account in j's account details, or -1.
func (m *monitor) accountOf(j *jsz) int {
	return slices.IndexFunc(j.Accounts, func(a jszAccount) bool {
		if m.byID {
			return a.ID == m.account
		}
		return a.Name == m.account || a.ID == m.account
	})
}

// leaderEntry finds w in the answers: the entry its leader reported. found says whether any endpoint
// listed it at all (a replica's entry counts), so a missing leader is told from a missing consumer.
func (m *monitor) leaderEntry(answers []answer, w watch) (entry, bool, error) {
	streamSeen, found := false, false
	var leader string
	for _, a := range answers {
		if a.jsz == nil {
			continue
		}
		acc := m.accountOf(a.jsz)
		if acc < 0 {
			continue
		}
		for _, st := range a.jsz.Accounts[acc].Streams {
			if st.Name != w.stream {
				continue
			}
			streamSeen = true
			if w.consumer == "" {
				found = true
				if isLeaders(st.Cluster) {
					return entry{msgs: st.State.Msgs, lastSeq: st.State.LastSeq}, true, nil
				}
				leader = leaderName(st.Cluster, leader)
				continue
			}
			for _, ci := range st.Consumers {
				if ci == nil || ci.Name != w.consumer {
					continue
				}
				found = true
				if isLeaders(ci.Cluster) {
					return consumerEntry(ci), true, nil
				}
				leader = leaderName(ci.Cluster, leader)
			}
		}
	}
	switch {
	case !streamSeen:
		return entry{}, false, fmt.Errorf("%w on the monitoring endpoints", ErrStreamNotFound)
	case !found:
		return entry{}, false, ErrConsumerNotFound
	case leader == "":
		return entry{}, true, fmt.Errorf("%w: it has no leader now (an election may be under way)", ErrNoLeader)
	}
	return entry{}, true, fmt.Errorf("%w: its leader is server %q, and natsServerMonitoringEndpoint lists no endpoint of it (list every server's endpoint; ebb does not use a replica's figures, which lag)", ErrNoLeader, leader)
}

// isLeaders says whether an entry was reported by its raft group's leader. A server lists the group's
// other members as replicas, never itself: the entry is the leader's when the group has a leader that is
// not among the replicas. A stream or consumer outside any group (a server without clustering) is its
// server's own.
func isLeaders(ci *jetstream.ClusterInfo) bool {
	if ci == nil {
		return true
	}
	if ci.Leader == "" {
		return false
	}
	for _, p := range ci.Replicas {
		if p != nil && p.Name == ci.Leader {
			return false
		}
	}
	return true
}

func leaderName(ci *jetstream.ClusterInfo, prev string) string {
	if ci != nil && ci.Leader != "" {
		return ci.Leader
	}
	return prev
}

// get GETs one endpoint's /jsz.
func (m *monitor) get(ctx context.Context, base string) (*jsz, error) {
	start := time.Now()
	j, err := m.getJSZ(ctx, base)
	if m.observe != nil {
		m.observe(strings.SplitN(base, "://", 2)[1], "GET /jsz", time.Since(start), err)
	}
	return j, err
}

func (m *monitor) getJSZ(ctx context.Context, base string) (*jsz, error) {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, base+"/jsz?"+m.query, nil)
	if err != nil {
		return nil, err
	}
	resp, err := m.client.Do(req)
	if err != nil && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		// net/http drops the tls.RecordHeaderError it found; its text is what is left.
		return nil, fmt.Errorf("%w: the endpoint speaks plain HTTP, set useHttps: false: %w", ErrTLS, err)
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode == http.StatusBadRequest && strings.Contains(string(b), "HTTP request to an HTTPS server") {
			return nil, fmt.Errorf("%w: the endpoint speaks HTTPS, set useHttps: true (GET /jsz: %s: %s)", ErrTLS, resp.Status, strings.TrimSpace(string(b)))
		}
		return nil, fmt.Errorf("GET /jsz: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var j jsz
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil {
		return nil, fmt.Errorf("GET /jsz: answer is not JetStream monitoring JSON: %w", err)
	}
	return &j, nil
}
