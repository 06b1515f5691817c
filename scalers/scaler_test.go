package scalers_test

import (
	"context"
	"errors"
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
	reg := scalers.Registry{"fixed": newFixed, "other": newFixed}

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
