package rabbitmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ebbscale/ebb/scalers"
)

// listColumns are the fields the queue list asks for (the management API's columns filter: top-level keys,
// dots for nested ones), so a page of 500 queues stays small; rateColumns are added when the reading asks
// for the averaged rates.
var (
	listColumns = []string{
		"name", "messages", "messages_ready", "messages_unacknowledged", "arguments", "message_stats.publish_details.rate",
	}
	rateColumns = []string{
		"messages_details.avg_rate", "message_stats.publish_details.avg_rate", "message_stats.ack_details.avg_rate",
		"message_stats.deliver_no_ack_details.avg_rate", "message_stats.get_no_ack_details.avg_rate",
	}
)

// RateWindow is the window over which rates are averaged: a rate is the mean over the last 15 s, which
// RabbitMQ computes from its own timestamped statistics samples (the management API's msg_rates_age and
// lengths_age, in steps of 5 s: its default sample interval). A step in the publish rate shows fully after
// 15 s, rising linearly meanwhile; a steady rate reads steady.
//
// The management API's plain "rate" fields are the change between the broker's two latest samples, and
// flap: with the statistics collected every 500 ms, a steady 40/s publisher reads 40, 0, 0, 40, ..., half
// of it on average. The window's mean does not.
const RateWindow = 15 * time.Second

// rateStep is the sample step of RateWindow.
const rateStep = 5 * time.Second

// QueueStats is one queue as the last shared reading of its vhost saw it.
type QueueStats struct {
	// Messages is the queue's depth: ready plus unacknowledged.
	Messages int64
	// Ready and Unacknowledged split Messages.
	Ready, Unacknowledged int64
	// PublishRate is the rate of messages published into the queue, per second: the mean over the last
	// RateWindow. Messages dead-lettered into the queue do not count as published in RabbitMQ's statistics;
	// InflowRate counts them.
	PublishRate float64
	// RawPublishRate is the management API's own publish rate, over its two latest samples: quick to rise,
	// but noisy.
	RawPublishRate float64
	// InflowRate is the rate at which messages enter the queue by any route (published or dead-lettered),
	// per second, the mean over the last RateWindow: the growth of its depth plus what left it meanwhile
	// (acknowledged, or delivered or fetched without acknowledgement).
	InflowRate float64
	// ConsumeRate is the rate at which consumers finished messages (acknowledged them, or took them without
	// acknowledgement), per second, the mean over the last RateWindow. Rejected messages do not count.
	ConsumeRate float64
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
	// rates says the reading asked for the averaged rates (PublishRate, InflowRate); without them the list
	// costs the server about half as much, so a reading asks for them only when something needs them.
	rates bool
}

// vhostWatch is what one trigger needs from its vhost's reading.
type vhostWatch struct {
	pageSize int
	rates    bool
}

// ratesInterest is how long a QueueStats or DeadLetter call keeps the averaged rates in the readings of
// its vhost, so a caller asking every few seconds does not force a reading of its own each time.
const ratesInterest = 2 * time.Minute

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
	*scalers.Shared[*Scaler, vhostWatch, vhostQueues]

	// ratesWanted is until when (Unix nanoseconds) readings ask for the averaged rates without a trigger
	// needing them, for QueueStats callers.
	ratesWanted atomic.Int64

	// lastPages and lastPageSize are the page count and size of the last listing, so the next one can ask
	// for every page at once. Only the goroutine taking a reading touches them (readings are single-flight).
	lastPages, lastPageSize int
}

