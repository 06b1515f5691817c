package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ebbscale/ebb/scalers"
)

// metadataRefresh is how long a topic's partition count is trusted before it is asked again (to notice
// added partitions). An unknown-topic or leader error forgets it at once.
const metadataRefresh = 30 * time.Second

// watch is what one trigger needs from its cluster: a group, and a topic ("" for every topic the group
// has committed).
type watch struct {
	group, topic string
	// starts asks for the topic's start offsets too (a dead-letter topic's depth is end - start); a
	// watch with starts has no group.
	starts bool
}

// reading is one batched look at a cluster: committed offsets of every watched group and end offsets of
// every partition of every watched topic. It is the value of a scalers.Reading, which carries its time,
// version, sequence number and (classified) error.
type reading struct {
	// err is a failure of the whole reading (unreachable, authentication), as fetch met it.
	err       error
	ends      map[string][]int64 // topic -> end offset by partition (-1: not known)
	topicErr  map[string]error
	committed map[string]map[string]map[int32]int64 // group -> topic -> partition -> offset
	groupErr  map[string]error
	starts    map[string][]int64 // topic -> start offset by partition, for the watches with starts
}

// cluster is one franz-go client shared by every trigger with the same brokers and credentials.
type cluster struct {
	// Shared holds the triggers' watches and coalesces their readings.
	*scalers.Shared[*Scaler, watch, *reading]
	key string
	cl  *kgo.Client
	// sasl notes SASL exchanges the broker cut off; nil without SASL.
	sasl *saslHook

	mu    sync.Mutex // guards parts
	parts map[string]topicLayout
}

type topicLayout struct {
	partitions int32
	checked    time.Time
}

func newCluster(key string, cl *kgo.Client, sasl *saslHook) *cluster {
	return &cluster{Shared: scalers.NewShared[*Scaler, watch, *reading](), key: key, cl: cl, sasl: sasl, parts: map[string]topicLayout{}}
}

// readTimeout bounds a reading when the trigger that starts it has no deadline.
const readTimeout = 30 * time.Second

// read returns a reading that started no earlier than notBefore and covers the watch set as of version,
// taking a new one (for every watcher at once) when needed. Concurrent callers share one reading.
func (c *cluster) read(ctx context.Context, notBefore time.Time, version uint64) (*scalers.Reading[*reading], error) {
	return c.Read(ctx, time.Now, notBefore, version, readTimeout, nil, func(ctx context.Context, ws []watch) (*reading, error) {
		started := time.Now()
		groups, topics, startTopics, allTopics := watchSet(ws)
		r := c.fetch(ctx, groups, topics, startTopics, allTopics)
		if r.err != nil {
			return r, c.classify(r.err, started)
		}
		return r, nil
	})
}

// watchSet lists the groups and named topics of the watches, the topics whose start offsets are wanted,
// and the groups watched for all their topics.
func watchSet(ws []watch) (groups, topics, startTopics []string, allTopics map[string]bool) {
	allTopics = map[string]bool{}
	for _, w := range ws {
		if w.starts {
			topics = append(topics, w.topic)
			startTopics = append(startTopics, w.topic)
			continue
		}
		groups = append(groups, w.group)
		if w.topic == "" {
			allTopics[w.group] = true
		} else {
			topics = append(topics, w.topic)
		}
	}
	slices.Sort(groups)
	slices.Sort(topics)
	slices.Sort(startTopics)
	return slices.Compact(groups), slices.Compact(topics), slices.Compact(startTopics), allTopics
}

