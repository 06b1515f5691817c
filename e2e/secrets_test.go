package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/metricsapi"
)

// A RabbitMQ password (in an amqp:// URL) and a NATS password, each wrong and then right, reach ebb only
// through a TriggerAuthentication, and appear nowhere a person or a scraper reads: not in ebb's log at
// the highest verbosity (client-go logs request and response bodies from -v=8), not in any Event, not in
// the status of any ScaledConsumer, not in the TriggerAuthentications, not in the HPAs, not on /metrics.
// Each password is looked for as it is, URL-escaped, and base64-encoded at every alignment (the form a
// Secret's data takes in an API response a client logs). The Secrets are written as `kubectl apply`
// writes them, with a last-applied-configuration annotation that holds the data, so a watch or log of
// Secret metadata would carry it too.
func TestSecretsStayOut(t *testing.T) {
	mgmt, err := url.Parse(testenv.RabbitMQHTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	conn := testenv.DialRabbitMQ(t)
	testenv.RequireTCP(t, "RabbitMQ management API", mgmt.Host, "hack/ensure-rabbitmq.sh")
	right, wrong := canary(t, "S3cr3t-ebb-canary-"), canary(t, "S3cr3t-ebb-canary-wrong-")

	// A RabbitMQ user whose password is the canary, allowed on the default vhost, and a queue for it.
	user := testenv.UniqueName(t, "ebb-canary")
	testenv.RabbitMQAPI(t, mgmt, http.MethodPut, "/api/users/"+url.PathEscape(user), map[string]string{"password": right, "tags": ""}, nil)
	t.Cleanup(func() { testenv.RabbitMQAPI(t, mgmt, http.MethodDelete, "/api/users/"+url.PathEscape(user), nil, nil) })
	testenv.RabbitMQAPI(t, mgmt, http.MethodPut, "/api/permissions/%2F/"+url.PathEscape(user), map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, nil)
	queue := user + "-jobs"
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = ch.QueueDelete(queue, false, false, false) })
	amqpURL, err := url.Parse(testenv.RabbitMQURL)
	if err != nil {
		t.Fatal(err)
	}
	host := func(password string) string {
		u := *amqpURL
		u.User = url.UserPassword(user, password)
		return u.String()
	}

	// A NATS server of the test's own that lets in one user, whose password is another canary.
	natsRight, natsWrong := canary(t, "S3cr3t-ebb-canary-nats-"), canary(t, "S3cr3t-ebb-canary-nats-wrong-")
	natsSrv := testenv.StartNATS(t, testenv.NATSOptions{Args: []string{"--user", "ebb", "--pass", natsRight}})
	natsStream(t, natsSrv.URL, "ebb", natsRight)

	brokers := []struct {
		name    string
		data    func(password string) map[string]string
		refs    []ebbv1.SecretTargetRef
		trigger ebbv1.Trigger
		right   string
		wrong   string
	}{
		{
			name: "rabbit", right: right, wrong: wrong,
			data: func(pw string) map[string]string { return map[string]string{"host": host(pw)} },
			refs: []ebbv1.SecretTargetRef{{Parameter: "host", Name: "rabbit", Key: "host"}},
			trigger: ebbv1.Trigger{Name: "jobs", Type: "rabbitmq", Metadata: map[string]string{"queueName": queue, "mode": "QueueLength", "value": "5"},
				AuthenticationRef: &ebbv1.AuthenticationRef{Name: "rabbit"}},
		},
		{
			name: "nats", right: natsRight, wrong: natsWrong,
			data: func(pw string) map[string]string { return map[string]string{"password": pw} },
			refs: []ebbv1.SecretTargetRef{{Parameter: "password", Name: "nats", Key: "password"}},
			trigger: ebbv1.Trigger{Name: "pending", Type: "nats-jetstream", Metadata: map[string]string{
				"natsServerURL": natsSrv.URL, "stream": "orders", "consumer": "workers", "lagThreshold": "10", "username": "ebb"},
				AuthenticationRef: &ebbv1.AuthenticationRef{Name: "nats"}},
		},
	}

	env := testenv.Start(t, localcluster.Options{ControllerManager: true})
	ctx, c := t.Context(), env.Client
	ns := testenv.UniqueName(t, "secrets")
	create(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	for _, b := range brokers {
		create(t, c, testenv.Deployment(ns, b.name, 1))
		create(t, c, appliedSecret(t, ns, b.name, b.data(b.wrong)))
		create(t, c, &ebbv1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: b.name, Namespace: ns}, Spec: ebbv1.TriggerAuthenticationSpec{SecretTargetRef: b.refs}})
		create(t, c, &ebbv1.ScaledConsumer{
			ObjectMeta: metav1.ObjectMeta{Name: b.name, Namespace: ns},
			Spec: ebbv1.ScaledConsumerSpec{
				ScaleTargetRef:  ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: b.name},
				MinReplicas:     ptr(int32(1)),
				PollingInterval: &metav1.Duration{Duration: time.Second},
				Triggers:        []ebbv1.Trigger{b.trigger},
			},
		})
	}
	// ebb starts once the objects exist, so its first list of Secrets (metadata) holds them too.
	port := testenv.FreePort(t)
	ebb := testenv.StartEbb(t, append([]string{"run", "--kubeconfig=" + env.Kubeconfig, "-v=10"}, metricsapi.LocalFlags(port, t.TempDir(), env.Kubeconfig)...)...)
	if err := env.RegisterExternalMetrics(ctx, port); err != nil {
		t.Fatal(err)
	}
	trigger := func(name string) ebbv1.TriggerStatus {
		sc := &ebbv1.ScaledConsumer{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, sc); err != nil {
			t.Fatal(err)
		}
		if len(sc.Status.Triggers) == 0 {
			return ebbv1.TriggerStatus{}
		}
		return sc.Status.Triggers[0]
	}
	for _, b := range brokers {
		waitUntil(t, 60*time.Second, b.name+": authentication error", func() (bool, string) {
			tr := trigger(b.name)
			return strings.Contains(tr.LastError, "authentication failed"), fmt.Sprintf("%s: trigger status %+v, want an authentication error", b.name, tr)
		})
	}

	// The right passwords, in the Secrets only.
	for _, b := range brokers {
		s := &corev1.Secret{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: b.name}, s); err != nil {
			t.Fatal(err)
		}
		fixed := appliedSecret(t, ns, b.name, b.data(b.right))
		s.Annotations, s.Data = fixed.Annotations, map[string][]byte{}
		for k, v := range fixed.StringData {
			s.Data[k] = []byte(v)
		}
		if err := c.Update(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range brokers {
		waitUntil(t, 60*time.Second, b.name+": reads with the right password", func() (bool, string) {
			tr := trigger(b.name)
			return tr.LastError == "" && tr.Value == "0", fmt.Sprintf("%s: trigger status %+v, want value 0 and no error", b.name, tr)
		})
		// The HPA reads the value through the metrics API.
		waitUntil(t, 60*time.Second, b.name+": HPA reads the metric", func() (bool, string) {
			hpa := &autoscalingv2.HorizontalPodAutoscaler{}
			if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "ebb-" + b.name}, hpa); err != nil {
				return false, err.Error()
			}
			return len(hpa.Status.CurrentMetrics) > 0, fmt.Sprintf("HPA %s status %+v, want current metrics", hpa.Name, hpa.Status)
		})
	}

	places := map[string]string{
		"ebb's log":                      ebb.Logs(),
		"/metrics":                       httpGet(t, ebb.MetricsURL+"/metrics"),
		"events (events.k8s.io)":         dump(t, c, &eventsv1.EventList{}),
		"events (core/v1)":               dump(t, c, &corev1.EventList{}),
		"ScaledConsumers":                dump(t, c, &ebbv1.ScaledConsumerList{}),
		"TriggerAuthentications":         dump(t, c, &ebbv1.TriggerAuthenticationList{}),
		"HorizontalPodAutoscalers":       dump(t, c, &autoscalingv2.HorizontalPodAutoscalerList{}),
		"the Secrets (positive control)": dump(t, c, &corev1.SecretList{}),
	}
	if !strings.Contains(places["ebb's log"], "Response Body") {
		t.Errorf("ebb's log has no response bodies: is -v=10 in effect?")
	}
	for _, pw := range []string{right, wrong, natsRight, natsWrong} {
		for place, text := range places {
			form, found := findSecret(text, pw)
			control := strings.HasSuffix(place, "(positive control)")
			switch {
			case control && (pw == right || pw == natsRight) && !found:
				t.Errorf("the search does not find the password (%s) in %s, where it is", pw, place)
			case !control && found:
				t.Errorf("%s holds the password %s (as %s)", place, pw, form)
			}
		}
	}
}

