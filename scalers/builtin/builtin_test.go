package builtin_test

import (
	"slices"
	"testing"

	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/builtin"
)

// Every trigger type the binary knows has generated parameter docs, and none is documented that it does
// not know.
func TestTriggerParamsMatchRegistry(t *testing.T) {
	params, err := builtin.Params()
	if err != nil {
		t.Fatal(err)
	}
	reg := builtin.Registry(builtin.Options{})
	for typ := range reg {
		if len(params[typ]) == 0 {
			t.Errorf("trigger type %q has no parameter docs", typ)
		}
	}
	for typ := range params {
		if _, ok := reg[typ]; !ok {
			t.Errorf("parameter docs for %q, which the registry does not know", typ)
		}
	}
}

// The table is sorted, its names unique, every row complete, and the broker types watch dead letters.
func TestTable(t *testing.T) {
	var names []string
	for _, typ := range builtin.Types() {
		if typ.Name == "" || typ.Doc == "" || typ.Params == nil || typ.New == nil {
			t.Errorf("incomplete row %+v", typ)
		}
		names = append(names, typ.Name)
	}
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Errorf("names %q are not sorted and unique", names)
	}
	reg := builtin.Registry(builtin.Options{})
	if got := reg.DeadLetterTypes(); !slices.Equal(got, []string{"kafka", "nats-jetstream", "rabbitmq"}) {
		t.Errorf("dead-letter types = %q, want kafka, nats-jetstream and rabbitmq", got)
	}
}

// Options.ObserveRequests is asked for an observer per trigger type, by the type's name.
func TestObserveRequestsPerType(t *testing.T) {
	var asked []string
	builtin.Registry(builtin.Options{ObserveRequests: func(typ string) scalers.RequestObserver {
		asked = append(asked, typ)
		return nil
	}})
	if !slices.Equal(asked, []string{"kafka", "nats-jetstream", "rabbitmq"}) {
		t.Errorf("observers asked for %q, want kafka, nats-jetstream and rabbitmq", asked)
	}
}
