package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runKafka consumes cfg.Topic as a member of cfg.Group. A poll's records are processed in order; their
// results and dead letters are produced and flushed before the records are marked, and marked offsets are
// committed every few seconds, before a rebalance takes partitions away, and at the stop, before the
// client leaves the group. Records fetched but not processed at the stop are not committed: the group's
// next owner of their partition gets them.
func runKafka(ctx context.Context, cfg config, p *processor, out io.Writer) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(cfg.Brokers, ",")...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitMarks(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
			if err := cl.CommitMarkedOffsets(ctx); err != nil {
				fmt.Fprintf(out, "consumer: commit before a rebalance: %v\n", err)
			}
		}),
		kgo.AllowAutoTopicCreation(),
		kgo.ProducerLinger(0),
	)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	defer cl.Close()
	fmt.Fprintf(out, "consumer: kafka %s, topic %s, group %s, rate %v/s, fail ratio %v\n", cfg.Brokers, cfg.Topic, cfg.Group, cfg.Rate, cfg.FailRatio)

	// finish is the context of the work that must complete after a stop.
	finish := context.WithoutCancel(ctx)
	perPoll := pollSize(cfg.Prefetch, cfg.Rate)
	var runErr error
	for runErr == nil && ctx.Err() == nil {
		fetches := cl.PollRecords(ctx, perPoll)
		if errs := fetches.Errors(); len(errs) > 0 {
			for _, fe := range errs {
				if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, kgo.ErrClientClosed) {
					continue
				}
				fmt.Fprintf(out, "consumer: fetch %s/%d: %v\n", fe.Topic, fe.Partition, fe.Err)
			}
		}
		runErr = processKafka(ctx, finish, cl, cfg, p, fetches.Records())
		cl.AllowRebalance()
	}

	stopCtx, cancel := context.WithTimeout(finish, finishTimeout)
	defer cancel()
	if err := cl.CommitMarkedOffsets(stopCtx); err != nil {
		return errors.Join(runErr, fmt.Errorf("kafka: commit: %w", err))
	}
	if err := cl.LeaveGroupContext(stopCtx); err != nil {
		return errors.Join(runErr, fmt.Errorf("kafka: leaving the group: %w", err))
	}
	return runErr
}

// processKafka processes records until ctx is done, produces their results and dead letters, and marks
// the processed ones for commit once every produce has succeeded.
func processKafka(ctx, finish context.Context, cl *kgo.Client, cfg config, p *processor, records []*kgo.Record) error {
	var (
		done    []*kgo.Record
		mu      sync.Mutex
		produce error
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			produce = errors.Join(produce, err)
			mu.Unlock()
		}
	}
	for _, r := range records {
		if !p.pace(ctx) {
			break
		}
		key := kafkaKey(r)
		switch p.decide(key) {
		case processed:
			if cfg.Results != "" {
				cl.Produce(finish, &kgo.Record{Topic: cfg.Results, Key: []byte(key), Value: []byte(cfg.ID)}, promise)
			}
		case failed:
			dl := &kgo.Record{Topic: cfg.DeadLetter, Key: r.Key, Value: r.Value, Headers: append(r.Headers,
				kgo.RecordHeader{Key: "consumer-source", Value: fmt.Appendf(nil, "%s/%d/%d", r.Topic, r.Partition, r.Offset)})}
			cl.Produce(finish, dl, promise)
		case duplicate:
		}
		done = append(done, r)
	}
	flushCtx, cancel := context.WithTimeout(finish, finishTimeout)
	defer cancel()
	if err := cl.Flush(flushCtx); err != nil {
		return fmt.Errorf("kafka: producing results: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if produce != nil {
		return fmt.Errorf("kafka: producing results: %w", produce)
	}
	cl.MarkCommitRecords(done...)
	return nil
}

// maxBatchTime bounds the processing time of one poll's records: a rebalance waits for them (the group's
// other members included), so a replica added by a scale-up gets its partitions within about this long.
const maxBatchTime = 5 * time.Second

// pollSize is how many records a poll takes: prefetch, but no more than maxBatchTime's worth at rate.
func pollSize(prefetch int, rate float64) int {
	if rate <= 0 {
		return prefetch
	}
	return max(1, min(prefetch, int(rate*maxBatchTime.Seconds())))
}

// kafkaKey is a record's key, or where it is when it has none.
func kafkaKey(r *kgo.Record) string {
	if len(r.Key) > 0 {
		return string(r.Key)
	}
	return fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
}
