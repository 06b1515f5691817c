package rabbitmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// listColumns are the fields the queue list asks for (the management API's columns filter: top-level keys,
// dots for nested ones), so a page of 500 queues stays small.
var listColumns = strings.Join([]string{
	"name", "messages", "messages_ready", "messages_unacknowledged", "arguments",
	"message_stats.publish_details.rate", "message_stats.deliver_get_details.rate",
	"message_stats.ack_details.rate", "message_stats.deliver_no_ack_details.rate", "message_stats.get_no_ack_details.rate",
}, ",")

// rateTimeConstant is the time constant of the exponentially weighted moving average that smooths the
// management API's rates: a step in a queue's publish rate shows 39% after 5 s, 63% after 10 s and 95%
// after 30 s, so a single noisy sample cannot swing the HPA.
const rateTimeConstant = 10 * time.Second

// QueueStats is one queue as the last shared reading of its vhost saw it.
type QueueStats struct {
	// Messages is the queue's depth: ready plus unacknowledged.
	Messages int64
	// Ready and Unacknowledged split Messages.
	Ready, Unacknowledged int64
	// PublishRate is the rate of messages published into the queue, per second, smoothed (see
	// rateTimeConstant). Messages dead-lettered into the queue do not count as published in RabbitMQ's
	// statistics; InflowRate does count them.
	PublishRate float64
	// InflowRate is the rate at which messages enter the queue by any route (published or dead-lettered),
	// per second, smoothed: the change in depth between readings plus what left the queue meanwhile
	// (acknowledged or delivered without acknowledgement). It is 0 until the second reading that sees the
	// queue.
	InflowRate float64
	// DeadLetterExchange is the queue's x-dead-letter-exchange argument ("" is the default exchange), and
	// HasDeadLetterExchange whether it has one.
	DeadLetterExchange    string
	HasDeadLetterExchange bool
}

// vhostQueues is one http reading: every queue of the vhost.
type vhostQueues struct {
	queues map[string]QueueStats
	// pages is how many list requests the reading took.
	pages int
}

// mgmtServer is one management API endpoint with one set of credentials: one HTTP client, and one
// reader per vhost that a trigger watches.
type mgmtServer struct {
	key      string
	base     string // scheme://host:port[/prefix], no credentials
	user     string
	password string
	client   *http.Client

	mu     sync.Mutex
	vhosts map[string]*vhostReader
}

// vhostReader lists the queues of one vhost for every trigger watching it. Its watches are page sizes.
type vhostReader struct {
	srv   *mgmtServer
	vhost string
	now   func() time.Time
	*shared[int, vhostQueues]

	// hist is what the previous reading saw of each queue, for the smoothed rates. Only the goroutine
	// taking a reading touches it (readings are single-flight).
	hist map[string]queueHistory
}

type queueHistory struct {
	at       time.Time
	messages int64
	publish  float64 // smoothed
	inflow   float64 // smoothed
}

func (m *mgmtServer) reader(vhost string, now func() time.Time) *vhostReader {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.vhosts[vhost]
	if !ok {
		v = &vhostReader{srv: m, vhost: vhost, now: now, shared: newShared[int, vhostQueues](), hist: map[string]queueHistory{}}
		m.vhosts[vhost] = v
	}
	return v
}

// listPage is the management API's answer to a paginated list.
type listPage struct {
	Items      []queueItem `json:"items"`
	Page       int         `json:"page"`
	PageCount  int         `json:"page_count"`
	TotalCount int         `json:"total_count"`
}

type rate struct {
	Rate float64 `json:"rate"`
}

type queueItem struct {
	Name           string         `json:"name"`
	Messages       int64          `json:"messages"`
	Ready          int64          `json:"messages_ready"`
	Unacknowledged int64          `json:"messages_unacknowledged"`
	Arguments      map[string]any `json:"arguments"`
	Stats          struct {
		Publish      rate `json:"publish_details"`
		DeliverGet   rate `json:"deliver_get_details"`
		Ack          rate `json:"ack_details"`
		DeliverNoAck rate `json:"deliver_no_ack_details"`
		GetNoAck     rate `json:"get_no_ack_details"`
	} `json:"message_stats"`
}

// fetch takes one reading: the vhost's queue list, every page of it, at the largest page size any
// watcher asks for. The list is not a snapshot; when the queue count changes between pages (queues
// created or deleted meanwhile, which shifts the pages), it is listed once more.
func (v *vhostReader) fetch(ctx context.Context, pageSizes []int) (vhostQueues, error) {
	pageSize := 1
	for _, p := range pageSizes {
		pageSize = max(pageSize, p)
	}
	var (
		items []queueItem
		pages int
		err   error
	)
	for attempt := 0; ; attempt++ {
		var consistent bool
		items, pages, consistent, err = v.list(ctx, pageSize)
		if err != nil || consistent || attempt == 1 {
			break
		}
	}
	if err != nil {
		return vhostQueues{pages: pages}, err
	}
	return vhostQueues{queues: v.derive(items), pages: pages}, nil
}

