package scalers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// DeadLetterType is implemented by a trigger type that can watch a dead-letter queue or topic for the
// consumer-health guard (a ScaledConsumer's spec.deadLetter names the type). Config.Metadata and Auth
// then name the queue or topic and how to reach it; Progress is false. A reader should share its broker
// client, and where it can the batched reading, with the triggers on the same broker.
type DeadLetterType interface {
	NewDeadLetter(Config) (DeadLetterReader, error)
}

// DeadLetterReader watches one dead-letter queue or topic. A reader that holds a shared resource also
// implements io.Closer; the controller closes it when the ScaledConsumer's deadLetter goes away.
type DeadLetterReader interface {
	// Name names the queue or topic in messages, such as `topic "orders.dlq"`. It does no I/O.
	Name() string
	// Read reports how many messages wait in the queue and how fast they arrive. The controller calls it
	// once per polling tick, with the triggers of the same ScaledConsumer.
	Read(ctx context.Context) (DeadLetters, error)
}

// DeadLetters is one reading of a dead-letter queue or topic.
type DeadLetters struct {
	// Depth is how many messages wait in it.
	Depth float64
	// InflowPerSecond is how many messages per second entered it lately (dead-lettered or published).
	InflowPerSecond float64
}

// ErrNoDeadLetter is returned (wrapped) for a type that cannot watch a dead-letter queue.
var ErrNoDeadLetter = errors.New("this trigger type cannot watch a dead-letter queue")

// NewDeadLetter builds the dead-letter reader of a ScaledConsumer's deadLetter of type triggerType. An
// unknown type's error wraps ErrUnknownType and lists the known types; a type that is not a
// DeadLetterType's wraps ErrNoDeadLetter and lists those that are.
func (r Registry) NewDeadLetter(triggerType string, cfg Config) (DeadLetterReader, error) {
	t, ok := r[triggerType]
	if !ok {
		return nil, fmt.Errorf("deadLetter.type %q: %w; known types: %s", triggerType, ErrUnknownType, strings.Join(r.Types(), ", "))
	}
	d, ok := t.(DeadLetterType)
	if !ok {
		return nil, fmt.Errorf("deadLetter.type %q: %w; types that can: %s", triggerType, ErrNoDeadLetter, strings.Join(r.DeadLetterTypes(), ", "))
	}
	reader, err := d.NewDeadLetter(cfg)
	if err != nil {
		return nil, fmt.Errorf("deadLetter (%s): %w", triggerType, err)
	}
	return reader, nil
}

// DeadLetterTypes lists the types that can watch a dead-letter queue, sorted.
func (r Registry) DeadLetterTypes() []string {
	var types []string
	for name, t := range r {
		if _, ok := t.(DeadLetterType); ok {
			types = append(types, name)
		}
	}
	slices.Sort(types)
	return types
}

// SampledDeadLetters is the DeadLetterReader named name over s, a Scaler whose samples hold, in this
// order, a dead-letter queue's depth and its inflow per second: a trigger type that reads dead letters
// with its trigger machinery (the shared client and the batched reading) returns this from NewDeadLetter.
// Its Close closes s when s is an io.Closer.
func SampledDeadLetters(name string, s Scaler) DeadLetterReader {
	return sampledDeadLetters{name: name, s: s}
}

type sampledDeadLetters struct {
	name string
	s    Scaler
}

func (d sampledDeadLetters) Name() string { return d.name }

func (d sampledDeadLetters) Read(ctx context.Context) (DeadLetters, error) {
	smp, err := d.s.Sample(ctx)
	if err != nil {
		return DeadLetters{}, err
	}
	if len(smp.Values) != 2 {
		return DeadLetters{}, fmt.Errorf("dead-letter reader %s: %d values, want depth and inflow", d.name, len(smp.Values))
	}
	return DeadLetters{Depth: smp.Values[0], InflowPerSecond: smp.Values[1]}, nil
}

func (d sampledDeadLetters) Close() error {
	if c, ok := d.s.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
