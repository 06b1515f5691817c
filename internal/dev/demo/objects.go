package demo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
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

// RealConsumer turns the sample's consumer Deployment d into one whose pods run the example consumer
// (examples/consumer) from image, which the node has loaded (imagePullPolicy Never): a member of group on
// topic of brokers, consuming rate messages a second. The sample's image is a placeholder that users
// replace; the demo substitutes this one. It changes the first container of d.
func RealConsumer(d *appsv1.Deployment, image string, brokers []string, group, topic string, rate float64) {
	c := &d.Spec.Template.Spec.Containers[0]
	c.Image, c.ImagePullPolicy = image, corev1.PullNever
	c.Command, c.Args = nil, nil
	c.Env = []corev1.EnvVar{
		{Name: "CONSUMER_BROKER", Value: "kafka"},
		{Name: "CONSUMER_BROKERS", Value: strings.Join(brokers, ",")},
		{Name: "CONSUMER_TOPIC", Value: topic},
		{Name: "CONSUMER_GROUP", Value: group},
		{Name: "CONSUMER_RATE", Value: strconv.FormatFloat(rate, 'g', -1, 64)},
		// The pod's name, for the consumer's log lines (its host name would do too, but not with hostNetwork).
		{Name: "CONSUMER_ID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
	}
}

// RunningPods counts the pods in phase Running that are not being deleted: the pods that consume.
func RunningPods(pods []corev1.Pod) int {
	n := 0
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			n++
		}
	}
	return n
}