// list reads every page; consistent says the total count held across pages and every queue was seen once.
func (v *vhostReader) list(ctx context.Context, pageSize int) (items []queueItem, pages int, consistent bool, err error) {
	total := -1
	consistent = true
	for page := 1; ; page++ {
		var p listPage
		if err := v.srv.get(ctx, v.listURL(page, pageSize), &p); err != nil {
			if page == 1 {
				return nil, page, false, v.srv.explainListError(ctx, v.vhost, err)
			}
			return nil, page, false, fmt.Errorf("listing queues of vhost %q, page %d: %w", v.vhost, page, err)
		}
		pages = page
		if total >= 0 && p.TotalCount != total {
			consistent = false
		}
		total = p.TotalCount
		items = append(items, p.Items...)
		if page >= p.PageCount {
			break
		}
	}
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		seen[it.Name] = true
	}
	if len(seen) != len(items) || len(items) != total {
		consistent = false
	}
	return items, pages, consistent, nil
}

func (v *vhostReader) listURL(page, pageSize int) string {
	q := url.Values{}
	q.Set("page", strconv.Itoa(page))
	q.Set("page_size", strconv.Itoa(pageSize))
	q.Set("sort", "name")
	q.Set("columns", listColumns)
	return v.srv.base + "/api/queues/" + url.PathEscape(v.vhost) + "?" + q.Encode()
}

// derive turns the listed items into QueueStats, updating the smoothed rates.
func (v *vhostReader) derive(items []queueItem) map[string]QueueStats {
	now := v.now()
	out := make(map[string]QueueStats, len(items))
	hist := make(map[string]queueHistory, len(items))
	for _, it := range items {
		qs := QueueStats{Messages: it.Messages, Ready: it.Ready, Unacknowledged: it.Unacknowledged}
		if dlx, ok := it.Arguments["x-dead-letter-exchange"]; ok {
			qs.HasDeadLetterExchange = true
			qs.DeadLetterExchange, _ = dlx.(string)
		}
		h := queueHistory{at: now, messages: it.Messages, publish: it.Stats.Publish.Rate}
		if prev, ok := v.hist[it.Name]; ok {
			if dt := now.Sub(prev.at); dt > 0 {
				alpha := 1 - math.Exp(-float64(dt)/float64(rateTimeConstant))
				left := it.Stats.Ack.Rate + it.Stats.DeliverNoAck.Rate + it.Stats.GetNoAck.Rate
				inflow := max(0, float64(it.Messages-prev.messages)/dt.Seconds()+left)
				h.publish = prev.publish + alpha*(it.Stats.Publish.Rate-prev.publish)
				h.inflow = prev.inflow + alpha*(inflow-prev.inflow)
			} else {
				h = prev
			}
		}
		hist[it.Name] = h
		qs.PublishRate, qs.InflowRate = h.publish, h.inflow
		out[it.Name] = qs
	}
	v.hist = hist
	return out
}

// httpError is a management API answer other than 200.
type httpError struct {
	status int
	reason string // the API's "reason", or the start of the body
}

func (e *httpError) Error() string {
	return fmt.Sprintf("management API answered %d %s: %s", e.status, http.StatusText(e.status), e.reason)
}

// get fetches one management API URL into out.
func (m *mgmtServer) get(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if m.user != "" || m.password != "" {
		req.SetBasicAuth(m.user, m.password)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return classify(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var apiErr struct {
			Error  string `json:"error"`
			Reason string `json:"reason"`
		}
		reason := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &apiErr) == nil && apiErr.Reason != "" {
			reason = apiErr.Reason
		}
		if len(reason) > 200 {
			reason = reason[:200] + "..."
		}
		he := &httpError{status: resp.StatusCode, reason: reason}
		switch {
		case resp.StatusCode == http.StatusUnauthorized && strings.Contains(strings.ToLower(reason), "login failed"):
			return fmt.Errorf("%w: %w", ErrAuthentication, he)
		case resp.StatusCode == http.StatusUnauthorized && strings.Contains(strings.ToLower(reason), "management user"):
			return fmt.Errorf("%w: the user needs the monitoring (or management) tag to use the management API: %w", ErrAuthorization, he)
		case resp.StatusCode == http.StatusUnauthorized:
			return fmt.Errorf("%w: %w", ErrAuthorization, he)
		case resp.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%w: %w", ErrAuthorization, he)
		}
		return he
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding the management API's answer from %s: %w", redactURL(u), err)
	}
	return nil
}

// explainListError tells a missing vhost from a wrong management API address when the list answers 404.
func (m *mgmtServer) explainListError(ctx context.Context, vhost string, err error) error {
	var he *httpError
	if !errors.As(err, &he) || he.status != http.StatusNotFound {
		return err
	}
	var overview map[string]any
	if oerr := m.get(ctx, m.base+"/api/overview", &overview); oerr != nil {
		return fmt.Errorf("no RabbitMQ management API at %s (GET /api/overview: %v); check host's address and path: %w", m.base, oerr, err)
	}
	return fmt.Errorf("%w: %q (the management API answered 404 for its queue list): %w", ErrVhostNotFound, vhost, err)
}

func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}
