// Package scheme builds the runtime.Scheme ebb's clients use: the built-in Kubernetes types, APIService
// and ebb's own kinds.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

// New returns a new scheme with the built-in types, APIService and ebb's types.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(apiregistrationv1.AddToScheme(s))
	utilruntime.Must(ebbv1.AddToScheme(s))
	return s
}
