package controller_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/controller"
	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/rabbitmq"
)

// Every way the objects behind an authenticationRef can be wrong gives the ScaledConsumer Ready=False
// with a reason and a message naming the object, and a Warning event saying the same; none is only a
// line in ebb's log, and none is taken as working.
func TestAuthenticationFaults(t *testing.T) {
	h := newHarness(t)
	other := testenv.UniqueName(t, "other")
	h.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}})
	secret := func(ns, name string, data map[string]string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}
	}
	ta := func(ns, name, secretName, key string) *ebbv1.TriggerAuthentication {
		return &ebbv1.TriggerAuthentication{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       ebbv1.TriggerAuthenticationSpec{SecretTargetRef: []ebbv1.SecretTargetRef{{Parameter: "activation", Name: secretName, Key: key}}},
		}
	}
	tests := []struct {
		name    string
		ref     string   // the trigger's authenticationRef
		objects []any    // created first: *corev1.Secret, *ebbv1.TriggerAuthentication
		reason  string   // of the Ready condition and the event
		mention []string // in the condition's message and the event's note
	}{
		{name: "secret-name-with-slash", ref: "slash", objects: []any{ta(h.ns, "slash", "chaos/rmq-user", "k")},
			reason: controller.ReasonInvalidAuthentication, mention: []string{`"slash"`, `"chaos/rmq-user"`, "not a valid Secret name", "no slash"}},
		{name: "ref-name-with-slash", ref: "chaos/creds",
			reason: controller.ReasonInvalidAuthentication, mention: []string{`"chaos/creds"`, "not a valid TriggerAuthentication name"}},
		{name: "trigger-authentication-missing", ref: "absent",
			reason: controller.ReasonAuthenticationNotFound, mention: []string{`TriggerAuthentication "absent" not found in namespace ` + h.ns}},
		{name: "secret-missing", ref: "nosecret", objects: []any{ta(h.ns, "nosecret", "absent-secret", "k")},
			reason: controller.ReasonAuthenticationNotFound, mention: []string{`"nosecret"`, `Secret "absent-secret" not found in namespace ` + h.ns}},
		{name: "key-missing", ref: "nokey", objects: []any{secret(h.ns, "nokey", map[string]string{"other": "1"}), ta(h.ns, "nokey", "nokey", "k")},
			reason: controller.ReasonAuthenticationNotFound, mention: []string{`Secret "nokey" has no key "k"`, "other"}},
		{name: "empty-value", ref: "empty", objects: []any{secret(h.ns, "empty", map[string]string{"k": ""}), ta(h.ns, "empty", "empty", "k")},
			reason: controller.ReasonInvalidAuthentication, mention: []string{`Secret "empty" key "k" is empty`}},
		{name: "trigger-authentication-in-other-namespace", ref: "elsewhere", objects: []any{secret(other, "elsewhere", map[string]string{"k": "1"}), ta(other, "elsewhere", "elsewhere", "k")},
			reason: controller.ReasonAuthenticationNotFound, mention: []string{`TriggerAuthentication "elsewhere" not found in namespace ` + h.ns}},
		{name: "secret-in-other-namespace", ref: "split", objects: []any{secret(other, "split", map[string]string{"k": "1"}), ta(h.ns, "split", "split", "k")},
			reason: controller.ReasonAuthenticationNotFound, mention: []string{`Secret "split" not found in namespace ` + h.ns}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := h.in(t)
			refused := false
			for _, o := range tc.objects {
				var err error
				switch o := o.(type) {
				case *corev1.Secret:
					err = h.c.Create(t.Context(), o)
				case *ebbv1.TriggerAuthentication:
					err = h.c.Create(t.Context(), o)
				}
				// Admission may refuse a malformed reference; the controller must still handle one that got
				// in before (an older CRD), which this case cannot then show.
				if apierrors.IsInvalid(err) {
					refused = true
					t.Logf("admission refuses it: %v", err)
				} else if err != nil {
					t.Fatal(err)
				}
			}
			name := fmt.Sprintf("sc%d", i)
			h.deployment(name, 1)
			sc := h.scaledConsumer(name, name, "lag")
			sc.Spec.Triggers[0].AuthenticationRef = &ebbv1.AuthenticationRef{Name: tc.ref}
			if err := h.c.Create(t.Context(), sc); apierrors.IsInvalid(err) {
				t.Skipf("admission refuses the ScaledConsumer: %v", err)
			} else if err != nil {
				t.Fatal(err)
			}
			if refused {
				t.Skip("admission refused an object of this case")
			}
			c := h.waitCondition(name, ebbv1.ConditionReady, metav1.ConditionFalse, tc.reason)
			note := h.waitEvent(name, tc.reason)
			for _, m := range tc.mention {
				if !strings.Contains(c.Message, m) {
					t.Errorf("Ready message %q does not mention %q", c.Message, m)
				}
				if !strings.Contains(note, m) {
					t.Errorf("event note %q does not mention %q", note, m)
				}
			}
		})
	}
}

