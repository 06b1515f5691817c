package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of the types in this package.
var GroupVersion = schema.GroupVersion{Group: "ebb.dev", Version: "v1alpha1"}

// AddToScheme adds the types in this package to a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&ScaledConsumer{}, &ScaledConsumerList{},
		&TriggerAuthentication{}, &TriggerAuthenticationList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