func (m *mgmtServer) reader(vhost string) *vhostReader {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.vhosts[vhost]
	if !ok {
		v = &vhostReader{srv: m, vhost: vhost, Shared: scalers.NewShared[*Scaler, vhostWatch, vhostQueues]()}
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

// details is a management API "<stat>_details" object. Anything else (the columns filter turns a details
// object without the asked-for field into an empty list) reads as zero rates.
type details struct {
	Rate    float64
	AvgRate float64
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *details) UnmarshalJSON(b []byte) error {
	var v struct {
		Rate    float64 `json:"rate"`
		AvgRate float64 `json:"avg_rate"`
	}
	if json.Unmarshal(b, &v) == nil {
		d.Rate, d.AvgRate = v.Rate, v.AvgRate
	}
	return nil
}

type queueItem struct {
	Name           string         `json:"name"`
	Messages       int64          `json:"messages"`
	Ready          int64          `json:"messages_ready"`
	Unacknowledged int64          `json:"messages_unacknowledged"`
	Arguments      map[string]any `json:"arguments"`
	MessagesRate   details        `json:"messages_details"`
	Stats          struct {
		Publish      details `json:"publish_details"`
		Ack          details `json:"ack_details"`
		DeliverNoAck details `json:"deliver_no_ack_details"`
		GetNoAck     details `json:"get_no_ack_details"`
	} `json:"message_stats"`
}

// fetch takes one reading: the vhost's queue list, every page of it, at the largest page size any
// watcher asks for. The list is not a snapshot; when the queue count changes between pages (queues
// created or deleted meanwhile, which shifts the pages), it is listed once more.
func (v *vhostReader) fetch(ctx context.Context, watches []vhostWatch) (vhostQueues, error) {
	pageSize := 1
	rates := time.Now().UnixNano() < v.ratesWanted.Load()
	for _, w := range watches {
		pageSize = max(pageSize, w.pageSize)
		rates = rates || w.rates
	}
	var (
		items []queueItem
		pages int
		err   error
	)
	for attempt := 0; ; attempt++ {
		var consistent bool
		items, pages, consistent, err = v.list(ctx, pageSize, rates)
		if err != nil || consistent || attempt == 1 {
			break
		}
	}
	if err != nil {
		return vhostQueues{pages: pages}, err
	}
	return vhostQueues{queues: derive(items), pages: pages, rates: rates}, nil
}

// maxPagesInFlight bounds the list requests of one reading that are in flight at once.
const maxPagesInFlight = 4

// list reads every page, several at once: as many as the previous reading had pages (the count is known
// after the first answer, so a vhost that grew takes a second round for the rest). consistent says the
// total count was the same on every page and every queue was seen once.
func (v *vhostReader) list(ctx context.Context, pageSize int, rates bool) (items []queueItem, pages int, consistent bool, err error) {
	guess := 1
	if v.lastPageSize == pageSize {
		guess = max(1, v.lastPages)
	}
	got := map[int]*listPage{}
	fetch := func(from, to int) error {
		answers := make([]*listPage, to-from+1)
		errs := make([]error, len(answers))
		sem := make(chan struct{}, maxPagesInFlight)
		var wg sync.WaitGroup
		for i := range answers {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				var p listPage
				if errs[i] = v.srv.get(ctx, v.listURL(from+i, pageSize, rates), &p); errs[i] == nil {
					answers[i] = &p
				}
			})
		}
		wg.Wait()
		for i, err := range errs {
			page := from + i
			if err != nil {
				if page == 1 {
					return v.srv.explainListError(ctx, v.vhost, err)
				}
				// A vhost that shrank since the last reading has fewer pages than were asked for at once:
				// RabbitMQ refuses a page past the end (400 page_out_of_range). Page 1 says how many exist.
				if p1, ok := got[1]; ok && page > max(p1.PageCount, 1) {
					continue
				}
				return fmt.Errorf("listing queues of vhost %q, page %d: %w", v.vhost, page, err)
			}
			got[page] = answers[i]
		}
		return nil
	}
	if err := fetch(1, guess); err != nil {
		v.lastPages = 0 // start again from page 1 alone next time
		return nil, len(got), false, err
	}
	pageCount := got[1].PageCount
	if pageCount > guess {
		if err := fetch(guess+1, pageCount); err != nil {
			v.lastPages = 0
			return nil, len(got), false, err
		}
	}
	v.lastPages, v.lastPageSize = max(pageCount, 1), pageSize
	consistent = true
	total := got[1].TotalCount
	for page := 1; page <= max(pageCount, 1); page++ {
		p := got[page]
		if p.TotalCount != total || p.PageCount != pageCount {
			consistent = false
		}
		items = append(items, p.Items...)
	}
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		seen[it.Name] = true
	}
	if len(seen) != len(items) || len(items) != total {
		consistent = false
	}
	return items, len(got), consistent, nil
}

func (v *vhostReader) listURL(page, pageSize int, rates bool) string {
	q := url.Values{}
	q.Set("page", strconv.Itoa(page))
	q.Set("page_size", strconv.Itoa(pageSize))
	if !rates {
		q.Set("columns", strings.Join(listColumns, ","))
	} else {
		q.Set("columns", strings.Join(append(slices.Clip(listColumns), rateColumns...), ","))
		for _, k := range []string{"msg_rates", "lengths"} {
			q.Set(k+"_age", strconv.Itoa(int(RateWindow/time.Second)))
			q.Set(k+"_incr", strconv.Itoa(int(rateStep/time.Second)))
		}
	}
	return v.srv.base + "/api/queues/" + url.PathEscape(v.vhost) + "?" + q.Encode()
}

// derive turns the listed items into QueueStats.
func derive(items []queueItem) map[string]QueueStats {
	out := make(map[string]QueueStats, len(items))
	for _, it := range items {
		qs := QueueStats{
			Messages: it.Messages, Ready: it.Ready, Unacknowledged: it.Unacknowledged,
			PublishRate: it.Stats.Publish.AvgRate, RawPublishRate: it.Stats.Publish.Rate,
			// What entered = how much the depth grew + what left (acknowledged, or taken without ack).
			InflowRate:  max(0, it.MessagesRate.AvgRate+it.Stats.Ack.AvgRate+it.Stats.DeliverNoAck.AvgRate+it.Stats.GetNoAck.AvgRate),
			ConsumeRate: it.Stats.Ack.AvgRate + it.Stats.DeliverNoAck.AvgRate + it.Stats.GetNoAck.AvgRate,
		}
		if dlx, ok := it.Arguments["x-dead-letter-exchange"]; ok {
			qs.HasDeadLetterExchange = true
			qs.DeadLetterExchange, _ = dlx.(string)
		}
		out[it.Name] = qs
	}
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
		return fmt.Errorf("no RabbitMQ management API at %s (GET /api/overview: %s); check host's address and path: %w", m.base, oerr.Error(), err)
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
