package controller_test

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/controller"
)

// widgetCRD is a custom resource with a /scale subresource, as an operator's workload would have.
func widgetCRD() *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.test.ebb.dev"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "test.ebb.dev",
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
							"replicas": {Type: "integer"}, "selector": {Type: "string"},
						}},
						"status": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
							"replicas": {Type: "integer"}, "selector": {Type: "string"},
						}},
					},
				}},
				Subresources: &apiextensionsv1.CustomResourceSubresources{
					Status: &apiextensionsv1.CustomResourceSubresourceStatus{},
					Scale: &apiextensionsv1.CustomResourceSubresourceScale{
						SpecReplicasPath: ".spec.replicas", StatusReplicasPath: ".status.replicas",
					},
				},
			}},
		},
	}
}

// Anything with /scale works: a StatefulSet and a custom resource wake from zero and go back.
func TestOtherScaleTargets(t *testing.T) {
	env := cluster.Env(t)
	s := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	ext, err := client.New(env.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.IgnoreAlreadyExists(ext.Create(t.Context(), widgetCRD())); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	h.eventually(10*time.Second, func() (bool, string) {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := ext.Get(t.Context(), types.NamespacedName{Name: "widgets.test.ebb.dev"}, crd); err != nil {
			return false, err.Error()
		}
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true, ""
			}
		}
		return false, "CRD not established"
	})

	zero := int32(0)
	labels := map[string]string{"app": "sts"}
	h.create(&appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "sts", Namespace: h.ns},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &zero,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "consumer"}}},
			},
		},
	})
	widget := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "test.ebb.dev/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w", "namespace": h.ns},
		"spec":     map[string]any{"replicas": int64(0)},
	}}
	h.create(widget)

	targets := []struct {
		name string
		ref  ebbv1.ScaleTargetRef
		get  func() int64
	}{
		{"sts", ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "sts"}, func() int64 {
			s := &appsv1.StatefulSet{}
			if err := h.c.Get(t.Context(), types.NamespacedName{Namespace: h.ns, Name: "sts"}, s); err != nil {
				t.Fatal(err)
			}
			return int64(*s.Spec.Replicas)
		}},
		{"widget", ebbv1.ScaleTargetRef{APIVersion: "test.ebb.dev/v1", Kind: "Widget", Name: "w"}, func() int64 {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("test.ebb.dev/v1")
			u.SetKind("Widget")
			if err := h.c.Get(t.Context(), types.NamespacedName{Namespace: h.ns, Name: "w"}, u); err != nil {
				t.Fatal(err)
			}
			n, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
			return n
		}},
	}
	for _, tc := range targets {
		h.set(tc.name, 0)
		sc := h.scaledConsumer(tc.name, "", tc.name)
		sc.Spec.ScaleTargetRef = tc.ref
		h.create(sc)
		h.waitCondition(tc.name, ebbv1.ConditionReady, metav1.ConditionTrue, controller.ReasonHPAReady)
		if hpa := h.hpa("ebb-" + tc.name); hpa == nil || hpa.Spec.ScaleTargetRef.Kind != tc.ref.Kind {
			t.Errorf("%s: HPA = %+v, want one targeting %s", tc.name, hpa, tc.ref.Kind)
		}
		h.set(tc.name, 4)
		h.eventually(10*time.Second, func() (bool, string) {
			got := tc.get()
			return got == 1, fmt.Sprintf("%s has %d replicas, want 1", tc.name, got)
		})
		h.set(tc.name, 0)
		c := h.waitCondition(tc.name, ebbv1.ConditionActive, metav1.ConditionFalse, "NoActivity")
		if meta.IsStatusConditionTrue(h.getSC(tc.name).Status.Conditions, ebbv1.ConditionFallback) {
			t.Errorf("%s: unexpected fallback: %s", tc.name, c.Message)
		}
		h.clock.Step(10 * time.Minute)
		h.poke(tc.name)
		h.eventually(10*time.Second, func() (bool, string) {
			got := tc.get()
			return got == 0, fmt.Sprintf("%s has %d replicas, want 0", tc.name, got)
		})
	}
}
