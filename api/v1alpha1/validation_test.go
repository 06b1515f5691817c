package v1alpha1_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// cluster is the control plane the admission tests share, started by the first of them (cluster.Env).
var cluster = testenv.NewShared(localcluster.Options{})

func TestMain(m *testing.M) {
	code := m.Run()
	if err := cluster.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

const validSpec = `
scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: orders-consumer}
triggers:
- type: kafka
  metadata: {bootstrapServers: "kafka:9092", consumerGroup: orders, topic: orders}
`

// scaledConsumer builds a ScaledConsumer from a spec in YAML, so tests can send what a typed struct cannot
// express (missing required fields, strings where durations belong).
func scaledConsumer(t *testing.T, name, spec string) *unstructured.Unstructured {
	t.Helper()
	var s map[string]any
	if err := yaml.Unmarshal([]byte(spec), &s); err != nil {
		t.Fatalf("bad test spec: %v", err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": s}}
	u.SetAPIVersion(ebbv1.GroupVersion.String())
	u.SetKind("ScaledConsumer")
	u.SetNamespace("default")
	u.SetName(name)
	return u
}

// checkAdmission checks a create's outcome: accepted when wantField is empty, else refused as Invalid or
// BadRequest with an error that names wantField and says wantMessage.
func checkAdmission(t *testing.T, err error, wantField, wantMessage string) {
	t.Helper()
	if wantField == "" {
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("create succeeded, want an error naming %s", wantField)
	}
	if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
		t.Fatalf("create: %v, want an Invalid or BadRequest error", err)
	}
	for _, want := range []string{wantField, wantMessage} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestScaledConsumerAdmission(t *testing.T) {
	env := cluster.Env(t)
	tests := []struct {
		name string
		spec string
		// wantField and wantMessage must both appear in the API server's error; empty means accepted.
		wantField, wantMessage string
	}{
		{name: "valid", spec: validSpec},
		{name: "valid-all-fields", spec: `
scaleTargetRef: {apiVersion: apps/v1, kind: StatefulSet, name: s}
minReplicas: 2
maxReplicas: 10
idleReplicas: 1
pollingInterval: 1500ms
cooldownPeriod: 1m30s
initialCooldownPeriod: "0"
fallback: {failureThreshold: 5, replicas: 10}
hpa: {name: custom-hpa, behavior: {scaleDown: {stabilizationWindowSeconds: 0}}}
triggers:
- {name: lag, type: kafka, metadata: {a: b}, authenticationRef: {name: creds}}
- {name: depth, type: kafka}
- {type: rabbitmq}
`},
		{name: "max-below-min", spec: validSpec + "minReplicas: 5\nmaxReplicas: 4\n",
			wantField: "spec.maxReplicas", wantMessage: "maxReplicas must be greater than or equal to minReplicas"},
		{name: "max-zero", spec: validSpec + "maxReplicas: 0\n",
			wantField: "spec.maxReplicas", wantMessage: "should be greater than or equal to 1"},
		{name: "min-negative", spec: validSpec + "minReplicas: -1\n",
			wantField: "spec.minReplicas", wantMessage: "should be greater than or equal to 0"},
		{name: "idle-not-below-min", spec: validSpec + "minReplicas: 2\nidleReplicas: 2\n",
			wantField: "spec.idleReplicas", wantMessage: "idleReplicas must be less than minReplicas"},
		{name: "idle-with-default-min", spec: validSpec + "idleReplicas: 0\n",
			wantField: "spec.idleReplicas", wantMessage: "idleReplicas must be less than minReplicas"},
		{name: "no-triggers", spec: "scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: x}\n",
			wantField: "spec.triggers", wantMessage: "Required value"},
		{name: "empty-triggers", spec: "scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: x}\ntriggers: []\n",
			wantField: "spec.triggers", wantMessage: "should have at least 1 items"},
		{name: "duplicate-trigger-names", spec: `
scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: x}
triggers: [{name: a, type: kafka}, {name: a, type: rabbitmq}]
`, wantField: "spec.triggers", wantMessage: "trigger names must be unique"},
		{name: "duplicate-default-names", spec: `
scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: x}
triggers: [{type: kafka}, {type: kafka}]
`, wantField: "spec.triggers", wantMessage: "trigger names must be unique"},
		{name: "name-equals-other-type", spec: `
scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: x}
triggers: [{name: kafka, type: rabbitmq}, {type: kafka}]
`, wantField: "spec.triggers", wantMessage: "trigger names must be unique"},
		{name: "trigger-without-type", spec: `
scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: x}
triggers: [{name: a}]
`, wantField: "spec.triggers[0].type", wantMessage: "Required value"},
		{name: "trigger-name-uppercase", spec: `
scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: x}
triggers: [{name: Lag, type: kafka}]
`, wantField: "spec.triggers[0].name", wantMessage: "should match"},
		{name: "auth-ref-without-name", spec: `
scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: x}
triggers: [{type: kafka, authenticationRef: {}}]
`, wantField: "spec.triggers[0].authenticationRef.name", wantMessage: "Required value"},
		{name: "polling-zero", spec: validSpec + "pollingInterval: 0s\n",
			wantField: "spec.pollingInterval", wantMessage: "pollingInterval must be at least 100ms"},
		{name: "polling-too-fast", spec: validSpec + "pollingInterval: 10ms\n",
			wantField: "spec.pollingInterval", wantMessage: "pollingInterval must be at least 100ms"},
		{name: "polling-negative", spec: validSpec + "pollingInterval: -5s\n",
			wantField: "spec.pollingInterval", wantMessage: "should match"},
		{name: "polling-not-a-duration", spec: validSpec + "pollingInterval: fast\n",
			wantField: "spec.pollingInterval", wantMessage: "should match"},
		{name: "polling-days", spec: validSpec + "pollingInterval: 1d\n",
			wantField: "spec.pollingInterval", wantMessage: "should match"},
		{name: "cooldown-zero", spec: validSpec + "cooldownPeriod: 0ms\n",
			wantField: "spec.cooldownPeriod", wantMessage: "cooldownPeriod must be positive"},
		{name: "initial-cooldown-negative", spec: validSpec + "initialCooldownPeriod: -1s\n",
			wantField: "spec.initialCooldownPeriod", wantMessage: "should match"},
		{name: "target-without-name", spec: `
scaleTargetRef: {apiVersion: apps/v1, kind: Deployment}
triggers: [{type: kafka}]
`, wantField: "spec.scaleTargetRef.name", wantMessage: "Required value"},
		{name: "target-without-kind", spec: `
scaleTargetRef: {apiVersion: apps/v1, name: x}
triggers: [{type: kafka}]
`, wantField: "spec.scaleTargetRef.kind", wantMessage: "Required value"},
		{name: "target-empty-api-version", spec: `
scaleTargetRef: {apiVersion: "", kind: Deployment, name: x}
triggers: [{type: kafka}]
`, wantField: "spec.scaleTargetRef.apiVersion", wantMessage: "should be at least 1 chars long"},
		{name: "no-target", spec: "triggers: [{type: kafka}]\n",
			wantField: "spec.scaleTargetRef", wantMessage: "Required value"},
		{name: "fallback-above-max", spec: validSpec + "maxReplicas: 3\nfallback: {replicas: 4}\n",
			wantField: "spec.fallback.replicas", wantMessage: "fallback.replicas must not exceed maxReplicas"},
		{name: "fallback-threshold-zero", spec: validSpec + "fallback: {failureThreshold: 0, replicas: 1}\n",
			wantField: "spec.fallback.failureThreshold", wantMessage: "should be greater than or equal to 1"},
		{name: "fallback-without-replicas", spec: validSpec + "fallback: {failureThreshold: 2}\n",
			wantField: "spec.fallback.replicas", wantMessage: "Required value"},
		{name: "hpa-name-invalid", spec: validSpec + "hpa: {name: Not_A_Name}\n",
			wantField: "spec.hpa.name", wantMessage: "should match"},
		{name: "dead-letter", spec: validSpec + "deadLetter: {type: rabbitmq, metadata: {queueName: q.dlq}, maxInflowPerMinute: 30, maxRatio: \"0.5\", window: 2m}\n"},
		{name: "dead-letter-ratio-milli", spec: validSpec + "deadLetter: {type: kafka, maxRatio: 250m}\n"},
		{name: "dead-letter-without-limit", spec: validSpec + "deadLetter: {type: rabbitmq}\n",
			wantField: "spec.deadLetter", wantMessage: "set maxInflowPerMinute, maxRatio or both"},
		{name: "dead-letter-ratio-one", spec: validSpec + "deadLetter: {type: rabbitmq, maxRatio: 1}\n",
			wantField: "spec.deadLetter.maxRatio", wantMessage: "above 0 and below 1"},
		{name: "dead-letter-ratio-zero", spec: validSpec + "deadLetter: {type: rabbitmq, maxRatio: \"0\"}\n",
			wantField: "spec.deadLetter.maxRatio", wantMessage: "above 0 and below 1"},
		{name: "dead-letter-inflow-negative", spec: validSpec + "deadLetter: {type: rabbitmq, maxInflowPerMinute: -5}\n",
			wantField: "spec.deadLetter.maxInflowPerMinute", wantMessage: "must not be negative"},
		{name: "dead-letter-window-short", spec: validSpec + "deadLetter: {type: rabbitmq, maxInflowPerMinute: 5, window: 500ms}\n",
			wantField: "spec.deadLetter.window", wantMessage: "window must be at least 1s"},
		{name: "guard-stalled-negative", spec: validSpec + "guard: {stalledAfterPolls: -1}\n",
			wantField: "spec.guard.stalledAfterPolls", wantMessage: "should be greater than or equal to 0"},
		{name: "unknown-field", spec: validSpec + "maxReplica: 3\n",
			wantField: "spec.maxReplica", wantMessage: "unknown field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obj := scaledConsumer(t, "sc-"+tc.name, tc.spec)
			err := env.Client.Create(t.Context(), obj, client.FieldValidation(metav1.FieldValidationStrict))
			checkAdmission(t, err, tc.wantField, tc.wantMessage)
		})
	}
}

func TestScaledConsumerDefaults(t *testing.T) {
	env := cluster.Env(t)
	obj := scaledConsumer(t, "defaults", validSpec)
	if err := env.Client.Create(t.Context(), obj); err != nil {
		t.Fatalf("create: %v", err)
	}
	var got ebbv1.ScaledConsumer
	if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(obj), &got); err != nil {
		t.Fatalf("get: %v", err)
	}
	type defaults struct {
		Min, Max                    int32
		Polling, Cooldown, InitCool time.Duration
	}
	want := defaults{Min: 0, Max: 100, Polling: 5 * time.Second, Cooldown: 300 * time.Second, InitCool: 0}
	s := got.Spec
	if s.MinReplicas == nil || s.MaxReplicas == nil || s.PollingInterval == nil || s.CooldownPeriod == nil || s.InitialCooldownPeriod == nil {
		t.Fatalf("defaults not applied: %+v", s)
	}
	gotD := defaults{*s.MinReplicas, *s.MaxReplicas, s.PollingInterval.Duration, s.CooldownPeriod.Duration, s.InitialCooldownPeriod.Duration}
	if diff := cmp.Diff(gotD, want); diff != "" {
		t.Errorf("defaults (-got +want):\n%s", diff)
	}
	if got.Spec.Triggers[0].TriggerName() != "kafka" {
		t.Errorf("TriggerName() = %q, want the type when no name is set", got.Spec.Triggers[0].TriggerName())
	}

	fb := scaledConsumer(t, "fallback-defaults", validSpec+"fallback: {replicas: 2}\n")
	if err := env.Client.Create(t.Context(), fb); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(fb), &got); err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Spec.Fallback.FailureThreshold != 3 {
		t.Errorf("fallback.failureThreshold = %d, want default 3", got.Spec.Fallback.FailureThreshold)
	}
}

