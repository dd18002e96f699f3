package usage

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/webhook/settings"
)

// PublishOptions configure a Publisher.
type PublishOptions struct {
	// Interval is the time between rounds (the metrics refresh interval).
	Interval time.Duration
	// Threshold is how far, as a fraction of the node's raw allocatable, a target must move
	// before it is rewritten.
	Threshold policy.Ratio
	// MinRaiseInterval is the least time between two raising writes of one node's target;
	// lowering writes are never held back.
	MinRaiseInterval time.Duration
	Log              *slog.Logger
	Registerer       prometheus.Registerer
}

// Publisher writes, in policy mode, each usage-policy node's target (names.UsageTargetAnnotation)
// where the in-apiserver policy reads it, and after each complete round confirms all of them
// with one timestamp in the settings ConfigMap (policy.KeyUsageTargetsConfirmedAt). A round that
// cannot vouch for every target (metrics missing, a write failed) confirms nothing: the
// confirmation ages out and the policy keeps raw allocatable, as the webhook does without data.
type Publisher struct {
	kube      kubernetes.Interface
	source    *Source
	settings  *atomic.Pointer[settings.Snapshot]
	namespace string
	configMap string
	o         PublishOptions

	nodes cache.SharedIndexInformer

	mu        sync.Mutex
	lastRaise map[string]time.Time
	writes    *prometheus.CounterVec
	rounds    *prometheus.CounterVec
}

// NewPublisher builds a Publisher; Run starts it.
func NewPublisher(kube kubernetes.Interface, source *Source, s *atomic.Pointer[settings.Snapshot], namespace, configMap string, o PublishOptions) *Publisher {
	p := &Publisher{kube: kube, source: source, settings: s, namespace: namespace, configMap: configMap, o: o,
		lastRaise: map[string]time.Time{},
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overcommit_usage_target_writes_total",
			Help: "Node usage-target writes in policy mode, by kind (raise, lower, remove) and result (ok, error).",
		}, []string{"kind", "result"}),
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overcommit_usage_target_rounds_total",
			Help: "Publishing rounds in policy mode, by result (confirmed, skipped).",
		}, []string{"result"}),
	}
	o.Registerer.MustRegister(p.writes, p.rounds)
	p.nodes = informers.NewSharedInformerFactoryWithOptions(kube, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.LabelSelector = names.EnabledLabel + "=" + names.EnabledValue
		}),
		informers.WithTransform(stripNode),
	).Core().V1().Nodes().Informer()
	return p
}

// stripNode keeps what a round reads of an opted-in node: its name, overcommit's annotations and
// its allocatable.
func stripNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	out := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, ResourceVersion: n.ResourceVersion, Annotations: map[string]string{}},
		Status: corev1.NodeStatus{Allocatable: policy.Pick(n.Status.Allocatable)}}
	for k, v := range n.Annotations {
		if strings.HasPrefix(k, names.Prefix) {
			out.Annotations[k] = v
		}
	}
	return out, nil
}

// Run publishes every Interval until ctx ends.
func (p *Publisher) Run(ctx context.Context) {
	go p.nodes.Run(ctx.Done())
	t := time.NewTicker(p.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := p.Round(ctx, time.Now()); err != nil {
			p.rounds.WithLabelValues("skipped").Inc()
			p.o.Log.Warn("usage targets not confirmed this round; policy mode keeps raw allocatable once the last confirmation is too old", "err", err)
			continue
		}
		p.rounds.WithLabelValues("confirmed").Inc()
	}
}

