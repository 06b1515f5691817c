package explain

import (
	"context"
	"errors"
	"fmt"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/metrics/pkg/client/external_metrics"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/internal/scheme"
)

// ErrNotFound is returned by Read when the ScaledConsumer does not exist.
var ErrNotFound = errors.New("ScaledConsumer not found")

// Read fetches what Build needs about the ScaledConsumer namespace/name with cfg's credentials: the
// ScaledConsumer (required), its HPA, the target's /scale and, for each of the HPA's external metrics,
// the value the metrics API serves with the HPA's own selector. Only a missing or unreadable
// ScaledConsumer is an error; anything else missing is said in the Input (and so in the explanation).
func Read(ctx context.Context, cfg *rest.Config, namespace, name string, now time.Time) (Input, error) {
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return Input{}, fmt.Errorf("building a client: %w", err)
	}
	in := Input{Now: now, ScaledConsumer: &ebbv1.ScaledConsumer{}, Metrics: map[string]MetricReading{}}
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, in.ScaledConsumer); err != nil {
		if apierrors.IsNotFound(err) {
			return Input{}, fmt.Errorf("%w: %s/%s", ErrNotFound, namespace, name)
		}
		return Input{}, fmt.Errorf("reading ScaledConsumer %s/%s: %w", namespace, name, err)
	}
	sc := in.ScaledConsumer
	hpaName := sc.Status.HPAName
	if hpaName == "" {
		hpaName = defaultHPAName(sc)
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	switch err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: hpaName}, hpa); {
	case err == nil && metav1.IsControlledBy(hpa, sc):
		in.HPA = hpa
	case err == nil:
		// An HPA of that name that ebb does not control is not ebb's (the Ready condition says so).
	case !apierrors.IsNotFound(err):
		return Input{}, fmt.Errorf("reading HPA %s/%s: %w", namespace, hpaName, err)
	}
	in.Scale, in.ScaleError = readScale(ctx, c, sc)
	if in.HPA != nil {
		readMetrics(cfg, in.HPA, in.Metrics)
	}
	return in, nil
}

// defaultHPAName is the HPA's name before ebb has written status.hpaName: spec.hpa.name, else ebb-NAME.
func defaultHPAName(sc *ebbv1.ScaledConsumer) string {
	if sc.Spec.HPA != nil && sc.Spec.HPA.Name != "" {
		return sc.Spec.HPA.Name
	}
	return ebbv1.HPANamePrefix + sc.Name
}

func readScale(ctx context.Context, c client.Client, sc *ebbv1.ScaledConsumer) (*Scale, string) {
	ref := sc.Spec.ScaleTargetRef
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, err.Error()
	}
	target := &unstructured.Unstructured{}
	target.SetGroupVersionKind(gv.WithKind(ref.Kind))
	target.SetNamespace(sc.Namespace)
	target.SetName(ref.Name)
	scale := &unstructured.Unstructured{}
	scale.SetGroupVersionKind(autoscalingv1.SchemeGroupVersion.WithKind("Scale"))
	if err := c.SubResource("scale").Get(ctx, target, scale); err != nil {
		return nil, err.Error()
	}
	spec, _, _ := unstructured.NestedInt64(scale.Object, "spec", "replicas")
	status, _, _ := unstructured.NestedInt64(scale.Object, "status", "replicas")
	return &Scale{Replicas: int32(spec), CurrentReplicas: int32(status)}, ""
}

// readMetrics asks the metrics API for each external metric of the HPA, with the HPA's selector, as the
// HPA controller does.
func readMetrics(cfg *rest.Config, hpa *autoscalingv2.HorizontalPodAutoscaler, out map[string]MetricReading) {
	mc, err := external_metrics.NewForConfig(cfg)
	if err != nil {
		for _, m := range hpa.Spec.Metrics {
			if m.External != nil {
				out[m.External.Metric.Name] = MetricReading{Err: err.Error()}
			}
		}
		return
	}
	for _, m := range hpa.Spec.Metrics {
		if m.External == nil {
			continue
		}
		id := m.External.Metric
		sel := labels.Everything()
		if id.Selector != nil {
			s, err := metav1.LabelSelectorAsSelector(id.Selector)
			if err != nil {
				out[id.Name] = MetricReading{Err: err.Error()}
				continue
			}
			sel = s
		}
		list, err := mc.NamespacedMetrics(hpa.Namespace).List(id.Name, sel)
		switch {
		case err != nil:
			out[id.Name] = MetricReading{Err: err.Error()}
		case len(list.Items) == 0:
			out[id.Name] = MetricReading{Err: "the metrics API returned no value"}
		default:
			// The HPA sums the items; ebb serves one per metric.
			v := list.Items[0].Value.DeepCopy()
			for _, it := range list.Items[1:] {
				v.Add(it.Value)
			}
			out[id.Name] = MetricReading{Value: &v, Time: list.Items[0].Timestamp.Time}
		}
	}
}