// fetch takes one reading: OffsetFetch for every group (batched per coordinator), then ListOffsets for every
// partition of the watched topics and of the topics the "all topics" groups committed (one request per
// partition leader).
func (c *cluster) fetch(ctx context.Context, groups, topics, startTopics []string, allTopics map[string]bool) *reading {
	r := &reading{ends: map[string][]int64{}, topicErr: map[string]error{}, committed: map[string]map[string]map[int32]int64{}, groupErr: map[string]error{}}
	// Lay out the watched topics before OffsetFetch. On a client's first reading this Metadata request also
	// tells it the brokers: otherwise every OffsetFetch shard asks for them on its own (one Metadata
	// request per coordinator), and the "any broker" requests of that first tick spread over several seed
	// connections. Later readings find the layout known and send nothing here.
	if err := c.discover(ctx, topics, r); err != nil {
		r.err = err
		return r
	}
	fetched := c.fetchOffsets(ctx, groups)
	for _, g := range groups {
		resp, ok := fetched[g]
		switch {
		case !ok:
			r.groupErr[g] = fmt.Errorf("consumer group %q: no answer from its coordinator", g)
			continue
		case errors.Is(resp.Err, kerr.GroupIDNotFound):
			// Kafka answers OffsetFetch for a group it does not know with no offsets; kfake answers
			// GROUP_ID_NOT_FOUND. Both mean the group has committed nothing.
			r.committed[g] = map[string]map[int32]int64{}
			continue
		case resp.Err != nil:
			if isClusterErr(resp.Err) {
				r.err = resp.Err
				return r
			}
			r.groupErr[g] = classify(resp.Err)
			continue
		}
		if allTopics[g] {
			for t := range resp.Fetched {
				topics = append(topics, t)
			}
		}
		r.committed[g] = resp.Fetched
	}
	slices.Sort(topics)
	topics = slices.Compact(topics)
	if len(topics) == 0 {
		return r
	}
	if err := c.layout(ctx, topics, r); err != nil {
		r.err = err
		return r
	}

	c.mu.Lock()
	counts := make(map[string]int32, len(topics))
	for _, t := range topics {
		counts[t] = c.parts[t].partitions
	}
	c.mu.Unlock()
	// The end offsets, and the start offsets of dead-letter topics, at once: one round trip per tick.
	known := func(t string) bool { return r.topicErr[t] == nil }
	var (
		wg           sync.WaitGroup
		startErrs    = map[string]error{}
		startErr     error
		endErrs      = map[string]error{}
		endErr       error
		ends, starts map[string][]int64
	)
	if len(startTopics) > 0 {
		startTopics = slices.DeleteFunc(slices.Clone(startTopics), func(t string) bool { return !known(t) })
		wg.Go(func() { starts, startErr = c.listOffsets(ctx, startTopics, counts, -2, startErrs) })
	}
	topics = slices.DeleteFunc(topics, func(t string) bool { return !known(t) })
	ends, endErr = c.listOffsets(ctx, topics, counts, -1, endErrs)
	wg.Wait()
	r.ends, r.starts = ends, starts
	for _, m := range []map[string]error{endErrs, startErrs} {
		for t, err := range m {
			if r.topicErr[t] == nil {
				r.topicErr[t] = err
			}
		}
	}
	if err := cmp.Or(endErr, startErr); err != nil {
		r.err = err
	}
	return r
}

// listOffsets lists the offsets at timestamp (-1: the end, -2: the start) of every partition of topics,
// in one ListOffsets request per partition leader. A topic's failure goes to topicErr (and its offsets
// stay -1); a failure of the cluster is returned.
func (c *cluster) listOffsets(ctx context.Context, topics []string, counts map[string]int32, timestamp int64, topicErr map[string]error) (map[string][]int64, error) {
	out := make(map[string][]int64, len(topics))
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	for _, t := range topics {
		n := counts[t]
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = t
		rt.Partitions = make([]kmsg.ListOffsetsRequestTopicPartition, 0, n)
		for p := range n {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = p
			rp.Timestamp = timestamp
			rp.CurrentLeaderEpoch = -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		offsets := make([]int64, n)
		for i := range offsets {
			offsets[i] = -1
		}
		out[t] = offsets
	}
	if len(req.Topics) == 0 {
		return out, nil
	}
	for _, shard := range c.cl.RequestSharded(ctx, req) {
		if shard.Err != nil {
			if isClusterErr(shard.Err) {
				return out, shard.Err
			}
			for _, t := range shard.Req.(*kmsg.ListOffsetsRequest).Topics {
				topicErr[t.Topic] = fmt.Errorf("listing offsets of topic %q: %w", t.Topic, classify(shard.Err))
			}
			continue
		}
		for _, t := range shard.Resp.(*kmsg.ListOffsetsResponse).Topics {
			offsets := out[t.Topic] // once per topic, not per partition
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					err := kerr.ErrorForCode(p.ErrorCode)
					if errors.Is(err, kerr.UnknownTopicOrPartition) {
						c.forgetLayout(t.Topic)
					}
					topicErr[t.Topic] = fmt.Errorf("offset of %s/%d: %w", t.Topic, p.Partition, classify(err))
					continue
				}
				if int(p.Partition) < len(offsets) {
					offsets[p.Partition] = p.Offset
				}
			}
		}
	}
	return out, nil
}

