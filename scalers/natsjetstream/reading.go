package natsjetstream

import (
	"context"
	"fmt"

	"github.com/ebbscale/ebb/scalers"
)

// watch is what one trigger or dead-letter reader needs from a reading: a consumer of a stream, or (with
// consumer empty) the stream's own state.
type watch struct {
	stream, consumer string
}

// entry is one consumer's or stream's figures in a reading, as its leader reported them.
type entry struct {
	// A consumer's messages not yet delivered and delivered but not acknowledged.
	pending, ackPending uint64
	// A consumer's ack floor: the consumer and stream sequences below which every delivery is finished.
	floorConsumer, floorStream uint64
	// A stream's message count and last sequence.
	msgs, lastSeq uint64
}

// reading is one batched look at a server set: every watched consumer's and stream's entry, or why
// there is none.
type reading struct {
	entries map[watch]entry
	errs    map[watch]error
	// streamErrs fails every watch of a stream (the stream is missing, or its answer failed).
	streamErrs map[string]error
}

func newReading() *reading {
	return &reading{entries: map[watch]entry{}, errs: map[watch]error{}, streamErrs: map[string]error{}}
}

// lookup is w's entry, or why the reading has none.
func (r *reading) lookup(w watch) (entry, error) {
	if err := r.streamErrs[w.stream]; err != nil {
		return entry{}, err
	}
	if err := r.errs[w]; err != nil {
		return entry{}, err
	}
	e, ok := r.entries[w]
	if !ok {
		return entry{}, fmt.Errorf("not in this reading")
	}
	return e, nil
}

// server is one server set (client protocol) or set of monitoring endpoints, with the triggers that read
// it and their shared reading.
type server struct {
	*scalers.Shared[*Scaler, watch, *reading]
	key string
	// One of these, by mode.
	client  *client
	monitor *monitor
}

func newServer(key string, c *Connection, observe scalers.RequestObserver) (*server, error) {
	s := &server{Shared: scalers.NewShared[*Scaler, watch, *reading](), key: key}
	var err error
	if c.monitoring() {
		s.monitor, err = newMonitor(c, observe)
	} else {
		s.client, err = newClient(c, observe)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// fetch takes one reading for watches.
func (s *server) fetch(ctx context.Context, watches []watch) (*reading, error) {
	if s.monitor != nil {
		return s.monitor.fetch(ctx, watches)
	}
	return s.client.fetch(ctx, watches)
}

func (s *server) close() {
	if s.client != nil {
		s.client.close()
	}
	if s.monitor != nil {
		s.monitor.close()
	}
}

// byStream groups watches by stream: the consumers watched in each (sorted is not needed), and whether
// the stream's own state is wanted.
func byStream(watches []watch) map[string]*streamWatch {
	out := map[string]*streamWatch{}
	for _, w := range watches {
		sw, ok := out[w.stream]
		if !ok {
			sw = &streamWatch{consumers: map[string]bool{}}
			out[w.stream] = sw
		}
		if w.consumer == "" {
			sw.state = true
		} else {
			sw.consumers[w.consumer] = true
		}
	}
	return out
}

// streamWatch is what a reading needs of one stream.
type streamWatch struct {
	consumers map[string]bool
	state     bool
}