// Round publishes the targets that moved and confirms them; an error means nothing was confirmed.
func (p *Publisher) Round(ctx context.Context, now time.Time) error {
	snap := p.settings.Load()
	if snap.State == settings.Missing {
		return fmt.Errorf("%s", snap.Problem)
	}
	s := snap.Settings
	if !p.source.Synced() {
		return fmt.Errorf("pod cache not synced yet")
	}
	if !p.nodes.HasSynced() {
		return fmt.Errorf("node cache not synced yet")
	}
	oldest := now
	var failed int
	for _, obj := range p.nodes.GetStore().List() {
		n := obj.(*corev1.Node)
		current, has := n.Annotations[names.UsageTargetAnnotation]
		if pol, _ := policy.ForNode(n.Annotations); pol != names.PolicyUsage {
			if has && p.write(ctx, n.Name, nil, "remove") != nil {
				failed++
			}
			continue
		}
		target, sampled := p.target(n.Name, s, now)
		if target == nil {
			if has && p.write(ctx, n.Name, nil, "remove") != nil {
				failed++
			}
			continue
		}
		if sampled.Before(oldest) {
			oldest = sampled
		}
		kind := p.decide(n, current, has, target, now)
		if kind == "" {
			continue
		}
		value := target.String()
		if p.write(ctx, n.Name, &value, kind) != nil {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d usage-target writes failed", failed)
	}
	return p.confirm(ctx, oldest)
}

// target is the node's target from a sample fresh enough to publish, and when it was measured.
func (p *Publisher) target(node string, s policy.Settings, now time.Time) (policy.UsageTarget, time.Time) {
	sample, _ := p.source.Sample(node)
	if sample == nil || sample.Usage == nil || now.Sub(sample.Timestamp) > s.MaxMetricsAge {
		return nil, time.Time{}
	}
	t, _ := policy.TargetFromSample(*sample, s.UsageMargin)
	return t, sample.Timestamp
}

// decide says whether to rewrite a node's target, and as what kind of write: a target that fell
// by more than the threshold at once, one that rose only after MinRaiseInterval since the last
// raise, an unreadable one always; "" when the published one is close enough.
func (p *Publisher) decide(n *corev1.Node, current string, has bool, next policy.UsageTarget, now time.Time) string {
	if !has {
		return p.raise(n.Name, now)
	}
	prev, err := policy.ParseUsageTarget(current)
	if err != nil {
		return "lower"
	}
	raw := rawAllocatable(n)
	rises := false
	for _, name := range policy.Resources {
		delta := next[name] - prev[name]
		limit := p.o.Threshold.Of(raw[name])
		switch {
		case delta < -limit:
			return "lower"
		case delta > limit:
			rises = true
		}
	}
	if !rises {
		return ""
	}
	return p.raise(n.Name, now)
}

func (p *Publisher) raise(node string, now time.Time) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if last, ok := p.lastRaise[node]; ok && now.Sub(last) < p.o.MinRaiseInterval {
		return ""
	}
	p.lastRaise[node] = now
	return "raise"
}

// rawAllocatable is the node's kubelet-reported allocatable in the policy's amounts: the raw
// record when readable, else what is stored.
func rawAllocatable(n *corev1.Node) map[corev1.ResourceName]int64 {
	l := n.Status.Allocatable
	if r, err := policy.ParseRaw(n.Annotations[names.RawAnnotation]); err == nil {
		l = r.Allocatable
	}
	out := map[corev1.ResourceName]int64{}
	for _, name := range policy.Resources {
		if q, ok := l[name]; ok {
			out[name] = min(policy.Amount(name, q), policy.MaxAmount)
		}
	}
	return out
}

// write sets (value non-nil) or removes a node's target with a metadata merge patch.
func (p *Publisher) write(ctx context.Context, node string, value *string, kind string) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]*string{names.UsageTargetAnnotation: value}}})
	_, err := p.kube.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: names.UsageTargetFieldManager})
	result := "ok"
	if err != nil {
		result = "error"
		p.o.Log.Warn("writing a node's usage target", "node", node, "kind", kind, "err", err)
	}
	p.writes.WithLabelValues(kind, result).Inc()
	return err
}

// confirm stamps the settings ConfigMap: every published target is from a sample measured at or
// after at.
func (p *Publisher) confirm(ctx context.Context, at time.Time) error {
	patch, _ := json.Marshal(map[string]any{"data": map[string]string{
		policy.KeyUsageTargetsConfirmedAt: strconv.FormatInt(at.Unix(), 10)}})
	_, err := p.kube.CoreV1().ConfigMaps(p.namespace).Patch(ctx, p.configMap, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: names.UsageTargetFieldManager})
	if err != nil {
		return fmt.Errorf("confirming the usage targets in ConfigMap %s/%s: %w", p.namespace, p.configMap, err)
	}
	return nil
}
