package usage

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/webhook/settings"
)

// PublishOptions configure a Publisher.
type PublishOptions struct {
	// Interval is the time between rounds (the metrics refresh interval).
	Interval time.Duration
	// Threshold is how far, as a fraction of the node's raw allocatable, a published value (a
	// resource's reclaim in the usage target, or its summed requests) must move before it is
	// rewritten. The usage statistic's own hysteresis (shared/history) already decides when a
	// target may rise; the threshold only bounds the writes.
	Threshold  policy.Ratio
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// sampler is what a Publisher reads of a Source.
type sampler interface {
	Synced() bool
	Sample(node string) (*policy.UsageSample, string)
	Requests(node string) (corev1.ResourceList, string)
}

// Publisher writes, in policy mode, where the in-apiserver policy reads them: each usage-policy
// node's target (names.UsageTargetAnnotation, with the statistic it came from) and every
// opted-in node's summed pod requests (names.RequestsAnnotation, which the pressure guard holds
// allocatable at). After each complete round it confirms all of them with one timestamp in the
// settings ConfigMap (policy.KeyUsageTargetsConfirmedAt). A round that cannot vouch for every
// record (metrics missing, a write failed) confirms nothing: the confirmation ages out and the
// policy keeps raw allocatable, as the webhook does without data.
type Publisher struct {
	kube      kubernetes.Interface
	source    sampler
	settings  *atomic.Pointer[settings.Snapshot]
	namespace string
	configMap string
	o         PublishOptions

	nodes *NodeCache

	writes *prometheus.CounterVec
	rounds *prometheus.CounterVec
}

// NewPublisher builds a Publisher over the node cache nodes, which its owner runs; Run starts it.
func NewPublisher(kube kubernetes.Interface, nodes *NodeCache, source *Source, s *atomic.Pointer[settings.Snapshot], namespace, configMap string, o PublishOptions) *Publisher {
	return newPublisher(kube, nodes, source, s, namespace, configMap, o)
}

func newPublisher(kube kubernetes.Interface, nodes *NodeCache, source sampler, s *atomic.Pointer[settings.Snapshot], namespace, configMap string, o PublishOptions) *Publisher {
	p := &Publisher{kube: kube, nodes: nodes, source: source, settings: s, namespace: namespace, configMap: configMap, o: o,
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overcommit_usage_target_writes_total",
			Help: "Node writes in policy mode, by kind (raise, lower, remove: of the usage target; requests: of the requests record alone) and result (ok, error). One write carries both records when both moved.",
		}, []string{"kind", "result"}),
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overcommit_usage_target_rounds_total",
			Help: "Publishing rounds in policy mode, by result (confirmed, skipped).",
		}, []string{"result"}),
	}
	o.Registerer.MustRegister(p.writes, p.rounds)
	return p
}

// Run publishes every Interval until ctx ends.
func (p *Publisher) Run(ctx context.Context) {
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
			p.o.Log.Warn("usage targets and requests not confirmed this round; policy mode keeps raw allocatable once the last confirmation is too old", "err", err)
			continue
		}
		p.rounds.WithLabelValues("confirmed").Inc()
	}
}