// A wrong password behind a TriggerAuthentication makes the trigger fail with RabbitMQ's authentication
// error; correcting the Secret alone (not the TriggerAuthentication) makes it read again within a few
// polling intervals. Rotating the password (RabbitMQ keeps the connection made with the old one open)
// moves the trigger to a connection made with the new one, and the old one is closed. Real RabbitMQ, real
// API server.
func TestSecretChangeReachesTrigger(t *testing.T) {
	conn := testenv.DialRabbitMQ(t)
	mgmt, err := url.Parse(testenv.RabbitMQHTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	testenv.RequireTCP(t, "RabbitMQ management API", mgmt.Host, "hack/ensure-rabbitmq.sh")
	pool := rabbitmq.NewPool()
	t.Cleanup(pool.Close)
	h := newHarness(t, func(h *harness) { h.extras = scalers.Registry{rabbitmq.Type: pool} })
	user := h.ns
	testenv.RabbitMQAPI(t, mgmt, http.MethodPut, "/api/users/"+user, map[string]string{"password": "first-password", "tags": ""}, nil)
	t.Cleanup(func() { testenv.RabbitMQAPI(t, mgmt, http.MethodDelete, "/api/users/"+user, nil, nil) })
	testenv.RabbitMQAPI(t, mgmt, http.MethodPut, "/api/permissions/%2F/"+user, map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, nil)
	queue := h.ns + "-jobs"
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	host := func(password string) string {
		u, err := url.Parse(testenv.RabbitMQURL)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(user, password)
		return u.String()
	}

	h.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rabbit", Namespace: h.ns}, StringData: map[string]string{"host": host("not-the-password")}})
	h.create(&ebbv1.TriggerAuthentication{
		ObjectMeta: metav1.ObjectMeta{Name: "rabbit", Namespace: h.ns},
		Spec:       ebbv1.TriggerAuthenticationSpec{SecretTargetRef: []ebbv1.SecretTargetRef{{Parameter: "host", Name: "rabbit", Key: "host"}}},
	})
	h.deployment("worker", 1)
	sc := h.scaledConsumer("worker", "worker")
	sc.Spec.PollingInterval = &metav1.Duration{Duration: time.Second}
	sc.Spec.Triggers = []ebbv1.Trigger{{Name: "jobs", Type: rabbitmq.Type, Metadata: map[string]string{"queueName": queue, "mode": "QueueLength", "value": "5"},
		AuthenticationRef: &ebbv1.AuthenticationRef{Name: "rabbit"}}}
	h.create(sc)

	lastError := func() string {
		sc := h.getSC("worker")
		st := sc.Status.Triggers
		if len(st) != 1 {
			return fmt.Sprintf("no trigger status; conditions %+v", sc.Status.Conditions)
		}
		return st[0].LastError
	}
	h.eventually(30*time.Second, func() (bool, string) {
		e := lastError()
		return strings.Contains(e, rabbitmq.ErrAuthentication.Error()), fmt.Sprintf("trigger error %q, want %q", e, rabbitmq.ErrAuthentication)
	})
	setSecret := func(password string) time.Time {
		s := &corev1.Secret{}
		if err := h.c.Get(t.Context(), types.NamespacedName{Namespace: h.ns, Name: "rabbit"}, s); err != nil {
			t.Fatal(err)
		}
		s.Data = map[string][]byte{"host": []byte(host(password))}
		if err := h.c.Update(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}
	reads := func() (bool, string) {
		st := h.getSC("worker").Status.Triggers
		ok := len(st) == 1 && st[0].LastError == "" && st[0].Value == "0"
		return ok, fmt.Sprintf("triggers %+v, want value 0 and no error", st)
	}

	start := setSecret("first-password")
	h.eventually(30*time.Second, reads)
	t.Logf("trigger read again %s after the Secret's update", time.Since(start).Round(100*time.Millisecond))

	// Rotation: RabbitMQ takes the new password for new connections only.
	testenv.RabbitMQAPI(t, mgmt, http.MethodPut, "/api/users/"+user, map[string]string{"password": "second-password", "tags": ""}, nil)
	rotated := setSecret("second-password")
	h.eventually(30*time.Second, func() (bool, string) {
		var conns []struct {
			User        string `json:"user"`
			ConnectedAt int64  `json:"connected_at"`
		}
		testenv.RabbitMQAPI(t, mgmt, http.MethodGet, "/api/connections?columns=user,connected_at", nil, &conns)
		var mine []time.Time
		for _, c := range conns {
			if c.User == user {
				mine = append(mine, time.UnixMilli(c.ConnectedAt))
			}
		}
		ok := len(mine) == 1 && !mine[0].Before(rotated.Add(-time.Second)) && pool.Connections() == 1
		return ok, fmt.Sprintf("RabbitMQ has connections of %s opened at %v (the Secret changed at %v), the pool holds %d; want one, opened after the change", user, mine, rotated, pool.Connections())
	})
	h.eventually(30*time.Second, reads)
}

// A Secret ebb's RBAC does not let it read is AuthenticationForbidden, with an event, not a retried
// reconcile error in the log. The controller acts as a user with the controller's grants except those on
// Secrets, so the Secret watch is refused too: the controller works on without it.
func TestAuthenticationForbidden(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.user = testenv.UniqueName(t, "ebb-no-secrets")
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: h.user}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"ebb.dev"}, Resources: []string{"scaledconsumers", "triggerauthentications"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"ebb.dev"}, Resources: []string{"scaledconsumers/status"}, Verbs: []string{"get", "update", "patch"}},
			{APIGroups: []string{"autoscaling"}, Resources: []string{"horizontalpodautoscalers"}, Verbs: []string{"*"}},
			{APIGroups: []string{"*"}, Resources: []string{"*/scale"}, Verbs: []string{"get", "update", "patch"}},
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch", "update"}},
		}}
		binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: h.user},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: h.user},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: h.user}}}
		for _, o := range []client.Object{role, binding} {
			if err := h.c.Create(t.Context(), o); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = h.c.Delete(context.Background(), o) })
		}
	})
	h.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: h.ns}, StringData: map[string]string{"k": "1"}})
	h.create(&ebbv1.TriggerAuthentication{
		ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: h.ns},
		Spec:       ebbv1.TriggerAuthenticationSpec{SecretTargetRef: []ebbv1.SecretTargetRef{{Parameter: "activation", Name: "s", Key: "k"}}},
	})
	h.deployment("worker", 1)
	sc := h.scaledConsumer("worker", "worker", "lag")
	sc.Spec.Triggers[0].AuthenticationRef = &ebbv1.AuthenticationRef{Name: "creds"}
	h.create(sc)
	c := h.waitCondition("worker", ebbv1.ConditionReady, metav1.ConditionFalse, controller.ReasonAuthenticationForbidden)
	note := h.waitEvent("worker", controller.ReasonAuthenticationForbidden)
	for _, text := range []string{c.Message, note} {
		if !strings.Contains(text, `ebb may not read Secret "s" in namespace `+h.ns) {
			t.Errorf("%q does not say which Secret ebb may not read", text)
		}
	}
}
