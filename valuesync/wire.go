package valuesync

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/ebbscale/ebb/metricstore"
)

// Path is the URL path of the values endpoint. Authorization is for this non-resource URL, verb get.
const Path = "/ebb/v1/values"

// Snapshot is the body of a values response: the whole store of the serving process.
type Snapshot struct {
	// Instance identifies the serving store; revisions compare only within one instance (a restarted or
	// new leader starts counting again).
	Instance string `json:"instance"`
	// Revision is the store's revision when the snapshot was taken.
	Revision uint64 `json:"revision"`
	// Entries are sorted by namespace, ScaledConsumer and metric.
	Entries []Entry `json:"entries"`
}

// Entry is one metricstore item on the wire.
type Entry struct {
	Namespace      string    `json:"namespace"`
	ScaledConsumer string    `json:"scaledConsumer"`
	Metric         string    `json:"metric"`
	Value          Float     `json:"value"`
	Time           time.Time `json:"time"`
	// StaleAfter is a Go duration ("15s"); absent means never stale.
	StaleAfter Duration `json:"staleAfter,omitempty"`
	Fallback   *Float   `json:"fallback,omitempty"`
}

// Float is a float64 that survives JSON whatever its value: NaN and the infinities, which JSON numbers
// cannot carry, travel as the strings "NaN", "+Inf" and "-Inf".
type Float float64

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *Float) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("value %q: %w", s, err)
		}
		*f = Float(v)
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("value %s: %w", b, err)
	}
	*f = Float(v)
	return nil
}

// Duration is a time.Duration written as a Go duration string.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// toWire converts store items for a Snapshot.
func toWire(items []metricstore.Item) []Entry {
	out := make([]Entry, len(items))
	for i, it := range items {
		out[i] = Entry{
			Namespace:      it.Key.Namespace,
			ScaledConsumer: it.Key.ScaledConsumer,
			Metric:         it.Key.Metric,
			Value:          Float(it.Entry.Value),
			Time:           it.Entry.Time,
			StaleAfter:     Duration(it.Entry.StaleAfter),
		}
		if it.Entry.Fallback != nil {
			fb := Float(*it.Entry.Fallback)
			out[i].Fallback = &fb
		}
	}
	return out
}

// Items converts the snapshot's entries back to store items.
func (s *Snapshot) Items() []metricstore.Item {
	out := make([]metricstore.Item, len(s.Entries))
	for i, e := range s.Entries {
		out[i] = metricstore.Item{
			Key:   metricstore.Key{Namespace: e.Namespace, ScaledConsumer: e.ScaledConsumer, Metric: e.Metric},
			Entry: metricstore.Entry{Value: float64(e.Value), Time: e.Time, StaleAfter: time.Duration(e.StaleAfter)},
		}
		if e.Fallback != nil {
			fb := float64(*e.Fallback)
			out[i].Entry.Fallback = &fb
		}
	}
	return out
}