// groupOffsets is one group's answer to OffsetFetch.
type groupOffsets struct {
	// Err is the group's error, or the error of the request that carried it.
	Err error
	// Fetched is topic -> partition -> committed offset (-1: none); partitions answered with an error are
	// left out.
	Fetched map[string]map[int32]int64
}

// fetchOffsets asks the committed offsets of groups, one OffsetFetch per group coordinator (kgo shards the
// request by coordinator). It does what kadm's FetchManyOffsets does, minus the result struct kadm builds
// for every partition (topic, topic ID, metadata, leader epoch, error: about 300 bytes a partition, some
// 3 MB of garbage per reading of a 10,000-partition topic); a reading keeps only the offsets.
func (c *cluster) fetchOffsets(ctx context.Context, groups []string) map[string]groupOffsets {
	out := make(map[string]groupOffsets, len(groups))
	if len(groups) == 0 {
		return out
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	for _, g := range groups {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = g
		req.Groups = append(req.Groups, rg)
	}
	for _, shard := range c.cl.RequestSharded(ctx, req) {
		if shard.Err != nil {
			for _, g := range shard.Req.(*kmsg.OffsetFetchRequest).Groups {
				out[g.Group] = groupOffsets{Err: shard.Err}
			}
			continue
		}
		// kgo answers in the per-group form whatever the broker's version; a pre-v8 response's top-level
		// error code is copied into its one group.
		for _, g := range shard.Resp.(*kmsg.OffsetFetchResponse).Groups {
			if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
				out[g.Group] = groupOffsets{Err: err}
				continue
			}
			fetched := make(map[string]map[int32]int64, len(g.Topics))
			for _, t := range g.Topics {
				m := make(map[int32]int64, len(t.Partitions))
				for _, p := range t.Partitions {
					if p.ErrorCode == 0 {
						m[p.Partition] = p.Offset
					}
				}
				fetched[t.Topic] = m
			}
			out[g.Group] = groupOffsets{Fetched: fetched}
		}
	}
	return out
}

// discover lays out topics (see layout) and, when there are none to lay out and the client knows no broker
// yet, asks for the brokers alone, so that the requests that follow go to the brokers rather than the
// seeds.
func (c *cluster) discover(ctx context.Context, topics []string, r *reading) error {
	if len(topics) > 0 {
		return c.layout(ctx, topics, r)
	}
	if len(c.cl.DiscoveredBrokers()) > 0 {
		return nil
	}
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{} // brokers only
	_, err := req.RequestWith(ctx, c.cl)
	return err
}

// layout makes sure the partition counts of topics are known, asking the cluster (one Metadata request
// for all of them) for those never seen or not checked for metadataRefresh. Unknown topics get a
// per-topic error in r.
func (c *cluster) layout(ctx context.Context, topics []string, r *reading) error {
	now := time.Now()
	var need []string
	c.mu.Lock()
	for _, t := range topics {
		if r.topicErr[t] != nil {
			continue // asked already in this reading
		}
		if l, ok := c.parts[t]; !ok || now.Sub(l.checked) > metadataRefresh {
			need = append(need, t)
		}
	}
	c.mu.Unlock()
	if len(need) == 0 {
		return nil
	}
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range need {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			delete(c.parts, *t.Topic)
			r.topicErr[*t.Topic] = classifyTopic(*t.Topic, err)
			continue
		}
		c.parts[*t.Topic] = topicLayout{partitions: int32(len(t.Partitions)), checked: now}
	}
	return nil
}

func (c *cluster) forgetLayout(topic string) {
	c.mu.Lock()
	delete(c.parts, topic)
	c.mu.Unlock()
}
