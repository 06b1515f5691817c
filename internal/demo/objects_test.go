package demo_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ebbscale/ebb/internal/demo"
)

// The samples decode strictly into the objects the docs describe.
func TestSamples(t *testing.T) {
	for name, want := range map[string][]string{
		"kafka.yaml":    {"Deployment default/orders-consumer", "ScaledConsumer default/orders"},
		"nats.yaml":     {"Deployment default/tasks-consumer", "ScaledConsumer default/tasks"},
		"rabbitmq.yaml": {"Secret default/rabbitmq-guest", "TriggerAuthentication default/rabbitmq-guest", "Deployment default/jobs-consumer", "ScaledConsumer default/jobs"},
	} {
		t.Run(name, func(t *testing.T) {
			objs, err := demo.Sample(name)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(names(objs), want); diff != "" {
				t.Errorf("objects (-got +want):\n%s", diff)
			}
		})
	}
	if _, err := demo.Sample("nope.yaml"); err == nil {
		t.Error("Sample(nope.yaml) succeeded")
	}
}

func names(objs []client.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetObjectKind().GroupVersionKind().Kind+" "+o.GetNamespace()+"/"+o.GetName())
	}
	return out
}
