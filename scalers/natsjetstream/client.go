package natsjetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/ebbscale/ebb/scalers"
)

// pageSize is how many consumers one page of $JS.API.CONSUMER.LIST holds (the server's limit).
const pageSize = 256

// requestTimeout bounds one JetStream API request, within the reading's deadline.
const requestTimeout = 3 * time.Second

// parallelStreams bounds how many streams a reading asks about at once.
const parallelStreams = 16

// client is one NATS connection to a server set with one set of credentials, shared by every trigger
// on it. It connects on the first reading and then lets nats.go reconnect.
type client struct {
	urls    string
	opts    []nats.Option
	observe scalers.RequestObserver

	mu sync.Mutex
	nc *nats.Conn
	// totals is how many consumers each stream had at its last listing, which decides between listing
	// pages and asking per consumer.
	totals map[string]int
}

func newClient(c *Connection, observe scalers.RequestObserver) (*client, error) {
	opts := []nats.Option{
		nats.Name("ebb"),
		nats.Timeout(5 * time.Second),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.NoCallbacksAfterClientClose(),
	}
	switch {
	case c.Username != "":
		opts = append(opts, nats.UserInfo(c.Username, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	case c.NKeySeed != "":
		kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(c.NKeySeed)))
		if err != nil {
			return nil, &scalers.FieldError{Key: "nkeySeed", Msg: "is not an nkey seed (SU...): " + err.Error()}
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, &scalers.FieldError{Key: "nkeySeed", Msg: err.Error()}
		}
		opts = append(opts, nats.Nkey(pub, kp.Sign))
	case c.Creds != "":
		jwt, err := nkeys.ParseDecoratedJWT([]byte(c.Creds))
		if err != nil {
			return nil, &scalers.FieldError{Key: "creds", Msg: "is not the content of a .creds file: " + err.Error()}
		}
		kp, err := nkeys.ParseDecoratedNKey([]byte(c.Creds))
		if err != nil {
			return nil, &scalers.FieldError{Key: "creds", Msg: "holds no user seed: " + err.Error()}
		}
		seed, err := kp.Seed()
		if err != nil {
			return nil, &scalers.FieldError{Key: "creds", Msg: "holds no user seed: " + err.Error()}
		}
		opts = append(opts, nats.UserJWTAndSeed(jwt, string(seed)))
	}
	if c.tlsOn() {
		tc, err := c.TLS.Config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(tc))
	}
	return &client{urls: strings.Join(c.ServerURL, ","), opts: opts, observe: observe, totals: map[string]int{}}, nil
}

// conn returns the connection, dialing it when there is none (or it was closed for good).
func (c *client) conn() (*nats.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nil && !c.nc.IsClosed() {
		return c.nc, nil
	}
	start := time.Now()
	nc, err := nats.Connect(c.urls, c.opts...)
	if c.observe != nil {
		c.observe(c.urls, "Connect", time.Since(start), err)
	}
	if err != nil {
		return nil, err
	}
	c.nc = nc
	return nc, nil
}

func (c *client) connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nc != nil && c.nc.IsConnected()
}

func (c *client) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// outMsgs is how many messages (requests) the connection has sent.
func (c *client) outMsgs() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc == nil {
		return 0
	}
	return c.nc.Stats().OutMsgs
}

// fetch reads every watched stream: per stream, one STREAM.INFO when its state is watched, and either
// the pages of its consumer list or one CONSUMER.INFO per watched consumer, whichever is fewer requests.
func (c *client) fetch(ctx context.Context, watches []watch) (*reading, error) {
	nc, err := c.conn()
	if err != nil {
		return nil, err
	}
	r := newReading()
	var (
		mu        sync.Mutex
		serverErr error
		wg        sync.WaitGroup
		sem       = make(chan struct{}, parallelStreams)
	)
	for name, sw := range byStream(watches) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			part := newReading()
			err := c.readStream(ctx, nc, name, sw, part)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && isServerErr(err) {
				serverErr = err
				return
			}
			if err != nil {
				part.streamErrs[name] = err
			}
			r.merge(part)
		}()
	}
	wg.Wait()
	if serverErr != nil {
		return nil, serverErr
	}
	return r, nil
}

func (r *reading) merge(o *reading) {
	for k, v := range o.entries {
		r.entries[k] = v
	}
	for k, v := range o.errs {
		r.errs[k] = v
	}
	for k, v := range o.streamErrs {
		r.streamErrs[k] = v
	}
}

