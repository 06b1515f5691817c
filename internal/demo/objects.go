package demo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ebbscale/ebb/internal/scheme"
	"github.com/ebbscale/ebb/manifests"
)

// Sample decodes a file of manifests/samples (as embedded in the binary) into typed objects, strictly:
// an unknown or duplicated field is an error, so a typo in a sample cannot pass unnoticed.
func Sample(name string) ([]client.Object, error) {
	b, err := fs.ReadFile(manifests.Samples(), name)
	if err != nil {
		return nil, fmt.Errorf("sample %s: %w", name, err)
	}
	decoder := serializer.NewCodecFactory(scheme.New(), serializer.EnableStrict).UniversalDeserializer()
	reader := utilyaml.NewYAMLReader(bufioReader(b))
	var objs []client.Object
	for i := 0; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("sample %s: document %d: %w", name, i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, _, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("sample %s: document %d: %w", name, i, err)
		}
		o, ok := obj.(client.Object)
		if !ok {
			return nil, fmt.Errorf("sample %s: document %d: %T is not an object", name, i, obj)
		}
		objs = append(objs, o)
	}
	return objs, nil
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
