package controller

import (
	"os"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// With the OwnerReferencesPermissionEnforcement admission plugin (on by default in OpenShift, common in
// hardened clusters), setting blockOwnerDeletion: true on an ownerReference needs update on the owner's
// finalizers subresource: ebb's generated ClusterRole must allow it, or no HPA is ever created.
func TestHPAApplyUnderOwnerReferencesPermissionEnforcement(t *testing.T) {
	testenv.Requires(t, "a control plane")
	bin, err := localcluster.FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{"../manifests/crd"}, BinaryAssetsDirectory: bin}
	env.ControlPlane.GetAPIServer().Configure().Append("enable-admission-plugins", "OwnerReferencesPermissionEnforcement")
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	admin, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../manifests/rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		cr := &rbacv1.ClusterRole{}
		if err := yaml.Unmarshal([]byte(doc), cr); err != nil || cr.Kind != "ClusterRole" {
			continue
		}
		if err := admin.Create(t.Context(), cr); err != nil {
			t.Fatal(err)
		}
	}
	if err := admin.Create(t.Context(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "ebb"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "ebb-controller"},
		Subjects:   []rbacv1.Subject{{Kind: "User", Name: "ebb", APIGroup: "rbac.authorization.k8s.io"}},
	}); err != nil {
		t.Fatal(err)
	}
	u, err := env.AddUser(envtest.User{Name: "ebb"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ebb, err := client.New(u.Config(), client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	sc := &ebbv1.ScaledConsumer{ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "default"}, Spec: ebbv1.ScaledConsumerSpec{
		ScaleTargetRef: ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "orders"},
		Triggers:       []ebbv1.Trigger{{Name: "lag", Type: "test"}},
	}}
	if err := admin.Create(t.Context(), sc); err != nil {
		t.Fatal(err)
	}
	hpa, err := desiredHPA(sc, []HPAMetric{{Name: "lag", Target: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ebb.Apply(t.Context(), hpa, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		t.Fatalf("applying the HPA with ebb's RBAC: %v", err)
	}
}
