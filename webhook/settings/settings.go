// Package settings keeps the node policy's settings in memory: an informer on the one settings
// ConfigMap (names.SettingsConfigMap in the webhook's namespace, selected by name) parses each
// version once and publishes an immutable Snapshot through an atomic pointer, which the node
// handler reads on every review without locks or API calls. The rules are those of policy mode,
// where the same ConfigMap is the MutatingAdmissionPolicy's params:
//
//   - present and valid (policy.SettingsFromData): its settings;
//   - present but invalid: policy.DefaultSettings, and the problem is reported;
//   - absent, or not loaded yet: no settings, and opted-in nodes are left unchanged.
package settings

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
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/overcommit-dev/overcommit/shared/policy"
)

// State says whether the settings ConfigMap gave usable settings.
type State string

// States of a Snapshot.
const (
	// Valid: the ConfigMap's own settings apply.
	Valid State = "valid"
	// Invalid: the ConfigMap exists but does not parse or validate; the defaults apply.
	Invalid State = "invalid"
	// Missing: the ConfigMap does not exist or is not loaded yet; nodes are left unchanged.
	Missing State = "missing"
)

// Snapshot is the settings as last read. It is immutable once published.
type Snapshot struct {
	State State
	// Settings are the ConfigMap's (Valid) or policy.DefaultSettings (Invalid); zero when
	// Missing.
	Settings policy.Settings
	// Problem says, naming the ConfigMap, why the settings are Invalid or Missing; "" when Valid.
	Problem string
	// ResourceVersion is the ConfigMap version read; "" when Missing.
	ResourceVersion string
}

// Parse returns the snapshot of the ConfigMap namespace/name, or of its absence when cm is nil.
func Parse(namespace, name string, cm *corev1.ConfigMap) *Snapshot {
	if cm == nil {
		return &Snapshot{State: Missing, Problem: fmt.Sprintf("settings ConfigMap %s/%s not found", namespace, name)}
	}
	s, err := policy.SettingsFromData(cm.Data)
	if err != nil {
		return &Snapshot{State: Invalid, Settings: policy.DefaultSettings().WithConfirmation(cm.Data), ResourceVersion: cm.ResourceVersion,
			Problem: fmt.Sprintf("settings ConfigMap %s/%s is invalid (%v); using the defaults", namespace, name, err)}
	}
	return &Snapshot{State: Valid, Settings: s.WithConfirmation(cm.Data), ResourceVersion: cm.ResourceVersion}
}

// Fixed returns a pointer holding a Valid snapshot of s, for a node handler without a cluster
// connection to read settings from (tests).
func Fixed(s policy.Settings) *atomic.Pointer[Snapshot] {
	p := &atomic.Pointer[Snapshot]{}
	p.Store(&Snapshot{State: Valid, Settings: s})
	return p
}

// Unavailable returns a pointer holding a Missing snapshot that says why: the webhook without a
// cluster connection cannot read the ConfigMap and leaves nodes unchanged.
func Unavailable(problem string) *atomic.Pointer[Snapshot] {
	p := &atomic.Pointer[Snapshot]{}
	p.Store(&Snapshot{State: Missing, Problem: problem})
	return p
}

// Options configure a Watcher.
type Options struct {
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// Watcher follows one settings ConfigMap.
type Watcher struct {
	namespace, name string
	log             *slog.Logger
	informer        cache.SharedIndexInformer
	// handled reports that the events of the first list reached this watcher's handler.
	handled cache.ResourceEventHandlerRegistration

	mu      sync.Mutex // serialises event handling and the first-sync transition
	current atomic.Pointer[Snapshot]
	// initial is the snapshot before the first list: Missing, "not loaded yet".
	initial *Snapshot

	state *prometheus.GaugeVec
}

// New creates a Watcher for the ConfigMap namespace/name; Run starts it.
func New(client kubernetes.Interface, namespace, name string, o Options) (*Watcher, error) {
	if namespace == "" || name == "" {
		return nil, errors.New("settings: the ConfigMap's namespace and name are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			// Only this ConfigMap enters the cache.
			lo.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}),
	)
	w := &Watcher{
		namespace: namespace,
		name:      name,
		log:       o.Log,
		informer:  factory.Core().V1().ConfigMaps().Informer(),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "overcommit_settings",
			Help: "1 for the state of the settings ConfigMap the node policy uses (valid; invalid: the defaults apply; missing: opted-in nodes are left unchanged), else 0.",
		}, []string{"state"}),
	}
	w.initial = &Snapshot{State: Missing, Problem: fmt.Sprintf("settings ConfigMap %s/%s not loaded yet", namespace, name)}
	w.current.Store(w.initial)
	w.setState(Missing)
	if o.Registerer != nil {
		o.Registerer.MustRegister(w.state)
	}
	reg, err := w.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.upsert(obj) },
		UpdateFunc: func(_, obj any) { w.upsert(obj) },
		DeleteFunc: w.remove,
	})
	if err != nil {
		return nil, fmt.Errorf("settings: adding event handler: %w", err)
	}
	w.handled = reg
	return w, nil
}

