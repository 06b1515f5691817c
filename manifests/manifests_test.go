package manifests_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/ebbscale/ebb/internal/dev/imagebuild"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// grant is one verb on one resource that rbac/role.yaml gives ebb, and why: the call that needs it.
type grant struct {
	namespace string // "" for the ClusterRole
	group     string
	resource  string
	verbs     string // separated by spaces
	why       string
}

// controllerGrants is everything the +kubebuilder:rbac markers may grant. A marker that grants more fails
// TestGeneratedRBAC until it is listed here with the code that needs it.
var controllerGrants = []grant{
	{"", "ebb.dev", "scaledconsumers", "get list watch", "the manager's cache: For/Watches and Client.Get/List"},
	{"", "ebb.dev", "scaledconsumers/finalizers", "update", "applyHPA: blockOwnerDeletion on the HPA's owner reference, under OwnerReferencesPermissionEnforcement"},
	{"", "ebb.dev", "scaledconsumers/status", "patch", "writeStatus"},
	{"", "ebb.dev", "scaledconsumers/status", "get update", "not called today (writeStatus patches); kubebuilder's usual pair"},
	{"", "ebb.dev", "triggerauthentications", "get list watch", "the cache: Watches and Client.Get in triggers.go"},
	{"", "autoscaling", "horizontalpodautoscalers", "get list watch", "the cache: Watches, conflict and deleteOwnedHPAs"},
	{"", "autoscaling", "horizontalpodautoscalers", "create patch", "applyHPA: server-side apply creates or patches"},
	{"", "autoscaling", "horizontalpodautoscalers", "delete", "deleteOwnedHPAs"},
	{"", "autoscaling", "horizontalpodautoscalers", "update", "not called today (apply patches)"},
	{"", "*", "*/scale", "get update", "getScale and setScale: activation through /scale of any kind"},
	{"", "*", "*/scale", "patch", "not called today (setScale updates)"},
	{"", "", "secrets", "get", "auth.go: APIReader.Get, uncached"},
	{"", "", "secrets", "list watch", "secrets.go: the metadata-only watch that notices a changed Secret"},
	{"", "events.k8s.io", "events", "create patch", "the events.k8s.io recorder (mgr.GetEventRecorder)"},
	{"", "events.k8s.io", "events", "update", "not called by the events.k8s.io recorder today"},
	{"ebb-system", "coordination.k8s.io", "leases", "get create update", "leader election's lease lock"},
	{"ebb-system", "coordination.k8s.io", "leases", "list watch patch delete", "kubebuilder's usual leader-election verbs"},
	{"ebb-system", "", "events", "create patch", "client-go's leader election records core/v1 events"},
}

// TestGeneratedRBAC checks the roles controller-gen generated from the controller's markers: exactly
// controllerGrants, and no cluster-wide Lease access.
func TestGeneratedRBAC(t *testing.T) {
	b, err := os.ReadFile("rbac/role.yaml")
	if err != nil {
		t.Fatalf("%v (make generate writes it)", err)
	}
	var got []string
	names := map[string]string{}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		if strings.TrimSpace(strings.Trim(doc, "-\n")) == "" {
			continue
		}
		var r struct {
			APIVersion string              `json:"apiVersion"`
			Kind       string              `json:"kind"`
			Metadata   metav1.ObjectMeta   `json:"metadata"`
			Rules      []rbacv1.PolicyRule `json:"rules"`
		}
		if err := yaml.UnmarshalStrict([]byte(doc), &r); err != nil {
			t.Fatalf("rbac/role.yaml: %v", err)
		}
		names[r.Kind+"/"+r.Metadata.Namespace] = r.Metadata.Name
		for _, rule := range r.Rules {
			for _, g := range rule.APIGroups {
				for _, res := range rule.Resources {
					for _, v := range rule.Verbs {
						got = append(got, grantKey(r.Metadata.Namespace, g, res, v))
					}
				}
			}
		}
	}
	var want []string
	for _, g := range controllerGrants {
		for _, v := range strings.Fields(g.verbs) {
			want = append(want, grantKey(g.namespace, g.group, g.resource, v))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("generated grants (-got +want); list a new grant in controllerGrants with the code that needs it:\n%s", diff)
	}
	wantNames := map[string]string{"ClusterRole/": "ebb-controller", "Role/ebb-system": "ebb-leader-election"}
	if diff := cmp.Diff(names, wantNames); diff != "" {
		t.Errorf("generated roles (-got +want):\n%s", diff)
	}
}

func grantKey(namespace, group, resource, verb string) string {
	if namespace == "" {
		namespace = "(cluster)"
	}
	if group == "" {
		group = "(core)"
	}
	return namespace + " " + group + " " + resource + " " + verb
}

