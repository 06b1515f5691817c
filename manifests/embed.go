package manifests

import (
	"embed"
	"fmt"
	"io/fs"
	"path"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

//go:embed crd/*.yaml
var crdFS embed.FS

// CRDs returns the CustomResourceDefinitions generated into manifests/crd.
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	files, err := fs.Glob(crdFS, "crd/*.yaml")
	if err != nil {
		return nil, err
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		b, err := crdFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(b, crd); err != nil {
			return nil, fmt.Errorf("manifests: %s: %w", path.Base(f), err)
		}
		crds = append(crds, crd)
	}
	return crds, nil
}

//go:embed samples/*.yaml
var samplesFS embed.FS

// Samples holds manifests/samples, the sample consumers and ScaledConsumers that `ebb dev --demo` applies,
// by file name (kafka.yaml, rabbitmq.yaml).
func Samples() fs.FS {
	sub, err := fs.Sub(samplesFS, "samples")
	if err != nil {
		panic(err) // a constant directory of the embedded tree
	}
	return sub
}
