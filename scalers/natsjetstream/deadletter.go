package natsjetstream

import (
	"fmt"

	"github.com/ebbscale/ebb/scalers"
)

// NewDeadLetter builds the reader of a dead-letter stream (scalers.DeadLetterType): a stream where failed
// messages, or the server's max-delivery advisories ($JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>), are
// captured. Its depth is the stream's message count, its inflow the growth of its last sequence per
// second between readings. It reads through the same shared connection and reading as the triggers on
// the server set: one STREAM.INFO per tick over the client protocol, nothing more in monitoring mode
// (/jsz lists stream states).
func (p *Pool) NewDeadLetter(cfg scalers.Config) (scalers.DeadLetterReader, error) {
	var dl deadLetterMetadata
	if err := scalers.ParseAs("a nats-jetstream dead-letter stream", cfg.Metadata, cfg.Auth, &dl); err != nil {
		return nil, err
	}
	s := &Scaler{pool: p, interval: cfg.PollingInterval, deadLetter: true}
	s.md.Connection, s.md.Stream = dl.Connection, dl.Stream
	if err := p.attach(s, watch{stream: s.md.Stream}); err != nil {
		return nil, err
	}
	return scalers.SampledDeadLetters(fmt.Sprintf("stream %q", s.md.Stream), s), nil
}

// sampleDeadLetter reads the dead-letter stream: its depth, and its inflow per second since the previous
// sample (0 on the first, and when the stream was recreated).
func (s *Scaler) sampleDeadLetter(r *scalers.Reading[*reading]) (scalers.Sample, error) {
	e, err := r.Val.lookup(watch{stream: s.md.Stream})
	if err != nil {
		return scalers.Sample{}, fmt.Errorf("%s: dead-letter stream %q: %w", s.md.where(), s.md.Stream, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Seq == s.lastSeq {
		return s.copyLast(), nil
	}
	inflow := 0.0
	if dt := r.Started.Sub(s.prevAt); !s.prevAt.IsZero() && dt > 0 && e.lastSeq >= s.prev.lastSeq {
		inflow = float64(e.lastSeq-s.prev.lastSeq) / dt.Seconds()
	}
	s.prev, s.prevAt, s.lastSeq = e, r.Started, r.Seq
	s.last = scalers.Sample{Values: []float64{float64(e.msgs), inflow}}
	return s.copyLast(), nil
}
