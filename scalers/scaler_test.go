package scalers_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ebbscale/ebb/scalers"
)

// fixed is a test scaler whose value comes from its metadata.
type fixed struct {
	md struct {
		Value     float64 `ebb:"value"`
		Threshold float64 `ebb:"threshold,default=5,min=0"`
	}
	name string
}

var _ scalers.Scaler = (*fixed)(nil)

func newFixed(cfg scalers.Config) (scalers.Scaler, error) {
	s := &fixed{name: cfg.TriggerName}
	if err := scalers.Parse(cfg.Metadata, cfg.Auth, &s.md); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *fixed) Metrics() []scalers.MetricSpec {
	return []scalers.MetricSpec{{Target: s.md.Threshold}}
}

func (s *fixed) Sample(context.Context) (scalers.Sample, error) {
	return scalers.Sample{Values: []float64{s.md.Value}}, nil
}

func TestRegistry(t *testing.T) {
	reg := scalers.Registry{"fixed": scalers.Factory(newFixed), "other": scalers.Factory(newFixed)}

	s, err := reg.New("fixed", scalers.Config{TriggerName: "lag", Metadata: map[string]string{"value": "7"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Sample(t.Context())
	if err != nil || len(got.Values) != 1 || got.Values[0] != 7 {
		t.Errorf("Sample() = %v, %v; want [7]", got, err)
	}
	if m := s.Metrics(); len(m) != 1 || m[0].Name != "" || m[0].Target != 5 {
		t.Errorf("Metrics() = %+v, want lag with the default threshold 5", m)
	}

	_, err = reg.New("kafak", scalers.Config{TriggerName: "lag"})
	if !errors.Is(err, scalers.ErrUnknownType) || !strings.Contains(err.Error(), `trigger "lag": unknown trigger type "kafak"; known types: fixed, other`) {
		t.Errorf("unknown type: %v", err)
	}

	_, err = reg.New("fixed", scalers.Config{TriggerName: "lag", Metadata: map[string]string{"value": "x", "treshold": "1"}})
	var fe *scalers.FieldError
	if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), `trigger "lag" (fixed): treshold: unknown key (did you mean "threshold"?)`) ||
		!strings.Contains(err.Error(), `value: must be a number, got "x"`) {
		t.Errorf("bad metadata: %v", err)
	}
}

// A dead-letter reader comes from a type that implements DeadLetterType; other types, and unknown ones,
// are errors that list the types that can.
func TestRegistryDeadLetter(t *testing.T) {
	reg := scalers.Registry{"fixed": scalers.Factory(newFixed), "dlq": deadLetterType{}}
	d, err := reg.NewDeadLetter("dlq", scalers.Config{Metadata: map[string]string{"queue": "orders.dlq"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Read(t.Context())
	if err != nil || got != (scalers.DeadLetters{Depth: 3, InflowPerSecond: 0.5}) || d.Name() != `queue "orders.dlq"` {
		t.Errorf("reader %s read %+v, %v; want queue \"orders.dlq\", depth 3, inflow 0.5", d.Name(), got, err)
	}
	_, err = reg.NewDeadLetter("fixed", scalers.Config{})
	if !errors.Is(err, scalers.ErrNoDeadLetter) || !strings.Contains(err.Error(), `deadLetter.type "fixed"`) || !strings.HasSuffix(err.Error(), "types that can: dlq") {
		t.Errorf("type without dead letters: %v", err)
	}
	_, err = reg.NewDeadLetter("nope", scalers.Config{})
	if !errors.Is(err, scalers.ErrUnknownType) || !strings.Contains(err.Error(), `deadLetter.type "nope"`) {
		t.Errorf("unknown type: %v", err)
	}
	_, err = reg.NewDeadLetter("dlq", scalers.Config{Metadata: map[string]string{"queue": "q", "value": "1"}})
	var fe *scalers.FieldError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "deadLetter (dlq): value: not a key of a test dead-letter queue; it takes queue") {
		t.Errorf("bad metadata: %v", err)
	}
}

type deadLetterType struct{}

func (deadLetterType) New(scalers.Config) (scalers.Scaler, error) {
	return nil, errors.New("not a trigger")
}

func (deadLetterType) NewDeadLetter(cfg scalers.Config) (scalers.DeadLetterReader, error) {
	var md struct {
		Queue string `ebb:"queue"`
	}
	if err := scalers.ParseAs("a test dead-letter queue", cfg.Metadata, cfg.Auth, &md); err != nil {
		return nil, err
	}
	return deadLetterReader(md.Queue), nil
}

type deadLetterReader string

func (d deadLetterReader) Name() string { return fmt.Sprintf("queue %q", string(d)) }

func (deadLetterReader) Read(context.Context) (scalers.DeadLetters, error) {
	return scalers.DeadLetters{Depth: 3, InflowPerSecond: 0.5}, nil
}
