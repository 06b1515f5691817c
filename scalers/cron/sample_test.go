package cron

import (
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/scalers"
)

// The sample in manifests/samples is a ScaledConsumer whose cron triggers parse.
func TestSampleManifest(t *testing.T) {
	b, err := os.ReadFile("../../manifests/samples/cron.yaml")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for doc := range strings.SplitSeq(string(b), "\n---\n") {
		if !strings.Contains(doc, "kind: ScaledConsumer") {
			continue
		}
		sc := &ebbv1.ScaledConsumer{}
		if err := yaml.UnmarshalStrict([]byte(doc), sc); err != nil {
			t.Fatal(err)
		}
		for _, tr := range sc.Spec.Triggers {
			if tr.Type != Type {
				continue
			}
			found++
			if _, err := NewType().New(scalers.Config{TriggerName: tr.Name, Metadata: tr.Metadata}); err != nil {
				t.Errorf("trigger %q: %v", tr.Name, err)
			}
		}
	}
	if found == 0 {
		t.Error("no cron trigger in manifests/samples/cron.yaml")
	}
}
