package controller

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

// FuzzResolveAuth resolves a fuzzed TriggerAuthentication against fuzzed Secrets, through an in-memory
// client (resolveAuth reads them through the client; the real API server's part is in the controller's
// tests against kube-apiserver). refs holds parameter<TAB>secret<TAB>key lines, secrets
// secret<TAB>key<TAB>value lines. Whatever the input: no panic; either every parameter is resolved to
// its Secret key's value and nothing else, or the error is an AuthenticationNotFound trigger error that
// names the TriggerAuthentication, a parameter and a Secret, and no Secret's value.
func FuzzResolveAuth(f *testing.F) {
	f.Add("password\trmq\tpassword\nusername\trmq\tuser", "rmq\tpassword\ts3cr3t-pw\nrmq\tuser\tguest")
	f.Add("password\trmq\tpassword", "rmq\tpasswd\ts3cr3t-pw")
	f.Add("password\tchaos/rmq-user\tpassword", "rmq\tpassword\ts3cr3t-pw")
	f.Add("host\tbroker\turl\nca\tbroker\tca.crt", "broker\turl\tamqps://u:p4ss@rabbit:5671/\nbroker\tca.crt\t-----BEGIN CERTIFICATE-----")
	f.Add("tls\tt\ttls", "t\ttls\t")
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		f.Fatal(err)
	}
	if err := ebbv1.AddToScheme(scheme); err != nil {
		f.Fatal(err)
	}
	const ns, name = "shop", "creds"
	f.Fuzz(func(t *testing.T, refs, secrets string) {
		ta := &ebbv1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		seen := map[string]bool{}
		for _, f := range tabbed(refs) {
			// Admission keeps parameters unique (listType=map) and non-empty.
			if f[0] == "" || f[1] == "" || seen[f[0]] {
				continue
			}
			seen[f[0]] = true
			ta.Spec.SecretTargetRef = append(ta.Spec.SecretTargetRef, ebbv1.SecretTargetRef{Parameter: f[0], Name: f[1], Key: f[2]})
		}
		data := map[string]map[string][]byte{}
		for _, f := range tabbed(secrets) {
			if f[0] == "" {
				continue
			}
			if data[f[0]] == nil {
				data[f[0]] = map[string][]byte{}
			}
			data[f[0]][f[1]] = []byte(f[2])
		}
		resolve := func(data map[string]map[string][]byte) (map[string]string, error) {
			objs := []client.Object{ta.DeepCopy()}
			for s, d := range data {
				objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: s}, Data: d})
			}
			c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
			r := &Reconciler{Client: c, APIReader: c}
			return r.resolveAuth(t.Context(), ns, &ebbv1.AuthenticationRef{Name: name})
		}
		params, err := resolve(data)
		if err == nil {
			if len(params) != len(ta.Spec.SecretTargetRef) {
				t.Fatalf("%d parameters resolved for %d references: %q", len(params), len(ta.Spec.SecretTargetRef), params)
			}
			for _, ref := range ta.Spec.SecretTargetRef {
				if v, ok := data[ref.Name][ref.Key]; !ok || params[ref.Parameter] != string(v) {
					t.Fatalf("parameter %q is %q, want Secret %q key %q (%q, present %t)", ref.Parameter, params[ref.Parameter], ref.Name, ref.Key, v, ok)
				}
			}
			return
		}
		var te *triggerError
		if !errors.As(err, &te) || (te.Reason != ReasonAuthenticationNotFound && te.Reason != ReasonInvalidAuthentication) {
			t.Fatalf("error %q (%T) is not an %s or %s trigger error", err, err, ReasonAuthenticationNotFound, ReasonInvalidAuthentication)
		}
		msg := err.Error()
		if !strings.Contains(msg, `"`+name+`"`) || !strings.Contains(msg, "parameter") || !strings.Contains(msg, "Secret") {
			t.Fatalf("error %q does not name the TriggerAuthentication, the parameter and the Secret", msg)
		}
		// No Secret's value in the message: compare with the message when every value is replaced. A value
		// of under four characters may be in a message by chance.
		const canary = "CANARY-VALUE"
		other := map[string]map[string][]byte{}
		for s, d := range data {
			other[s] = map[string][]byte{}
			for k := range d {
				other[s][k] = []byte(canary)
			}
		}
		_, err2 := resolve(other)
		for _, d := range data {
			for _, v := range d {
				if s := strings.TrimSpace(string(v)); len(s) >= 4 && !strings.Contains(canary, s) && strings.Count(msg, s) > strings.Count(errString(err2), s) {
					t.Fatalf("error %q carries a Secret's value %q", msg, s)
				}
			}
		}
	})
}

// tabbed splits lines into three tab-separated fields (missing ones empty).
func tabbed(s string) [][3]string {
	var out [][3]string
	for line := range strings.SplitSeq(s, "\n") {
		var f [3]string
		copy(f[:], strings.SplitN(line, "\t", 3))
		out = append(out, f)
	}
	return out
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
