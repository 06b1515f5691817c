package v1alpha1_test

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers/builtin"
)

// admissionCase is one malformed object. Each is either refused by the API server, with an error that
// names wantField, or accepted and then reported by ebb: Ready=False with wantReason and a Warning event
// with that reason whose note says wantNote. Nothing is accepted silently.
type admissionCase struct {
	name string
	// kind is ScaledConsumer when empty, or TriggerAuthentication.
	kind string
	// objName is the object's name; default: the case's name.
	objName string
	// spec is the object's spec in YAML.
	spec        string
	annotations map[string]string
	// needsTarget creates the Deployment the case's ScaledConsumer scales.
	needsTarget bool
	// wantField and wantMessage must both appear in the API server's error.
	wantField, wantMessage string
	// wantReason and wantNote: the Ready=False reason and what its Warning event's note says.
	wantReason, wantNote string
}

// TestAdmissionTable applies malformed ScaledConsumers and TriggerAuthentications to a real API server with
// the ebb binary running as the controller, and checks that each is refused naming its field or reported
// on the object, and that ebb neither panics nor exits.
func TestAdmissionTable(t *testing.T) {
	env := cluster.Env(t)
	ns := testenv.UniqueName(t, "adm")
	c := env.Client
	ctx := t.Context()
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "creds"}, Data: map[string][]byte{"password": []byte("s3cret")}},
	} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	for name, ref := range map[string]string{
		"no-secret":   "{parameter: password, name: absent, key: password}",
		"missing-key": "{parameter: password, name: creds, key: nokey}",
		"wrong-param": "{parameter: passwd, name: creds, key: password}",
		"good":        "{parameter: password, name: creds, key: password}",
	} {
		if err := c.Create(ctx, object(t, ns, "TriggerAuthentication", name, "secretTargetRef: ["+ref+"]")); err != nil {
			t.Fatal(err)
		}
	}
	ebb := testenv.StartEbb(t, "controller", "--kubeconfig="+env.Kubeconfig)

	cases := admissionCases()
	if len(cases) < 100 {
		t.Fatalf("only %d cases, want at least 100", len(cases))
	}
	var accepted []admissionCase
	for _, tc := range cases {
		kind := tc.kind
		if kind == "" {
			kind = "ScaledConsumer"
		}
		name := tc.objName
		if name == "" {
			name = tc.name
		}
		if tc.needsTarget {
			if err := c.Create(ctx, testenv.Deployment(ns, name, 1)); err != nil {
				t.Fatal(err)
			}
		}
		obj := object(t, ns, kind, name, strings.ReplaceAll(tc.spec, targetPlaceholder, name))
		obj.SetAnnotations(tc.annotations)
		err := c.Create(ctx, obj, client.FieldValidation(metav1.FieldValidationStrict))
		ok := t.Run(tc.name, func(t *testing.T) {
			if tc.wantReason != "" {
				if err != nil {
					t.Fatalf("create: %v; want it accepted and then reported as %s", err, tc.wantReason)
				}
				return
			}
			checkAdmission(t, err, tc.wantField, tc.wantMessage)
			// A rule that fails to evaluate says so instead of what is wrong.
			if msg := err.Error(); strings.Contains(msg, "conversion error") || strings.Contains(msg, "no such key") {
				t.Errorf("a rule failed to evaluate: %v", err)
			}
			t.Logf("refused: %v", err)
		})
		if ok && tc.wantReason != "" {
			accepted = append(accepted, tc)
		}
	}
	// The accepted ones are reported in parallel: the group ends when all are.
	t.Run("reported", func(t *testing.T) {
		for _, tc := range accepted {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				waitNotReady(t, c, ns, tc)
			})
		}
	})

	// ebb is still up, served every reconcile without a panic, and never logged one.
	if resp, err := http.Get(ebb.HealthURL + "/healthz"); err != nil {
		t.Errorf("ebb's /healthz after the run: %v (did it exit?)", err)
	} else {
		_ = resp.Body.Close()
	}
	if got := scrapeCounter(t, ebb.MetricsURL, "controller_runtime_reconcile_panics_total"); got != 0 {
		t.Errorf("controller_runtime_reconcile_panics_total = %v, want 0", got)
	}
	if logs := ebb.Logs(); strings.Contains(logs, "panic") {
		t.Errorf("ebb logged a panic:\n%s", logs)
	}
}