// readStream reads one stream's watches into r; an error fails the stream's every watch.
func (c *client) readStream(ctx context.Context, nc *nats.Conn, stream string, sw *streamWatch, r *reading) error {
	if sw.state {
		var resp struct {
			Error *jetstream.APIError `json:"error"`
			jetstream.StreamInfo
		}
		if err := c.request(ctx, nc, "STREAM.INFO", "$JS.API.STREAM.INFO."+stream, nil, &resp); err != nil {
			return err
		}
		if resp.Error != nil {
			return apiError(resp.Error)
		}
		r.entries[watch{stream: stream}] = entry{msgs: resp.State.Msgs, lastSeq: resp.State.LastSeq}
	}
	if len(sw.consumers) == 0 {
		return nil
	}
	c.mu.Lock()
	total, known := c.totals[stream]
	c.mu.Unlock()
	pages := max(1, (total+pageSize-1)/pageSize)
	if (known && len(sw.consumers) <= pages) || (!known && len(sw.consumers) == 1) {
		return c.infoEach(ctx, nc, stream, sw, r)
	}
	return c.list(ctx, nc, stream, sw, r)
}

// infoEach asks each watched consumer's leader for its info.
func (c *client) infoEach(ctx context.Context, nc *nats.Conn, stream string, sw *streamWatch, r *reading) error {
	for name := range sw.consumers {
		var resp struct {
			Error *jetstream.APIError `json:"error"`
			jetstream.ConsumerInfo
		}
		w := watch{stream: stream, consumer: name}
		err := c.request(ctx, nc, "CONSUMER.INFO", fmt.Sprintf("$JS.API.CONSUMER.INFO.%s.%s", stream, name), nil, &resp)
		switch {
		case err != nil && isTimeout(err) && !errors.Is(err, ErrUnreachable):
			r.errs[w] = fmt.Errorf("%w (an election may be under way): %w", ErrNoLeader, err)
		case err != nil:
			return err
		case resp.Error != nil && errors.Is(apiError(resp.Error), ErrConsumerNotFound):
			r.errs[w] = apiError(resp.Error)
		case resp.Error != nil:
			return apiError(resp.Error)
		default:
			r.entries[w] = consumerEntry(&resp.ConsumerInfo)
		}
	}
	return nil
}

// list pages through the stream's consumers (their leaders answer, gathered by the stream leader).
func (c *client) list(ctx context.Context, nc *nats.Conn, stream string, sw *streamWatch, r *reading) error {
	seen := map[string]bool{}
	missing := map[string]bool{}
	offset, total := 0, 0
	for {
		var resp struct {
			Error     *jetstream.APIError       `json:"error"`
			Total     int                       `json:"total"`
			Consumers []*jetstream.ConsumerInfo `json:"consumers"`
			Missing   []string                  `json:"missing"`
		}
		body, _ := json.Marshal(struct {
			Offset int `json:"offset"`
		}{offset})
		if err := c.request(ctx, nc, "CONSUMER.LIST", "$JS.API.CONSUMER.LIST."+stream, body, &resp); err != nil {
			return err
		}
		if resp.Error != nil {
			return apiError(resp.Error)
		}
		total = resp.Total
		for _, ci := range resp.Consumers {
			if ci == nil {
				continue
			}
			seen[ci.Name] = true
			if sw.consumers[ci.Name] {
				r.entries[watch{stream: stream, consumer: ci.Name}] = consumerEntry(ci)
			}
		}
		for _, m := range resp.Missing {
			missing[m] = true
		}
		offset += len(resp.Consumers) + len(resp.Missing)
		if len(resp.Consumers)+len(resp.Missing) == 0 || offset >= total {
			break
		}
	}
	c.mu.Lock()
	c.totals[stream] = total
	c.mu.Unlock()
	for name := range sw.consumers {
		w := watch{stream: stream, consumer: name}
		switch {
		case seen[name]:
		case missing[name]:
			r.errs[w] = fmt.Errorf("%w: the consumer list names it as missing (its leader did not answer the stream leader)", ErrNoLeader)
		default:
			r.errs[w] = ErrConsumerNotFound
		}
	}
	return nil
}

func consumerEntry(ci *jetstream.ConsumerInfo) entry {
	return entry{pending: ci.NumPending, ackPending: uint64(max(ci.NumAckPending, 0)), floorConsumer: ci.AckFloor.Consumer, floorStream: ci.AckFloor.Stream}
}

// request sends one JetStream API request and decodes its answer into out.
func (c *client) request(ctx context.Context, nc *nats.Conn, kind, subject string, body []byte, out any) error {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	start := time.Now()
	msg, err := nc.RequestWithContext(rctx, subject, body)
	if err == nil {
		if err = json.Unmarshal(msg.Data, out); err != nil {
			err = fmt.Errorf("%s: answer is not JSON: %w", kind, err)
		}
	}
	if c.observe != nil {
		c.observe(nc.ConnectedAddr(), kind, time.Since(start), err)
	}
	if err != nil && isTimeout(err) && !nc.IsConnected() {
		// No answer because the connection is down (nats.go is reconnecting): the servers, not a
		// consumer's leader, are what is missing.
		return fmt.Errorf("%w: the connection is lost (%s), reconnecting: %w", ErrUnreachable, nc.Status(), err)
	}
	return err
}

func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
}
