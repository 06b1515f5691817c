package demo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/controller"
	"github.com/ebbscale/ebb/internal/dev/loadgen"
	"github.com/ebbscale/ebb/internal/scheme"
)

// SampleFile is the sample the demo applies.
const SampleFile = "kafka.yaml"

// Config configures Run.
type Config struct {
	// Kube reaches the development cluster, where ebb and the HPA controller run.
	Kube *rest.Config
	// Brokers is the Kafka cluster; the sample's bootstrapServers are pointed at it.
	Brokers []string
	// Out receives the live timeline and the story around it.
	Out io.Writer
	// Burst is the number of messages produced at once. Default 4,000.
	Burst int64
	// ConsumerImage, when set, is the image of the example consumer (examples/consumer) loaded on the
	// cluster's node: the sample's Deployment then runs it as real pods (see RealConsumer), and the
	// Brokers must be reachable from pods. Default empty: no pod can run, and the demo simulates one
	// consumer per replica itself (Consumers).
	ConsumerImage string
	// ConsumeRate is each consumer's rate (a pod's or a simulated one's), in messages per second. Default 20.
	ConsumeRate float64
	// Cooldown, when set, replaces the sample's cooldownPeriod (15s).
	Cooldown time.Duration
	// Timeout bounds the whole demo. Default 10m.
	Timeout time.Duration
	// Interval is the time between observations. Default 1s.
	Interval time.Duration
	// SVG is where the picture of the timeline goes.
	SVG string
}

// Result is what a demo showed.
type Result struct {
	Timeline Timeline
	Shape    Shape
}

// ErrNoRoundTrip is returned when the timeline did not go from 0 replicas up and back to 0 in time.
var ErrNoRoundTrip = errors.New("the demo did not complete 0 -> N -> 0")

