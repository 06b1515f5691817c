package kafka

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ebbscale/ebb/scalers"
)

// NewDeadLetter builds the reader of a dead-letter topic (scalers.DeadLetterType): its depth (end - start
// offsets, so deleted records do not count) and inflow (the growth of its end offsets between readings),
// from the shared reading of its cluster, which lists the topic's start offsets alongside the end offsets.
func (p *Pool) NewDeadLetter(cfg scalers.Config) (scalers.DeadLetterReader, error) {
	var dl deadLetterMetadata
	errs := []error{scalers.ParseAs("a kafka dead-letter topic", cfg.Metadata, cfg.Auth, &dl)}
	if strings.TrimSpace(cfg.Metadata["topic"]) == "" && strings.TrimSpace(cfg.Auth["topic"]) == "" {
		errs = append(errs, &scalers.FieldError{Key: "topic", Msg: "required: the dead-letter topic"})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s := &Scaler{pool: p, interval: cfg.PollingInterval, deadLetter: true}
	s.md.Connection, s.md.Topic = dl.Connection, dl.Topic
	c, err := p.cluster(s.md.Connection)
	if err != nil {
		return nil, err
	}
	s.cluster = c
	s.version = c.Add(s, watch{topic: s.md.Topic, starts: true})
	return scalers.SampledDeadLetters(fmt.Sprintf("topic %q", s.md.Topic), s), nil
}

// sampleDeadLetter reads the dead-letter topic: depth is the sum over partitions of end - start, inflow
// the growth of the summed end offsets per second since the previous sample (0 on the first).
func (s *Scaler) sampleDeadLetter(r *scalers.Reading[*reading]) (scalers.Sample, error) {
	t := s.md.Topic
	if err := r.Val.topicErr[t]; err != nil {
		return scalers.Sample{}, fmt.Errorf("dead-letter topic: %w", err)
	}
	ends, starts := r.Val.ends[t], r.Val.starts[t]
	if len(ends) == 0 || len(starts) != len(ends) {
		return scalers.Sample{}, fmt.Errorf("dead-letter topic %q: no offsets in this reading", t)
	}
	var depth, ended int64
	for i, end := range ends {
		if end < 0 || starts[i] < 0 {
			return scalers.Sample{}, fmt.Errorf("dead-letter topic %q partition %d: offsets unknown", t, i)
		}
		depth += end - starts[i]
		ended += end
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Seq == s.lastSeq {
		return s.copyLast(), nil
	}
	inflow := 0.0
	if dt := r.Started.Sub(s.endedAt); !s.endedAt.IsZero() && dt > 0 && ended >= s.ended {
		inflow = float64(ended-s.ended) / dt.Seconds()
	}
	s.ended, s.endedAt, s.lastSeq = ended, r.Started, r.Seq
	s.last = scalers.Sample{Values: []float64{float64(depth), inflow}}
	return s.copyLast(), nil
}