// Round publishes the records that moved and confirms them; an error means nothing was confirmed.
func (p *Publisher) Round(ctx context.Context, now time.Time) error {
	snap := p.settings.Load()
	if snap.State == settings.Missing {
		return fmt.Errorf("%s", snap.Problem)
	}
	s := snap.Settings
	if !p.source.Synced() {
		return fmt.Errorf("pod cache not synced yet")
	}
	if !p.nodes.Synced() {
		return fmt.Errorf("node cache not synced yet")
	}
	oldest := now
	all := p.nodes.Nodes()
	var failed int
	var last error
	for _, n := range all {
		u, err := p.plan(n, s, now)
		if !u.sampled.IsZero() && u.sampled.Before(oldest) {
			oldest = u.sampled
		}
		if len(u.annotations) > 0 {
			if werr := p.write(ctx, n.Name, u.annotations, u.kind); werr != nil {
				err = fmt.Errorf("node %s: %w", n.Name, werr)
			}
		}
		if err != nil {
			failed++
			last = err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d nodes not published, last: %w", failed, len(all), last)
	}
	return p.confirm(ctx, oldest)
}

// update is one node's merge patch of the published records: a value to set, or nil to remove
// the annotation. kind labels the write in the metrics.
type update struct {
	annotations map[string]*string
	kind        string
	// sampled is when the newest sample behind the node's usage target was measured; zero
	// when the node has no target.
	sampled time.Time
}

// plan says what to write on one node: its usage target if it moved (or its removal), and its
// requests record if they moved, in one patch. An error means the node's requests are unknown,
// so the round cannot vouch for them.
func (p *Publisher) plan(n *corev1.Node, s policy.Settings, now time.Time) (update, error) {
	u := update{annotations: map[string]*string{}}
	raw := rawAllocatable(n)
	current, has := n.Annotations[names.UsageTargetAnnotation]
	var target policy.UsageTarget
	var stat *policy.Statistic
	if pol, _ := policy.ForNode(n.Annotations); pol == names.PolicyUsage {
		target, stat, u.sampled = p.target(n.Name, raw, s, now)
	}
	switch {
	case target == nil && has:
		u.annotations[names.UsageTargetAnnotation], u.kind = nil, "remove"
	case target != nil:
		if kind := p.decide(current, has, target, stat, raw); kind != "" {
			v := target.Format(stat)
			u.annotations[names.UsageTargetAnnotation], u.kind = &v, kind
		}
	}
	req, why := p.source.Requests(n.Name)
	if req == nil {
		return u, fmt.Errorf("node %s: %s", n.Name, why)
	}
	text, has := n.Annotations[names.RequestsAnnotation]
	if p.requestsMoved(text, has, req, raw) {
		v := policy.FormatRequests(req)
		u.annotations[names.RequestsAnnotation] = &v
		if u.kind == "" {
			u.kind = "requests"
		}
	}
	return u, nil
}

// target is the node's target from a statistic fresh enough to publish, the statistic, and when
// its newest sample was measured. While the window is warming up the node counts as fully used
// (policy.WarmupTarget), as it does in webhook mode.
func (p *Publisher) target(node string, raw map[corev1.ResourceName]int64, s policy.Settings, now time.Time) (policy.UsageTarget, *policy.Statistic, time.Time) {
	sample, _ := p.source.Sample(node)
	if sample == nil || sample.Usage == nil || now.Sub(sample.Timestamp) > s.MaxMetricsAge {
		return nil, nil, time.Time{}
	}
	if sample.Statistic != nil && sample.Statistic.WarmingUp {
		return policy.WarmupTarget(sample.Requests, raw), sample.Statistic, sample.Timestamp
	}
	t, _ := policy.TargetFromSample(*sample, s.UsageMargin)
	return t, sample.Statistic, sample.Timestamp
}

// decide says whether to rewrite a node's published target, and as what kind of write: when it
// is missing or unreadable, when any resource's reclaim moved by more than the threshold in
// either direction, or when the node entered or left warm-up; "" when the published one is close
// enough. The statistic's window and sample counts move every round and never cause a write on
// their own: the record says what the target came from when it was written.
func (p *Publisher) decide(current string, has bool, next policy.UsageTarget, stat *policy.Statistic, raw map[corev1.ResourceName]int64) string {
	if !has {
		return "raise"
	}
	prev, prevStat, err := policy.ParsePublishedTarget(current)
	if err != nil {
		return "lower"
	}
	var lower, raise bool
	for _, name := range policy.Resources {
		delta := next[name] - prev[name]
		limit := p.o.Threshold.Of(raw[name])
		switch {
		case delta < -limit:
			lower = true
		case delta > limit:
			raise = true
		}
	}
	switch {
	case lower:
		return "lower"
	case raise:
		return "raise"
	case warmingUp(stat) && !warmingUp(prevStat):
		return "lower"
	case warmingUp(prevStat) && !warmingUp(stat), (prevStat == nil) != (stat == nil):
		// Leaving warm-up, or a record written without a statistic: the target itself has not
		// moved far, but the record must say what it now comes from.
		return "raise"
	}
	return ""
}

func warmingUp(s *policy.Statistic) bool { return s != nil && s.WarmingUp }

// requestsMoved says whether a node's requests record must be rewritten: missing, unreadable, or
// off by more than the threshold of raw allocatable for any resource.
func (p *Publisher) requestsMoved(current string, has bool, next corev1.ResourceList, raw map[corev1.ResourceName]int64) bool {
	if !has {
		return true
	}
	prev, err := policy.ParseRequests(current)
	if err != nil {
		return true
	}
	for _, name := range policy.Resources {
		var v int64
		if q, ok := next[name]; ok {
			v = min(policy.Amount(name, q), policy.MaxAmount)
		}
		limit := p.o.Threshold.Of(raw[name])
		if d := v - prev[name]; d > limit || d < -limit {
			return true
		}
	}
	return false
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

// write applies one node's update with a metadata merge patch: a nil value removes its
// annotation.
func (p *Publisher) write(ctx context.Context, node string, annotations map[string]*string, kind string) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	_, err := p.kube.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: names.UsageTargetFieldManager})
	result := "ok"
	if err != nil {
		result = "error"
		p.o.Log.Warn("writing a node's published records", "node", node, "kind", kind, "err", err)
	}
	p.writes.WithLabelValues(kind, result).Inc()
	return err
}

// confirm stamps the settings ConfigMap: every published target is from a sample measured at or
// after at, and every requests record was within the threshold of the pod cache's sums.
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