// Run starts the informer; it stops with ctx. Once the first list is loaded without the
// ConfigMap, the settings are reported missing rather than not loaded.
func (w *Watcher) Run(ctx context.Context) {
	go w.informer.RunWithContext(ctx)
	go func() {
		if !cache.WaitForCacheSync(ctx.Done(), w.handled.HasSynced) {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		// The first list's events are handled: still nothing means there was no ConfigMap.
		if w.current.Load() == w.initial {
			w.publishLocked(Parse(w.namespace, w.name, nil))
		}
	}()
}

// HasSynced reports whether the first list has been loaded and handled (for readiness): from
// then on a Missing snapshot means the ConfigMap does not exist.
func (w *Watcher) HasSynced() bool { return w.handled.HasSynced() }

// Pointer is where the current Snapshot is published; it is never nil.
func (w *Watcher) Pointer() *atomic.Pointer[Snapshot] { return &w.current }

func (w *Watcher) upsert(obj any) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		w.log.Error("unexpected object in the settings informer", "type", fmt.Sprintf("%T", obj))
		return
	}
	if cm.Name != w.name || cm.Namespace != w.namespace {
		return // the field selector keeps others out; a client that ignores it must not matter
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if cur := w.current.Load(); cur.ResourceVersion != "" && cur.ResourceVersion == cm.ResourceVersion {
		return // a resync: parsed already
	}
	w.publishLocked(Parse(w.namespace, w.name, cm))
}

func (w *Watcher) remove(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if cm, ok := obj.(*corev1.ConfigMap); ok && (cm.Name != w.name || cm.Namespace != w.namespace) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.publishLocked(Parse(w.namespace, w.name, nil))
}

// publishLocked swaps in next and logs the change, if any.
func (w *Watcher) publishLocked(next *Snapshot) {
	prev := w.current.Swap(next)
	w.setState(next.State)
	if prev != nil && prev.State == next.State && operatorSettings(prev.Settings) == operatorSettings(next.Settings) && prev.Problem == next.Problem {
		return // a new version with the same content, or only a new confirmation of usage targets
	}
	attrs := []any{"configMap", w.namespace + "/" + w.name, "resourceVersion", next.ResourceVersion}
	switch next.State {
	case Valid:
		w.log.Info("node policy settings loaded", append(attrs, settingsAttrs(next.Settings)...)...)
	case Invalid:
		w.log.Error("node policy settings are invalid; the node policy uses the defaults until they are fixed",
			append(append(attrs, "problem", next.Problem), settingsAttrs(next.Settings)...)...)
	case Missing:
		w.log.Warn("no node policy settings; opted-in nodes are left unchanged (no overcommit) until the ConfigMap exists",
			append(attrs, "problem", next.Problem)...)
	}
}

func (w *Watcher) setState(s State) {
	for _, st := range []State{Valid, Invalid, Missing} {
		v := 0.0
		if st == s {
			v = 1
		}
		w.state.WithLabelValues(string(st)).Set(v)
	}
}

func settingsAttrs(s policy.Settings) []any {
	return []any{
		"defaultCPURatio", s.CPU.Default.String(), "maxCPURatio", s.CPU.Max.String(),
		"defaultMemoryRatio", s.Memory.Default.String(), "maxMemoryRatio", s.Memory.Max.String(),
		"usageMargin", s.UsageMargin.String(), "metricsMaxAge", s.MaxMetricsAge.String(),
	}
}

// operatorSettings is s without what the webhook itself writes (the usage targets' confirmation,
// every round in policy mode), for telling an operator's change from our own.
func operatorSettings(s policy.Settings) policy.Settings {
	s.TargetsConfirmedAt = time.Time{}
	return s
}
