package demo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Consumers stands in for a consumer Deployment's pods where no kubelet runs them: Scale(n) keeps n
// members of a Kafka consumer group running, each consuming at most Rate messages per second from Topic
// and committing what it consumed, and leaving the group when it stops.
type Consumers struct {
	// Brokers, Group and Topic say what the members read.
	Brokers      []string
	Group, Topic string
	// Rate is each member's consumption rate, in messages per second.
	Rate float64

	mu      sync.Mutex
	members []*member
}

type member struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// tick is how often a member takes its share of records.
const tick = 200 * time.Millisecond

// Count is the number of members running.
func (c *Consumers) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.members)
}

// Scale starts or stops members until n run. Stopped members leave the group before Scale returns. The
// members run until ctx ends or they are stopped.
func (c *Consumers) Scale(ctx context.Context, n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.members) < n {
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(c.Brokers...),
			kgo.ConsumerGroup(c.Group),
			kgo.ConsumeTopics(c.Topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), // as the ScaledConsumer's offsetResetPolicy: earliest
			kgo.DisableAutoCommit(),
			kgo.BlockRebalanceOnPoll(), // commit what was consumed before partitions move
			kgo.HeartbeatInterval(500*time.Millisecond),
			kgo.SessionTimeout(10*time.Second),
		)
		if err != nil {
			return fmt.Errorf("starting a consumer: %w", err)
		}
		mctx, cancel := context.WithCancel(ctx)
		m := &member{cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(m.done)
			consume(mctx, cl, c.Rate)
		}()
		c.members = append(c.members, m)
	}
	var stopping []*member
	for len(c.members) > n {
		m := c.members[len(c.members)-1]
		c.members = c.members[:len(c.members)-1]
		m.cancel()
		stopping = append(stopping, m)
	}
	for _, m := range stopping {
		<-m.done
	}
	return nil
}

// Close stops every member.
func (c *Consumers) Close() { _ = c.Scale(context.Background(), 0) }

// consume takes up to rate x tick records every tick, commits them, and leaves the group when ctx ends.
func consume(ctx context.Context, cl *kgo.Client, rate float64) {
	defer cl.Close() // leaves the group
	log := logr.FromContextOrDiscard(ctx)
	t := time.NewTicker(tick)
	defer t.Stop()
	budget := 0.0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		budget = min(budget+rate*tick.Seconds(), rate*tick.Seconds()+1) // no catching up after an idle spell
		n := int(budget)
		if n == 0 {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, tick/2)
		recs := cl.PollRecords(pctx, n).Records()
		cancel()
		budget -= float64(len(recs))
		if len(recs) > 0 {
			if err := cl.CommitRecords(ctx, recs...); err != nil && !errors.Is(err, context.Canceled) {
				log.V(1).Info("demo consumer: commit failed; the records will be consumed again", "err", err)
			}
		}
		cl.AllowRebalance()
	}
}

// Lag is the group's backlog on topic: for each partition, the end offset minus the group's commit, or
// minus the start offset where the group has not committed: what a consumer starting at the earliest
// offset has left to read, the timeline's "backlog". It is not the scaler's value: the kafka trigger
// counts an uncommitted partition's whole end offset (KEDA's rule) and caps the total at partitions x
// lagThreshold. Before the cap they agree on the demo's topic, whose start offsets stay at 0.
func Lag(ctx context.Context, adm *kadm.Client, group, topic string) (int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("start offsets of %s: %w", topic, err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = committed.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) { // no member ever committed
		committed, err = nil, nil
	}
	if err != nil {
		return 0, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	var lag int64
	ends.Each(func(end kadm.ListedOffset) {
		from := int64(0)
		if s, ok := starts.Lookup(topic, end.Partition); ok {
			from = s.Offset
		}
		if c, ok := committed.Lookup(topic, end.Partition); ok && c.At >= 0 {
			from = c.At
		}
		lag += max(end.Offset-from, 0)
	})
	return lag, nil
}

// GroupMembers is the number of members of the consumer group, as its coordinator describes it: the
// consumers that joined, as against the pods that run. A group that does not exist has none.
func GroupMembers(ctx context.Context, adm *kadm.Client, group string) (int, error) {
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return 0, fmt.Errorf("describing group %s: %w", group, err)
	}
	g, ok := described[group]
	switch {
	case !ok, errors.Is(g.Err, kerr.GroupIDNotFound):
		return 0, nil
	case g.Err != nil:
		return 0, fmt.Errorf("describing group %s: %w", group, g.Err)
	}
	return len(g.Members), nil
}
