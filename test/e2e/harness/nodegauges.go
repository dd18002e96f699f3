package harness

import (
	"context"
	"fmt"
	"regexp"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/shared/names"
)

// NodeGauges are the webhook's node gauges as one scrape reports them.
type NodeGauges struct {
	OptedIn, Differs, Unrecorded float64
	CPUCores, MemoryBytes        float64
}

// Plus is g with each gauge of d added.
func (g NodeGauges) Plus(d NodeGauges) NodeGauges {
	return NodeGauges{OptedIn: g.OptedIn + d.OptedIn, Differs: g.Differs + d.Differs, Unrecorded: g.Unrecorded + d.Unrecorded,
		CPUCores: g.CPUCores + d.CPUCores, MemoryBytes: g.MemoryBytes + d.MemoryBytes}
}

var nodeGaugeLines = []struct {
	name string
	re   *regexp.Regexp
	set  func(*NodeGauges, float64)
}{
	{"overcommit_nodes_opted_in", regexp.MustCompile(`(?m)^overcommit_nodes_opted_in (\S+)$`),
		func(g *NodeGauges, v float64) { g.OptedIn = v }},
	{`overcommit_nodes_allocatable_drift{state="differs"}`, regexp.MustCompile(`(?m)^overcommit_nodes_allocatable_drift\{state="differs"\} (\S+)$`),
		func(g *NodeGauges, v float64) { g.Differs = v }},
	{`overcommit_nodes_allocatable_drift{state="unrecorded"}`, regexp.MustCompile(`(?m)^overcommit_nodes_allocatable_drift\{state="unrecorded"\} (\S+)$`),
		func(g *NodeGauges, v float64) { g.Unrecorded = v }},
	{`overcommit_nodes_capacity_gained{resource="cpu"}`, regexp.MustCompile(`(?m)^overcommit_nodes_capacity_gained\{resource="cpu",unit="core"\} (\S+)$`),
		func(g *NodeGauges, v float64) { g.CPUCores = v }},
	{`overcommit_nodes_capacity_gained{resource="memory"}`, regexp.MustCompile(`(?m)^overcommit_nodes_capacity_gained\{resource="memory",unit="byte"\} (\S+)$`),
		func(g *NodeGauges, v float64) { g.MemoryBytes = v }},
}

// ScrapeNodeGauges reads c's webhook's /metrics; an error until every node gauge is there (the
// webhook's node cache has synced).
func ScrapeNodeGauges(ctx context.Context, c *cluster.Cluster) (NodeGauges, error) {
	text, err := c.WebhookMetrics(ctx)
	if err != nil {
		return NodeGauges{}, err
	}
	var g NodeGauges
	for _, l := range nodeGaugeLines {
		m := l.re.FindStringSubmatch(text)
		if m == nil {
			return NodeGauges{}, fmt.Errorf("no %s in the webhook's metrics", l.name)
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return NodeGauges{}, fmt.Errorf("%s: %w", l.name, err)
		}
		l.set(&g, v)
	}
	return g, nil
}

// SettledNodeGauges is ScrapeNodeGauges once the webhook's node cache holds exactly the opted-in
// nodes the apiserver has: a test's baseline must not count a node an earlier test is still
// deleting, nor miss one it just opted in.
func SettledNodeGauges(ctx context.Context, c *cluster.Cluster) (NodeGauges, error) {
	g, err := ScrapeNodeGauges(ctx, c)
	if err != nil {
		return NodeGauges{}, err
	}
	l, err := c.Client().CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: names.EnabledLabel + "=" + names.EnabledValue})
	if err != nil {
		return NodeGauges{}, err
	}
	if g.OptedIn != float64(len(l.Items)) {
		return NodeGauges{}, fmt.Errorf("the webhook counts %v opted-in nodes, the apiserver has %d", g.OptedIn, len(l.Items))
	}
	return g, nil
}