func TestTriggerAuthenticationAdmission(t *testing.T) {
	env := cluster.Env(t)
	tests := []struct {
		name, spec             string
		wantField, wantMessage string
	}{
		{name: "valid", spec: "secretTargetRef: [{parameter: password, name: kafka-creds, key: password}]"},
		{name: "empty", spec: "secretTargetRef: []",
			wantField: "spec.secretTargetRef", wantMessage: "should have at least 1 items"},
		{name: "missing-key", spec: "secretTargetRef: [{parameter: password, name: kafka-creds}]",
			wantField: "spec.secretTargetRef[0].key", wantMessage: "Required value"},
		{name: "duplicate-parameter", spec: "secretTargetRef: [{parameter: p, name: a, key: k}, {parameter: p, name: b, key: k}]",
			wantField: "spec.secretTargetRef[1]", wantMessage: "Duplicate value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s map[string]any
			if err := yaml.Unmarshal([]byte(tc.spec), &s); err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{Object: map[string]any{"spec": s}}
			u.SetAPIVersion(ebbv1.GroupVersion.String())
			u.SetKind("TriggerAuthentication")
			u.SetNamespace("default")
			u.SetName("ta-" + tc.name)
			err := env.Client.Create(t.Context(), u, client.FieldValidation(metav1.FieldValidationStrict))
			checkAdmission(t, err, tc.wantField, tc.wantMessage)
		})
	}
}