// TestKustomizationSetsTheImage: the kustomization's images: entry names the image the Deployment runs and
// the one `make image` builds, so changing its newName/newTag changes what runs.
func TestKustomizationSetsTheImage(t *testing.T) {
	var k struct {
		Images []struct {
			Name    string `json:"name"`
			NewName string `json:"newName"`
			NewTag  string `json:"newTag"`
		} `json:"images"`
	}
	b, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	b, err = os.ReadFile("deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var deploy appsv1.Deployment
	if err := yaml.Unmarshal(bytes.SplitN(b, []byte("\n---\n"), 2)[0], &deploy); err != nil {
		t.Fatalf("deployment.yaml: %v", err)
	}
	image, _, _ := strings.Cut(deploy.Spec.Template.Spec.Containers[0].Image, ":")
	if len(k.Images) != 1 || k.Images[0].Name != image || k.Images[0].Name != imagebuild.EbbRepository || k.Images[0].NewTag == "" {
		t.Errorf("kustomization images %+v, want one entry for %s (deployment.yaml's, and make image's %s) with a newTag",
			k.Images, image, imagebuild.EbbRepository)
	}
}

// TestKustomizationListsEveryFile keeps kustomization.yaml in step with the generated directories.
func TestKustomizationListsEveryFile(t *testing.T) {
	b, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	for _, pattern := range []string{"crd/*.yaml", "rbac/*.yaml"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if !slices.Contains(k.Resources, f) {
				t.Errorf("kustomization.yaml does not list %s", f)
			}
		}
	}
}

