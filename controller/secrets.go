package controller

import (
	"context"
	"sync"

	"github.com/go-logr/logr"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

// indexSecret is the field index of TriggerAuthentications by the names of the Secrets they read.
const indexSecret = "ebb.dev/secret"

// secretNames is the value of the indexSecret field index of ta: the Secrets it reads, each once.
func secretNames(ta *ebbv1.TriggerAuthentication) []string {
	var names []string
	seen := map[string]bool{}
	for _, s := range ta.Spec.SecretTargetRef {
		if !seen[s.Name] {
			seen[s.Name] = true
			names = append(names, s.Name)
		}
	}
	return names
}

// secretWatch tells the reconciler about changes to the Secrets that TriggerAuthentications read, so a
// corrected password reaches the triggers without touching the TriggerAuthentication. It watches the
// metadata of Secrets only (never their data), keeps nothing of them but name, namespace and resource
// version, and remembers a version only for a Secret that changed after the first list and that a
// TriggerAuthentication reads: the poll's fingerprint includes it, so the poll (and with it the broker
// connection, keyed by the credentials) is built again from the new value.
type secretWatch struct {
	meta metadata.Interface
	c    client.Client
	wake func(ctx context.Context, key types.NamespacedName)

	mu       sync.Mutex
	versions map[types.NamespacedName]string
}

// version is what the fingerprint of a poll reading Secret name in namespace includes: its resource
// version when it changed since ebb started, else "".
func (w *secretWatch) version(namespace, name string) string {
	if w == nil {
		return ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.versions[types.NamespacedName{Namespace: namespace, Name: name}]
}

// Start runs the watch until ctx ends. A watch the API server refuses (RBAC without list and watch on
// secrets) is retried by the informer and logged; reconciles go on, and a changed Secret is then seen
// at the next change of its TriggerAuthentication, as before this watch existed.
func (w *secretWatch) Start(ctx context.Context) error {
	secrets := w.meta.Resource(corev1.SchemeGroupVersion.WithResource("secrets"))
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return secrets.List(withoutBodies(ctx), opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return secrets.Watch(withoutBodies(ctx), opts)
		},
	}
	inf := toolscache.NewSharedIndexInformer(lw, &metav1.PartialObjectMetadata{}, 0, toolscache.Indexers{})
	if err := inf.SetTransform(stripSecretMeta); err != nil {
		return err
	}
	_, err := inf.AddEventHandler(toolscache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if !initial {
				w.changed(ctx, obj, false)
			}
		},
		UpdateFunc: func(old, obj any) {
			if o, ok := old.(*metav1.PartialObjectMetadata); ok {
				if n, ok := obj.(*metav1.PartialObjectMetadata); ok && o.ResourceVersion == n.ResourceVersion {
					return
				}
			}
			w.changed(ctx, obj, false)
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			w.changed(ctx, obj, true)
		},
	})
	if err != nil {
		return err
	}
	inf.Run(ctx.Done())
	return nil
}

// NeedLeaderElection: only the leader reconciles.
func (w *secretWatch) NeedLeaderElection() bool { return true }

// changed records a Secret's new version when a TriggerAuthentication reads it, and wakes the
// ScaledConsumers that use those TriggerAuthentications.
func (w *secretWatch) changed(ctx context.Context, obj any, deleted bool) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return
	}
	tas := &ebbv1.TriggerAuthenticationList{}
	if err := w.c.List(ctx, tas, client.InNamespace(m.Namespace), client.MatchingFields{indexSecret: m.Name}); err != nil {
		log.FromContext(ctx).V(1).Info("listing the TriggerAuthentications of a changed Secret", "error", err, "namespace", m.Namespace, "secret", m.Name)
		return
	}
	if len(tas.Items) == 0 {
		return
	}
	version := m.ResourceVersion
	if deleted {
		version = "deleted after " + version
	}
	w.mu.Lock()
	if w.versions == nil {
		w.versions = map[types.NamespacedName]string{}
	}
	w.versions[types.NamespacedName{Namespace: m.Namespace, Name: m.Name}] = version
	w.mu.Unlock()
	for _, ta := range tas.Items {
		scs := &ebbv1.ScaledConsumerList{}
		if err := w.c.List(ctx, scs, client.InNamespace(m.Namespace), client.MatchingFields{indexAuth: ta.Name}); err != nil {
			log.FromContext(ctx).Error(err, "listing the ScaledConsumers of a TriggerAuthentication", "namespace", m.Namespace, "triggerAuthentication", ta.Name)
			continue
		}
		for _, sc := range scs.Items {
			w.wake(ctx, types.NamespacedName{Namespace: sc.Namespace, Name: sc.Name})
		}
	}
}

// stripSecretMeta keeps a Secret's name, namespace, UID and resource version: labels, annotations
// (kubectl's last-applied-configuration holds the data) and managed fields are not kept in memory.
func stripSecretMeta(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
	}}, nil
}

// bodyLevel is the verbosity from which client-go logs request and response bodies.
const bodyLevel = 8

// withoutBodies returns ctx with its logger (client-go's, from klog.FromContext) made deaf from
// bodyLevel up, for requests whose bodies hold secrets: a Secret's data, or its metadata, whose
// last-applied-configuration annotation holds the data when kubectl apply wrote it. Everything below
// (request lines, status codes, errors) is logged as before.
func withoutBodies(ctx context.Context) context.Context {
	sink := klog.FromContext(ctx).GetSink()
	if sink == nil {
		return ctx
	}
	return klog.NewContext(ctx, logr.New(bodyless{sink}))
}

// bodyless passes what its sink logs below bodyLevel.
type bodyless struct{ logr.LogSink }

func (b bodyless) Enabled(level int) bool            { return level < bodyLevel && b.LogSink.Enabled(level) }
func (b bodyless) WithValues(kv ...any) logr.LogSink { return bodyless{b.LogSink.WithValues(kv...)} }
func (b bodyless) WithName(name string) logr.LogSink { return bodyless{b.LogSink.WithName(name)} }
