package usage

import (
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// NodeTally is what the node gauges say about the opted-in nodes, in aggregate: one series per
// value whatever the number of nodes.
type NodeTally struct {
	OptedIn int
	// Differs counts the nodes whose stored cpu or memory allocatable is not what their applied
	// record says the node policy set. The policy stores both in the same write, so in a working
	// install they never disagree: a write stored without the policy did it (webhook unreachable
	// or CEL failing under failurePolicy Ignore, settings missing, the registration or binding
	// removed, or a writer that bypasses admission).
	Differs int
	// Unrecorded counts the nodes without a readable applied record: opted in but not written
	// through the policy since, or the record damaged.
	Unrecorded int
	// Gained is stored allocatable minus the raw record (the kubelet's own), summed over the
	// nodes with a readable raw record: millicores for cpu, bytes for memory. Float, so that no
	// sum over many nodes can overflow; exact up to 2^53.
	Gained map[corev1.ResourceName]float64
}

// NodeFacts is what one node adds to a NodeTally.
type NodeFacts struct {
	// Unrecorded: no readable applied record. Differs: one, and the stored allocatable is not it.
	Unrecorded, Differs bool
	// Gained is stored minus raw allocatable per resource, for the resources both carry within
	// the policy's bounds: none without a readable raw record.
	Gained map[corev1.ResourceName]int64
}

// FactsOf reads one opted-in node (as the node cache strips it).
func FactsOf(n *corev1.Node) NodeFacts {
	var f NodeFacts
	stored := n.Status.Allocatable
	applied, err := policy.ParseApplied(n.Annotations[names.AppliedAnnotation])
	switch {
	case err != nil:
		f.Unrecorded = true
	case !sameAllocatable(stored, applied.Allocatable):
		f.Differs = true
	}
	raw, err := policy.ParseRaw(n.Annotations[names.RawAnnotation])
	if err != nil {
		return f
	}
	for _, name := range policy.Resources {
		s, okStored := bounded(stored, name)
		r, okRaw := bounded(raw.Allocatable, name)
		if okStored && okRaw {
			if f.Gained == nil {
				f.Gained = map[corev1.ResourceName]int64{}
			}
			f.Gained[name] = s - r
		}
	}
	return f
}

// newTally is the tally of no nodes.
func newTally() NodeTally {
	t := NodeTally{Gained: map[corev1.ResourceName]float64{}}
	for _, name := range policy.Resources {
		t.Gained[name] = 0
	}
	return t
}

// add counts one node's facts.
func (t *NodeTally) add(f NodeFacts) {
	t.OptedIn++
	if f.Unrecorded {
		t.Unrecorded++
	}
	if f.Differs {
		t.Differs++
	}
	for name, v := range f.Gained {
		t.Gained[name] += float64(v)
	}
}

// TallyNodes is the tally of the opted-in nodes nodes (as the node cache strips them).
func TallyNodes(nodes []*corev1.Node) NodeTally {
	t := newTally()
	for _, n := range nodes {
		t.add(FactsOf(n))
	}
	return t
}

// sameAllocatable reports whether cpu and memory agree between a and b, by value ("4" is
// "4000m"); a resource missing from both agrees.
func sameAllocatable(a, b corev1.ResourceList) bool {
	for _, name := range policy.Resources {
		qa, okA := a[name]
		qb, okB := b[name]
		if okA != okB || (okA && qa.Cmp(qb) != 0) {
			return false
		}
	}
	return true
}

// bounded is the amount of name in l when l has it within [0, policy.MaxAmount]: a value the
// policy would not change (negative, absurdly large) adds nothing to the sums.
func bounded(l corev1.ResourceList, name corev1.ResourceName) (int64, bool) {
	q, ok := l[name]
	if !ok {
		return 0, false
	}
	v := policy.Amount(name, q)
	return v, v >= 0 && v <= policy.MaxAmount
}

// nodeCollector reports the node cache's tally at each scrape; nothing until the cache has
// synced, so that a partial list never reads as a fleet of a few nodes. Reading the records costs
// about 25 µs a node (regular expressions, quantities), 130 ms a scrape at 5,000 nodes: each
// node's facts are kept from one scrape to the next and read again only when what they come from
// changed. A kubelet re-sends its status every 10 s, so the node object changes far more often
// than its records and allocatable do.
type nodeCollector struct {
	cache                  *NodeCache
	optedIn, drift, gained *prometheus.Desc

	mu   sync.Mutex // scrapes may run concurrently
	memo map[string]*memoized
	// scrape numbers the scrapes: an entry of memo not seen in the latest is a node gone.
	scrape uint64
}

// memoized are one node's facts and the inputs they were read from.
type memoized struct {
	applied, raw string
	allocatable  corev1.ResourceList
	facts        NodeFacts
	seen         uint64
}

// matches reports whether n still has the inputs m was read from. The strings compare in
// constant time while the cache keeps the same ones, and in a few hundred bytes otherwise.
func (m *memoized) matches(n *corev1.Node) bool {
	return m.applied == n.Annotations[names.AppliedAnnotation] && m.raw == n.Annotations[names.RawAnnotation] &&
		sameAllocatable(m.allocatable, n.Status.Allocatable)
}

func memoOf(n *corev1.Node) *memoized {
	return &memoized{applied: n.Annotations[names.AppliedAnnotation], raw: n.Annotations[names.RawAnnotation],
		allocatable: n.Status.Allocatable, facts: FactsOf(n)}
}

// NewNodeCollector is the node gauges over c.
func NewNodeCollector(c *NodeCache) prometheus.Collector {
	return &nodeCollector{cache: c,
		optedIn: prometheus.NewDesc("overcommit_nodes_opted_in",
			"Nodes labelled "+names.EnabledLabel+"="+names.EnabledValue+", from the webhook's node cache.", nil, nil),
		drift: prometheus.NewDesc("overcommit_nodes_allocatable_drift",
			"Opted-in nodes whose stored allocatable is not the node policy's, by state: differs (stored cpu or memory allocatable is not what "+
				names.AppliedAnnotation+" records: a write was stored without the policy), unrecorded (no readable "+names.AppliedAnnotation+
				": opted in and not written since).", []string{"state"}, nil),
		gained: prometheus.NewDesc("overcommit_nodes_capacity_gained",
			"Stored allocatable minus the kubelet's own ("+names.RawAnnotation+"), summed over the opted-in nodes: cores for cpu, bytes for memory.",
			[]string{"resource", "unit"}, nil),
	}
}

// gainedUnits are the resource and unit labels and the divisor from the policy's amounts of each
// resource (base units, labelled as kube-state-metrics labels node resources). The labels are
// spelled here, where the monitoring component's tests find the values its rules match.
var gainedUnits = map[corev1.ResourceName]struct {
	resource, unit string
	scale          float64
}{corev1.ResourceCPU: {"cpu", "core", 1000}, corev1.ResourceMemory: {"memory", "byte", 1}}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.optedIn
	ch <- c.drift
	ch <- c.gained
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	if !c.cache.Synced() {
		return
	}
	t := c.tally(c.cache.Nodes())
	ch <- prometheus.MustNewConstMetric(c.optedIn, prometheus.GaugeValue, float64(t.OptedIn))
	ch <- prometheus.MustNewConstMetric(c.drift, prometheus.GaugeValue, float64(t.Differs), "differs")
	ch <- prometheus.MustNewConstMetric(c.drift, prometheus.GaugeValue, float64(t.Unrecorded), "unrecorded")
	for _, name := range policy.Resources {
		u := gainedUnits[name]
		ch <- prometheus.MustNewConstMetric(c.gained, prometheus.GaugeValue, t.Gained[name]/u.scale, u.resource, u.unit)
	}
}

// tally is TallyNodes(nodes), reusing the facts of the nodes that did not change since the last
// scrape.
func (c *nodeCollector) tally(nodes []*corev1.Node) NodeTally {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.memo == nil {
		c.memo = make(map[string]*memoized, len(nodes))
	}
	c.scrape++
	t := newTally()
	for _, n := range nodes {
		m, ok := c.memo[n.Name]
		if ok && m.matches(n) {
			// The node's current values: the old ones can go, and the next comparison is of
			// the same strings.
			m.applied, m.raw, m.allocatable = n.Annotations[names.AppliedAnnotation], n.Annotations[names.RawAnnotation], n.Status.Allocatable
		} else {
			m = memoOf(n)
			c.memo[n.Name] = m
		}
		m.seen = c.scrape
		t.add(m.facts)
	}
	for name, m := range c.memo {
		if m.seen != c.scrape {
			delete(c.memo, name)
		}
	}
	return t
}
