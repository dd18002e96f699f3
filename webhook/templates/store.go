// Package templates keeps the sidecar templates in memory: a ConfigMap informer on the webhook's
// namespace, filtered by the template label, parses every version once and publishes an immutable
// snapshot that the pod handler reads without locks or API calls. Editing a ConfigMap takes effect
// for the next pod; a template that does not parse is logged, counted and skipped, and the others
// keep working.
package templates

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/sidecar"
)

// ErrNotReady is returned by Get until the first list of ConfigMaps has been loaded.
var ErrNotReady = errors.New("sidecar templates are not loaded yet")

// Options configure a Store.
type Options struct {
	Log        *slog.Logger
	Registerer prometheus.Registerer
	// Resync re-delivers every ConfigMap periodically; zero disables it (watch events suffice).
	Resync time.Duration
}

// Store is the set of sidecar templates in one namespace.
type Store struct {
	namespace string
	log       *slog.Logger
	informer  cache.SharedIndexInformer

	mu      sync.Mutex       // serialises event handling
	entries map[string]entry // by ConfigMap name; guarded by mu

	snap atomic.Pointer[sidecar.Set] // immutable once published

	count       *prometheus.GaugeVec
	parseErrors prometheus.Counter
}

type entry struct {
	resourceVersion string
	template        *sidecar.Template
	err             error
}

// New creates a Store for the templates in namespace; Run starts it.
func New(client kubernetes.Interface, namespace string, o Options) (*Store, error) {
	if namespace == "" {
		return nil, errors.New("templates: namespace is required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, o.Resync,
		informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			// Any value of the label marks a template; other ConfigMaps never enter the cache.
			lo.LabelSelector = names.SidecarTemplateLabel
		}),
	)
	s := &Store{
		namespace: namespace,
		log:       o.Log,
		informer:  factory.Core().V1().ConfigMaps().Informer(),
		entries:   map[string]entry{},
		count: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "overcommit_sidecar_templates",
			Help: "Sidecar templates loaded, by state (valid: injectable; invalid: skipped, see the logs or kubectl overcommit sidecars).",
		}, []string{"state"}),
		parseErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "overcommit_sidecar_template_errors_total",
			Help: "Sidecar template ConfigMap versions that failed to parse or validate.",
		}),
	}
	s.snap.Store(s.newSet())
	// Both states exist from the start, so an alert on invalid > 0 has a series to watch.
	s.count.WithLabelValues("valid").Set(0)
	s.count.WithLabelValues("invalid").Set(0)
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.count, s.parseErrors)
	}
	if _, err := s.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.upsert(obj) },
		UpdateFunc: func(_, obj any) { s.upsert(obj) },
		DeleteFunc: s.remove,
	}); err != nil {
		return nil, fmt.Errorf("templates: adding event handler: %w", err)
	}
	return s, nil
}

// Run starts the informer; it stops with ctx.
func (s *Store) Run(ctx context.Context) {
	go s.informer.RunWithContext(ctx)
}

// HasSynced reports whether the first list has been loaded (for readiness).
func (s *Store) HasSynced() bool { return s.informer.HasSynced() }

// Namespace is where the templates live.
func (s *Store) Namespace() string { return s.namespace }

// Get returns the named template, or why it cannot be injected: not found (wraps
// sidecar.ErrNotFound), invalid (wraps sidecar.ErrInvalid) or not loaded yet (ErrNotReady).
func (s *Store) Get(name string) (*sidecar.Template, error) {
	if !s.informer.HasSynced() {
		return nil, fmt.Errorf("%w (namespace %s)", ErrNotReady, s.namespace)
	}
	return s.snap.Load().Get(name)
}

// Names returns the valid templates' names, sorted.
func (s *Store) Names() []string { return s.snap.Load().Names() }

// Invalid returns the invalid templates and why.
func (s *Store) Invalid() map[string]error { return s.snap.Load().Invalid() }

// newSet is an empty set whose not-found errors say where templates are looked for.
func (s *Store) newSet() *sidecar.Set {
	return sidecar.NewSet(fmt.Sprintf(": no ConfigMap labelled %s in namespace %s", names.SidecarTemplateLabel, s.namespace))
}

func (s *Store) upsert(obj any) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		s.log.Error("unexpected object in the template informer", "type", fmt.Sprintf("%T", obj))
		return
	}
	if _, labelled := cm.Labels[names.SidecarTemplateLabel]; !labelled {
		// The apiserver turns an unlabelled ConfigMap into a deletion for a filtered watch;
		// do the same for anything that delivers it as an update.
		s.remove(cm)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[cm.Name]; ok && e.resourceVersion != "" && e.resourceVersion == cm.ResourceVersion {
		return // a resync: parsed already
	}
	t, err := sidecar.FromConfigMap(cm.Name, cm.Data)
	s.entries[cm.Name] = entry{resourceVersion: cm.ResourceVersion, template: t, err: err}
	if err != nil {
		s.parseErrors.Inc()
		s.log.Error("sidecar template is invalid and skipped; pods asking for it are denied",
			"template", cm.Name, "namespace", cm.Namespace, "resourceVersion", cm.ResourceVersion, "err", err)
	} else {
		s.log.Info("sidecar template loaded", "template", cm.Name, "namespace", cm.Namespace, "resourceVersion", cm.ResourceVersion,
			"native", t.Native, "containers", len(t.Containers), "initContainers", len(t.InitContainers))
	}
	s.publishLocked()
}

func (s *Store) remove(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		s.log.Error("unexpected object deleted from the template informer", "type", fmt.Sprintf("%T", obj))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, cm.Name)
	s.log.Info("sidecar template removed", "template", cm.Name, "namespace", cm.Namespace)
	s.publishLocked()
}

// publishLocked swaps in a new snapshot built from the entries.
func (s *Store) publishLocked() {
	next := s.newSet()
	for name, e := range s.entries {
		next.Put(name, e.template, e.err)
	}
	s.snap.Store(next)
	valid, invalid := next.Len()
	s.count.WithLabelValues("valid").Set(float64(valid))
	s.count.WithLabelValues("invalid").Set(float64(invalid))
}