// canary is prefix and random hex, a string nothing else contains.
func canary(t *testing.T, prefix string) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// findSecret says whether text holds s as it is, URL-escaped, or base64-encoded (at any of the three
// alignments s can have inside a longer encoded value), also inside a hex dump (how client-go logs a
// protobuf body), and in which form.
func findSecret(text, s string) (string, bool) {
	text += "\n" + undump(text)
	forms := map[string]string{"plain": s, "url-escaped": url.QueryEscape(s)}
	for k := range 3 {
		enc := base64.StdEncoding.EncodeToString(append(bytes.Repeat([]byte{0}, k), s...))
		// Drop the characters that mix in the bytes before s, and the last block, which mixes in those after.
		skip := (k*8 + 5) / 6
		forms[fmt.Sprintf("base64 at offset %d", k)] = enc[skip : len(enc)-4]
	}
	for name, f := range forms {
		if strings.Contains(text, f) {
			return name, true
		}
	}
	return "", false
}

// appliedSecret is a Secret as `kubectl apply` leaves it: its data, and the same in the
// last-applied-configuration annotation.
func appliedSecret(t *testing.T, ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	s.Annotations = map[string]string{corev1.LastAppliedConfigAnnotation: string(raw)}
	return s
}

func create(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(t.Context(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// dump lists every object of list's kind in every namespace, as JSON.
func dump(t *testing.T, c client.Client, list client.ObjectList) string {
	t.Helper()
	if err := c.List(t.Context(), list); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func httpGet(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u) //nolint:noctx // a test's one request to a local process
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// natsStream creates the stream "orders" and its durable consumer "workers" on the server at natsURL.
func natsStream(t *testing.T, natsURL, user, password string) {
	t.Helper()
	nc, err := nats.Connect(natsURL, nats.UserInfo(user, password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "orders", Subjects: []string{"orders.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateConsumer(ctx, "orders", jetstream.ConsumerConfig{Durable: "workers", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
}

// dumpLine is a line of hex.Dump: offset, up to 16 bytes in hex, and their text.
var dumpLine = regexp.MustCompile(`(?m)^\s*[0-9a-f]{8}  ((?:[0-9a-f]{2} {1,2})+) *\|`)

// undump returns the bytes of every hex dump in text, each dump's lines joined.
func undump(text string) string {
	var out []byte
	for _, m := range dumpLine.FindAllStringSubmatch(text, -1) {
		b, err := hex.DecodeString(strings.Join(strings.Fields(m[1]), ""))
		if err == nil {
			out = append(out, b...)
		}
	}
	return string(out)
}