// Run applies the Kafka sample, produces a burst, simulates one consumer per replica unless the consumers
// run as pods (cfg.ConsumerImage), prints the timeline until the Deployment is back at 0 with the backlog
// drained and every consumer stopped, and writes the SVG. The objects it created stay in the cluster.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Burst <= 0 {
		cfg.Burst = 4000
	}
	if cfg.ConsumeRate <= 0 {
		cfg.ConsumeRate = 20
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	out := cfg.Out
	say := func(format string, args ...any) { _, _ = fmt.Fprintf(out, "demo: "+format+"\n", args...) }

	objs, err := Sample(SampleFile)
	if err != nil {
		return Result{}, err
	}
	var sc *ebbv1.ScaledConsumer
	var deploy *appsv1.Deployment
	for _, o := range objs {
		switch o := o.(type) {
		case *ebbv1.ScaledConsumer:
			sc = o
		case *appsv1.Deployment:
			deploy = o
		}
	}
	if sc == nil || deploy == nil || len(sc.Spec.Triggers) != 1 || sc.Spec.Triggers[0].Type != "kafka" {
		return Result{}, fmt.Errorf("sample %s: want a Deployment and a ScaledConsumer with one kafka trigger", SampleFile)
	}
	md := sc.Spec.Triggers[0].Metadata
	md["bootstrapServers"] = strings.Join(cfg.Brokers, ",")
	if cfg.Cooldown > 0 || sc.Spec.CooldownPeriod == nil {
		// Without one in the sample (or given), the API default would apply: 300 s, long for a demo.
		sc.Spec.CooldownPeriod = &metav1.Duration{Duration: cmp.Or(cfg.Cooldown, 15*time.Second)}
	}
	group, topic := md["consumerGroup"], md["topic"]
	partitions := int32(8)
	if sc.Spec.MaxReplicas != nil {
		partitions = *sc.Spec.MaxReplicas
	}

	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	kc, err := client.New(cfg.Kube, client.Options{Scheme: scheme.New()})
	if err != nil {
		return Result{}, fmt.Errorf("demo: a client for the cluster: %w", err)
	}
	kcl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		return Result{}, fmt.Errorf("demo: a Kafka client: %w", err)
	}
	defer kcl.Close()
	adm := kadm.NewClient(kcl)
	if resp, err := adm.CreateTopic(ctx, partitions, -1, nil, topic); err != nil || (resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists)) {
		return Result{}, fmt.Errorf("demo: creating topic %s: %w", topic, errors.Join(err, resp.Err))
	}

	if cfg.ConsumerImage != "" {
		RealConsumer(deploy, cfg.ConsumerImage, cfg.Brokers, group, topic, cfg.ConsumeRate)
		say("the consumers are pods: Deployment %s runs the example consumer (examples/consumer, image %s) on", deploy.Name, cfg.ConsumerImage)
		say("the node, each pod a member of consumer group %q consuming %g messages/s from topic %q and committing.", group, cfg.ConsumeRate, topic)
	} else {
		say("the consumers are simulated: no kubelet runs pods here (ebb dev --demo --node runs them as pods, as root).")
		say("The demo stands in for them with one member of consumer group %q per replica of Deployment %s, each", group, deploy.Name)
		say("consuming %g messages/s from topic %q and committing, so the backlog drains faster as replicas are", cfg.ConsumeRate, topic)
		say("added (a real pod's start-up time is left out).")
	}
	for _, o := range objs {
		if err := kc.Create(ctx, o); err != nil {
			return Result{}, fmt.Errorf("demo: applying %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
	}
	say("applied manifests/samples/%s: Deployment %s/%s at 0 replicas, ScaledConsumer %s/%s (lag threshold %s, max %d replicas, cooldown %v)",
		SampleFile, deploy.Namespace, deploy.Name, sc.Namespace, sc.Name, md["lagThreshold"], partitions, sc.Spec.CooldownPeriod.Duration)
	hpaName := controller.HPAName(sc)

	o := &observer{
		c: kc, adm: adm, ns: sc.Namespace, sc: sc.Name, deploy: deploy.Name, hpa: hpaName, group: group, topic: topic,
		seen: map[types.UID]int32{},
	}
	if cfg.ConsumerImage != "" {
		o.pods = deploy.Spec.Selector.MatchLabels
	} else {
		o.consumers = &Consumers{Brokers: cfg.Brokers, Group: group, Topic: topic, Rate: cfg.ConsumeRate}
		defer o.consumers.Close()
	}

	sink, err := loadgen.NewKafka(ctx, loadgen.KafkaConfig{Brokers: cfg.Brokers, Topic: topic})
	if err != nil {
		return Result{}, fmt.Errorf("demo: %w", err)
	}
	defer sink.Close()
	loadDone := make(chan error, 1)
	loadStarted, loaded := false, false
	defer func() {
		if loadStarted && !loaded {
			cancel()
			if err := <-loadDone; err != nil {
				say("the load generator stopped: %v", err)
			}
		}
	}()
	startAfter := 3 * cfg.Interval // a few idle observations first: the loop starts at 0

	var tl Timeline
	start := time.Now()
	ticker := time.NewTicker(cfg.Interval)
	defer ticker.Stop()
	var last Point
	stopped := func() error {
		if parent.Err() != nil {
			return fmt.Errorf("demo: interrupted: %w", parent.Err())
		}
		return fmt.Errorf("%w within %v: %v", ErrNoRoundTrip, cfg.Timeout, tl.Shape())
	}
	finish := func(err error) (Result, error) {
		res := Result{Timeline: tl, Shape: tl.Shape()}
		if werr := writeSVG(cfg.SVG, tl, res.Shape, cfg); werr != nil {
			return res, errors.Join(err, werr)
		}
		say("%s", res.Shape)
		say("timeline written to %s (open it in a browser)", cfg.SVG)
		return res, err
	}
	_, _ = fmt.Fprintln(out, Header())
	for {
		p, err := o.observe(ctx, time.Since(start))
		if err != nil {
			if ctx.Err() != nil {
				return finish(stopped())
			}
			return finish(fmt.Errorf("demo: %w", err))
		}
		tl = append(tl, p)
		if len(tl) == 1 || p.Changed(last) {
			_, _ = fmt.Fprintln(out, p.Line())
		}
		last = p
		if loaded && tl.Shape().RoundTrip() {
			return finish(nil)
		}
		if !loadStarted && p.At >= startAfter {
			loadStarted = true
			say("producing a burst of %d messages to topic %s with ebb's load generator", cfg.Burst, topic)
			go func() {
				st, err := loadgen.Run(ctx, sink, loadgen.Schedule{Burst: cfg.Burst}, loadgen.Options{Payload: []byte("order")})
				if err == nil && st.Confirmed != cfg.Burst {
					err = fmt.Errorf("%d of %d messages confirmed", st.Confirmed, cfg.Burst)
				}
				loadDone <- err
			}()
		}
		select {
		case <-ctx.Done():
			return finish(stopped())
		case err := <-loadDone:
			loaded = true
			if err != nil {
				return finish(fmt.Errorf("demo: producing: %w", err))
			}
			say("the broker confirmed all %d messages", cfg.Burst)
			<-ticker.C
		case <-ticker.C:
		}
	}
}

func writeSVG(path string, tl Timeline, s Shape, cfg Config) error {
	if path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	title := fmt.Sprintf("ebb dev --demo: a burst of %d messages, from 0 replicas and back", cfg.Burst)
	sub := fmt.Sprintf("%s; %g msg/s per simulated consumer", s, cfg.ConsumeRate)
	if cfg.ConsumerImage != "" {
		title = fmt.Sprintf("ebb dev --demo --node: a burst of %d messages, from 0 pods and back", cfg.Burst)
		sub = fmt.Sprintf("%s; %g msg/s per consumer pod", s, cfg.ConsumeRate)
	}
	werr := WriteSVG(f, tl, title, sub)
	if cerr := f.Close(); werr == nil && cerr != nil {
		werr = fmt.Errorf("demo: writing %s: %w", path, cerr)
	}
	return werr
}

// observer takes one Point at a time, and keeps the simulated consumers at the Deployment's replicas, or
// counts the pods and the group's members when the consumers are pods.
type observer struct {
	c                   client.Client
	adm                 *kadm.Client
	ns, sc, deploy, hpa string
	group, topic        string
	consumers           *Consumers          // nil when the consumers are pods
	pods                map[string]string   // the labels of the Deployment's pods, when they run
	seen                map[types.UID]int32 // event counts already reported
}

func (o *observer) observe(ctx context.Context, at time.Duration) (Point, error) {
	p := Point{At: at, HPADesired: -1}
	d := &appsv1.Deployment{}
	if err := o.c.Get(ctx, types.NamespacedName{Namespace: o.ns, Name: o.deploy}, d); err != nil {
		return p, fmt.Errorf("reading Deployment %s: %w", o.deploy, err)
	}
	if d.Spec.Replicas != nil {
		p.Replicas = *d.Spec.Replicas
	}
	if o.consumers != nil {
		p.Pods = -1
		if err := o.consumers.Scale(ctx, int(p.Replicas)); err != nil {
			return p, err
		}
		p.Consumers = o.consumers.Count()
	} else {
		pods := &corev1.PodList{}
		if err := o.c.List(ctx, pods, client.InNamespace(o.ns), client.MatchingLabels(o.pods)); err != nil {
			return p, fmt.Errorf("listing the pods of Deployment %s: %w", o.deploy, err)
		}
		p.Pods = RunningPods(pods.Items)
		members, err := GroupMembers(ctx, o.adm, o.group)
		if err != nil {
			return p, err
		}
		p.Consumers = members
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	switch err := o.c.Get(ctx, types.NamespacedName{Namespace: o.ns, Name: o.hpa}, hpa); {
	case err == nil:
		if hpa.Status.LastScaleTime != nil || hpa.Status.DesiredReplicas > 0 || len(hpa.Status.Conditions) > 0 {
			p.HPADesired = hpa.Status.DesiredReplicas
		}
	case !apierrors.IsNotFound(err):
		return p, fmt.Errorf("reading HPA %s: %w", o.hpa, err)
	}
	sc := &ebbv1.ScaledConsumer{}
	if err := o.c.Get(ctx, types.NamespacedName{Namespace: o.ns, Name: o.sc}, sc); err != nil {
		return p, fmt.Errorf("reading ScaledConsumer %s: %w", o.sc, err)
	}
	if c := meta.FindStatusCondition(sc.Status.Conditions, ebbv1.ConditionActive); c != nil {
		switch c.Status {
		case metav1.ConditionTrue:
			p.Active = "active"
		case metav1.ConditionFalse:
			p.Active = "idle"
			if strings.Contains(c.Message, "cooling down") {
				p.Active = "cooling"
			}
		}
	}
	lag, err := Lag(ctx, o.adm, o.group, o.topic)
	if err != nil {
		return p, err
	}
	p.Backlog = lag
	if p.Events, err = o.newEvents(ctx); err != nil {
		return p, err
	}
	return p, nil
}

// newEvents lists the events about the ScaledConsumer (ebb's) and its HPA (the HPA controller's) that
// appeared, or repeated, since the last call, oldest first.
func (o *observer) newEvents(ctx context.Context) ([]string, error) {
	var list eventsv1.EventList
	if err := o.c.List(ctx, &list, client.InNamespace(o.ns)); err != nil {
		return nil, fmt.Errorf("listing events: %w", err)
	}
	type ev struct {
		at   time.Time
		text string
	}
	var out []ev
	for _, e := range list.Items {
		var source string
		switch {
		case e.Regarding.Kind == "ScaledConsumer" && e.Regarding.Name == o.sc:
			source = "ebb"
		case e.Regarding.Kind == "HorizontalPodAutoscaler" && e.Regarding.Name == o.hpa:
			source = "hpa"
		default:
			continue
		}
		count := int32(1)
		if e.Series != nil {
			count = e.Series.Count
		} else if e.DeprecatedCount > 0 {
			count = e.DeprecatedCount
		}
		if o.seen[e.UID] >= count {
			continue
		}
		o.seen[e.UID] = count
		at := e.EventTime.Time
		if e.Series != nil {
			at = e.Series.LastObservedTime.Time
		} else if !e.DeprecatedLastTimestamp.IsZero() {
			at = e.DeprecatedLastTimestamp.Time
		} else if at.IsZero() {
			at = e.CreationTimestamp.Time
		}
		out = append(out, ev{at: at, text: source + " " + e.Reason + ": " + shortNote(source, e.Note)})
	}
	slices.SortStableFunc(out, func(a, b ev) int { return a.at.Compare(b.at) })
	texts := make([]string, len(out))
	for i, e := range out {
		texts[i] = e.text
	}
	return texts, nil
}

// shortNote trims the HPA controller's notes ("New size: 5; reason: external metric s0-lag(&LabelSelector{
// ...}) above target") to what fits a line.
func shortNote(source, note string) string {
	if source != "hpa" {
		return note
	}
	size, reason, ok := strings.Cut(note, "; reason: ")
	if !ok {
		return note
	}
	switch {
	case strings.Contains(reason, "above target"):
		reason = "above target"
	case strings.Contains(reason, "below target"):
		reason = "below target"
	}
	return size + " (" + reason + ")"
}
