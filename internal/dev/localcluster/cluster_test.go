package localcluster_test

import (
	"context"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// Without a node, kube-controller-manager still runs the controllers that work in the API alone: a new
// namespace gets its default ServiceAccount (for which kube-apiserver issues tokens), and a deleted namespace, with objects in it, goes away
// instead of staying Terminating.
func TestControllerManagerWithoutNode(t *testing.T) {
	env := testenv.Start(t, localcluster.Options{ControllerManager: true})
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "doomed"}}
	if _, err := env.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "left", Namespace: ns.Name}, Data: map[string]string{"k": "v"}}
	if _, err := env.Kube.CoreV1().ConfigMaps(ns.Name).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll := func(what string, limit time.Duration, done func(context.Context) (bool, error)) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, limit, true, done); err != nil {
			t.Fatalf("%s within %v: %v", what, limit, err)
		}
	}
	poll("no default ServiceAccount in the new namespace", 60*time.Second, func(ctx context.Context) (bool, error) {
		_, err := env.Kube.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	// kube-apiserver signs service-account tokens itself (`kubectl create token default`).
	tr, err := env.Kube.CoreV1().ServiceAccounts(ns.Name).CreateToken(ctx, "default", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil || tr.Status.Token == "" {
		t.Errorf("a token for the default ServiceAccount: %v", err)
	}
	if err := env.Kube.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll("the deleted namespace is still there (Terminating)", 90*time.Second, func(ctx context.Context) (bool, error) {
		_, err := env.Kube.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}