// object builds an object of ebb's kinds from a spec in YAML.
func object(t *testing.T, ns, kind, name, spec string) *unstructured.Unstructured {
	t.Helper()
	var s map[string]any
	if err := yaml.Unmarshal([]byte(spec), &s); err != nil {
		t.Fatalf("bad test spec: %v", err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": s}}
	u.SetAPIVersion(ebbv1.GroupVersion.String())
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

// waitNotReady waits until ebb reports the case's ScaledConsumer as Ready=False with the case's reason, and
// for the Warning event that says so.
func waitNotReady(t *testing.T, c client.Client, ns string, tc admissionCase) {
	t.Helper()
	name := tc.objName
	if name == "" {
		name = tc.name
	}
	deadline := time.Now().Add(60 * time.Second)
	last := "no status yet"
	for time.Now().Before(deadline) {
		var sc ebbv1.ScaledConsumer
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &sc); err != nil {
			t.Fatal(err)
		}
		cond := meta.FindStatusCondition(sc.Status.Conditions, ebbv1.ConditionReady)
		if cond != nil {
			last = fmt.Sprintf("Ready=%s %s: %s", cond.Status, cond.Reason, cond.Message)
		}
		if cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == tc.wantReason {
			if !strings.Contains(cond.Message, tc.wantNote) {
				t.Errorf("Ready message %q does not say %q", cond.Message, tc.wantNote)
			}
			note, found := warningEvent(t, c, ns, name, tc.wantReason)
			if found {
				if !strings.Contains(note, tc.wantNote) {
					t.Errorf("event note %q does not say %q", note, tc.wantNote)
				}
				return
			}
			last += "; no Warning event yet"
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("after 60s: %s; want Ready=False %s and a Warning event saying %q", last, tc.wantReason, tc.wantNote)
}

// warningEvent returns the note of a Warning event with reason about the ScaledConsumer name.
func warningEvent(t *testing.T, c client.Client, ns, name, reason string) (string, bool) {
	t.Helper()
	var list eventsv1.EventList
	if err := c.List(t.Context(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.Regarding.Kind == "ScaledConsumer" && e.Regarding.Name == name && e.Reason == reason && e.Type == corev1.EventTypeWarning {
			return e.Note, true
		}
	}
	return "", false
}

// scrapeCounter sums a counter's series on a Prometheus text endpoint (0 when absent).
func scrapeCounter(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("scraping %s: %v", base, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scraping %s: %v", base, err)
	}
	sum := 0.0
	for line := range strings.Lines(string(body)) {
		if !strings.HasPrefix(line, name) || strings.HasPrefix(line, "#") {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(strings.TrimSpace(line[strings.LastIndex(line, " ")+1:]), &v); err == nil {
			sum += v
		}
	}
	return sum
}

// TestMetadataKeysAdmission checks the other side of the secret-key rule: every key a trigger type of the
// binary takes in metadata passes admission (its value is the parser's business), so the CRD's list of
// secret keys refuses nothing a parser accepts.
func TestMetadataKeysAdmission(t *testing.T) {
	env := cluster.Env(t)
	params, err := builtin.Params()
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range slices.Sorted(maps.Keys(params)) {
		for _, p := range params[typ] {
			if p.Secret {
				continue
			}
			name := strings.ToLower(fmt.Sprintf("keys-%s-%s", typ, p.Name))
			t.Run(name, func(t *testing.T) {
				spec := strings.ReplaceAll(trigger(typ, fmt.Sprintf("{%s: x}", p.Name)), targetPlaceholder, name)
				obj := object(t, "default", "ScaledConsumer", name, spec)
				checkAdmission(t, env.Client.Create(t.Context(), obj), "", "")
			})
		}
	}
}