// TestInstall installs the kustomization on a real kube-apiserver with the cached kubectl, as
// docs/install.md tells users to, and asks the API server's RBAC authorizer what ebb may do.
//
// It applies for real rather than with --dry-run=server: the cluster is thrown away, a real apply checks
// everything a dry run does (schemas, admission, Pod Security of the pod template) and more (the RBAC
// objects then answer SubjectAccessReviews), and a dry run cannot pass on an empty cluster anyway, since
// objects in ebb-system are refused while that namespace does not exist. The server-side dry run comes
// after, through kubectl diff. The CRDs come from the kustomization, not from the harness (SkipCRDs).
func TestInstall(t *testing.T) {
	env := testenv.Start(t, localcluster.Options{SkipCRDs: true})
	cacheDir := t.TempDir()
	kubectl := func(args ...string) (stdout, stderr string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), filepath.Join(env.BinDir, "kubectl"),
			append([]string{"--kubeconfig=" + env.Kubeconfig, "--cache-dir=" + cacheDir}, args...)...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errOut.String())
		}
		return out.String(), errOut.String()
	}

	out, stderr := kubectl("apply", "-k", ".")
	t.Logf("kubectl apply -k manifests/:\n%s", out)
	// Warnings include Pod Security violations of the pod template (ebb-system enforces "restricted").
	if strings.TrimSpace(stderr) != "" {
		t.Errorf("kubectl apply -k printed warnings or errors:\n%s", stderr)
	}
	// Applying again would change nothing: no fights with defaulting, nothing made up at apply time.
	// kubectl diff asks the server (a server-side dry run of the apply) and exits 1 on any difference. It
	// is used rather than a second apply, which reports a PodDisruptionBudget "configured" every time
	// although the object does not change (same resourceVersion).
	if out, _ := kubectl("diff", "-k", "."); out != "" {
		t.Errorf("kubectl diff -k after apply:\n%s", out)
	}

	const ebbSA = "system:serviceaccount:ebb-system:ebb"
	const hpaSA = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
	for _, tc := range []struct {
		name  string
		user  string
		attrs authorizationv1.ResourceAttributes
		want  bool
	}{
		// The controller, through the generated roles.
		{"watch-scaledconsumers", ebbSA, authorizationv1.ResourceAttributes{Group: "ebb.dev", Resource: "scaledconsumers", Verb: "watch"}, true},
		{"patch-status", ebbSA, authorizationv1.ResourceAttributes{Namespace: "shop", Group: "ebb.dev", Resource: "scaledconsumers", Subresource: "status", Verb: "patch"}, true},
		{"watch-triggerauthentications", ebbSA, authorizationv1.ResourceAttributes{Group: "ebb.dev", Resource: "triggerauthentications", Verb: "watch"}, true},
		{"apply-new-hpa", ebbSA, authorizationv1.ResourceAttributes{Namespace: "shop", Group: "autoscaling", Resource: "horizontalpodautoscalers", Verb: "create"}, true},
		{"apply-hpa", ebbSA, authorizationv1.ResourceAttributes{Namespace: "shop", Group: "autoscaling", Resource: "horizontalpodautoscalers", Verb: "patch"}, true},
		{"delete-hpa", ebbSA, authorizationv1.ResourceAttributes{Namespace: "shop", Group: "autoscaling", Resource: "horizontalpodautoscalers", Verb: "delete"}, true},
		{"update-deployment-scale", ebbSA, authorizationv1.ResourceAttributes{Namespace: "shop", Group: "apps", Resource: "deployments", Subresource: "scale", Verb: "update"}, true},
		{"get-custom-resource-scale", ebbSA, authorizationv1.ResourceAttributes{Namespace: "shop", Group: "example.com", Resource: "consumers", Subresource: "scale", Verb: "get"}, true},
		{"get-secret", ebbSA, authorizationv1.ResourceAttributes{Namespace: "shop", Resource: "secrets", Name: "kafka", Verb: "get"}, true},
		{"create-event", ebbSA, authorizationv1.ResourceAttributes{Namespace: "shop", Group: "events.k8s.io", Resource: "events", Verb: "create"}, true},
		{"update-own-lease", ebbSA, authorizationv1.ResourceAttributes{Namespace: "ebb-system", Group: "coordination.k8s.io", Resource: "leases", Verb: "update"}, true},
		{"leader-election-event", ebbSA, authorizationv1.ResourceAttributes{Namespace: "ebb-system", Resource: "events", Verb: "create"}, true},
		// A follower reads the Lease to find the leader's values endpoint.
		{"read-leader-lease", ebbSA, authorizationv1.ResourceAttributes{Namespace: "ebb-system", Group: "coordination.k8s.io", Resource: "leases", Name: "ebb-controller-leader", Verb: "get"}, true},
		// The metrics API server's delegated authentication and authorization.
		{"read-authentication-configmap", ebbSA, authorizationv1.ResourceAttributes{Namespace: "kube-system", Resource: "configmaps", Name: "extension-apiserver-authentication", Verb: "get"}, true},
		{"create-tokenreview", ebbSA, authorizationv1.ResourceAttributes{Group: "authentication.k8s.io", Resource: "tokenreviews", Verb: "create"}, true},
		{"create-subjectaccessreview", ebbSA, authorizationv1.ResourceAttributes{Group: "authorization.k8s.io", Resource: "subjectaccessreviews", Verb: "create"}, true},
		// The HPA controller reads the external metrics.
		{"hpa-lists-external-metrics", hpaSA, authorizationv1.ResourceAttributes{Namespace: "shop", Group: "external.metrics.k8s.io", Resource: "s0-lag", Verb: "list"}, true},
		// What ebb must not do.
		{"no-foreign-lease", ebbSA, authorizationv1.ResourceAttributes{Namespace: "kube-system", Group: "coordination.k8s.io", Resource: "leases", Name: "kube-controller-manager", Verb: "update"}, false},
		{"watch-secrets", ebbSA, authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "watch"}, true},
		{"no-deployment-update", ebbSA, authorizationv1.ResourceAttributes{Namespace: "shop", Group: "apps", Resource: "deployments", Verb: "update"}, false},
		{"no-scaledconsumer-update", ebbSA, authorizationv1.ResourceAttributes{Namespace: "shop", Group: "ebb.dev", Resource: "scaledconsumers", Verb: "update"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:               tc.user,
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + strings.Split(tc.user, ":")[2], "system:authenticated"},
				ResourceAttributes: &tc.attrs,
			}}
			// The RBAC authorizer sees new bindings through an informer, so a grant may take a moment to
			// show. The denials come last in the table, when every binding has been seen.
			var allowed bool
			var reason string
			err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
				got, err := env.Kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
				if err != nil {
					return false, err
				}
				allowed, reason = got.Status.Allowed, got.Status.Reason
				return allowed || !tc.want, nil
			})
			if err != nil && !wait.Interrupted(err) {
				t.Fatal(err)
			}
			if allowed != tc.want {
				t.Errorf("%s %+v: allowed=%v, want %v (%s)", tc.user, tc.attrs, allowed, tc.want, reason)
			}
		})
	}

	// The values endpoint (rbac/values.yaml): followers, as ebb, get the leader's values; nobody else.
	for _, tc := range []struct {
		name  string
		user  string
		attrs authorizationv1.NonResourceAttributes
		want  bool
	}{
		{"get-values", ebbSA, authorizationv1.NonResourceAttributes{Path: "/ebb/v1/values", Verb: "get"}, true},
		{"no-other-values-verb", ebbSA, authorizationv1.NonResourceAttributes{Path: "/ebb/v1/values", Verb: "post"}, false},
		{"hpa-no-values", hpaSA, authorizationv1.NonResourceAttributes{Path: "/ebb/v1/values", Verb: "get"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:                  tc.user,
				Groups:                []string{"system:serviceaccounts", "system:serviceaccounts:" + strings.Split(tc.user, ":")[2], "system:authenticated"},
				NonResourceAttributes: &tc.attrs,
			}}
			var allowed bool
			err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
				got, err := env.Kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
				if err != nil {
					return false, err
				}
				allowed = got.Status.Allowed
				return allowed || !tc.want, nil
			})
			if err != nil && !wait.Interrupted(err) {
				t.Fatal(err)
			}
			if allowed != tc.want {
				t.Errorf("%s %+v: allowed=%v, want %v", tc.user, tc.attrs, allowed, tc.want)
			}
		})
	}
}
