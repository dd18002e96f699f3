package savings

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/plugin/output"
)

// unknown is kubectl top's word for a missing sample.
const unknown = "<unknown>"

// WriteTable prints one row per node, a TOTAL row, a line saying what the extra capacity is
// worth in nodes, and, when a node is opted in, a line saying whether the pods' requests still
// fit at raw allocatable without the largest opted-in node (left out when only one namespace's
// pods are counted); and which rows the filters kept and which namespace is counted. The usage
// columns appear only when metrics.k8s.io was read; the BASIS column (the usage statistic and
// the pressure holds of the node policy's last write) only when some node has one.
func (r *SavingsReport) WriteTable(w io.Writer) error {
	withBasis := false
	for _, n := range r.Nodes {
		withBasis = withBasis || n.basis() != ""
	}
	header := []string{"NODE", "POLICY", "PODS"}
	for _, res := range []string{"CPU", "MEMORY"} {
		header = append(header, res+" RAW", res+" ALLOC", res+" REQ")
		if r.UsageAvailable {
			header = append(header, res+" USED", res+" USE%")
		}
		header = append(header, res+" EXTRA")
	}
	if withBasis {
		header = append(header, "BASIS")
	}
	// The rows are made twice, to measure and to write, rather than held: with --pods there is
	// one per pod.
	rows := func(row func([]string) error) error {
		cells := make([]string, 0, len(header))
		for i := range r.Nodes {
			n := &r.Nodes[i]
			p := n.Policy
			if !n.Enabled {
				p = "-"
			}
			cells = append(cells[:0], n.Name, p, strconv.Itoa(n.Pods))
			cells = r.cells(cells, corev1.ResourceCPU, &n.CPU)
			cells = r.cells(cells, corev1.ResourceMemory, &n.Memory)
			if withBasis {
				basis := n.basis()
				if basis == "" {
					basis = "-"
				}
				cells = append(cells, basis)
			}
			if err := row(cells); err != nil {
				return err
			}
			for j := range n.PodList {
				if err := row(r.podRow(cells[:0], &n.PodList[j], withBasis)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	footer := []string{"TOTAL", fmt.Sprintf("%d/%d enabled", r.Total.EnabledNodes, r.Total.Nodes), strconv.Itoa(r.Total.Pods)}
	footer = r.cells(footer, corev1.ResourceCPU, &r.Total.CPU)
	footer = r.cells(footer, corev1.ResourceMemory, &r.Total.Memory)
	if withBasis {
		footer = append(footer, "")
	}
	if err := output.StreamTable(w, header, rows, footer); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nExtra schedulable capacity: cpu %s (%s nodes' worth), memory %s (%s nodes' worth); "+
		"a node's worth is the average raw allocatable of the %d nodes listed.\n",
		output.Signed(corev1.ResourceCPU, r.Total.CPU.Extra), r.Total.NodesGained.CPU,
		output.Signed(corev1.ResourceMemory, r.Total.Memory.Extra), r.Total.NodesGained.Memory, r.Total.Nodes)
	if err != nil {
		return err
	}
	if len(r.Filters) > 0 {
		if _, err := fmt.Fprintf(w, "Rows shown: %s; TOTAL sums only these rows.\n", strings.Join(r.Filters, ", ")); err != nil {
			return err
		}
	}
	if r.Namespace != "" {
		var lost string
		if r.Total.EnabledNodes > 0 {
			lost = "; the line on losing the largest opted-in node is left out, since every namespace's pods would need room"
		}
		ratio, whole := "", "RAW, ALLOC and EXTRA are"
		if r.UsageAvailable {
			ratio, whole = " (USE% is the node's usage over those requests)", "RAW, ALLOC, USED and EXTRA are"
		}
		if _, err := fmt.Fprintf(w, "PODS and REQ count only the pods of namespace %q%s; %s the whole node's%s.\n", r.Namespace, ratio, whole, lost); err != nil {
			return err
		}
	}
	if r.Total.WithoutLargestEnabled == nil {
		return nil
	}
	l := r.Total.WithoutLargestEnabled
	_, err = fmt.Fprintf(w, "If the largest opted-in node is lost, at raw allocatable: %s; %s. "+
		"Resources only, not scheduling constraints such as affinity, taints or per-node fit.\n",
		l.CPU.line(corev1.ResourceCPU), l.Memory.line(corev1.ResourceMemory))
	return err
}

// line is one resource of the closing line:
// "cpu fits (10 left >= 7500m requested, without node/node-b)".
func (f LossFit) line(name corev1.ResourceName) string {
	verdict, cmp := "fits", ">="
	if !f.Fits {
		verdict, cmp = "does not fit", "<"
	}
	return fmt.Sprintf("%s %s (%s left %s %s requested, without node/%s)", name, verdict, f.Remaining.String(), cmp, f.Requests.String(), f.Node)
}

func (r *SavingsReport) cells(row []string, name corev1.ResourceName, a *Amounts) []string {
	row = append(row, a.Raw.String(), a.Allocatable.String(), a.Requests.String())
	if r.UsageAvailable {
		u, pct := unknown, unknown
		if a.Usage != nil {
			u, pct = a.Usage.String(), percentCell(a.UsagePercentOfRequests)
		}
		row = append(row, u, pct)
	}
	return append(row, output.Signed(name, a.Extra))
}

// podRow appends a pod's row under its node's to row: the pod indented in the NODE column, its
// requests and usage in REQ, USED and USE%, and the node-wide columns empty.
func (r *SavingsReport) podRow(row []string, p *PodSavings, withBasis bool) []string {
	row = append(row, "  "+p.Namespace+"/"+p.Name, "", "")
	for _, a := range []*PodAmounts{&p.CPU, &p.Memory} {
		row = append(row, "", "", a.Requests.String())
		if r.UsageAvailable {
			u, pct := unknown, unknown
			if a.Usage != nil {
				u, pct = a.Usage.String(), percentCell(a.UsagePercentOfRequests)
			}
			row = append(row, u, pct)
		}
		row = append(row, "")
	}
	if withBasis {
		row = append(row, "")
	}
	return row
}

// basis is the BASIS cell, short to keep the table narrow: "p95 1200m, max 5Gi over 59m (240)",
// "held: memory-pressure", or both.
func (n NodeSavings) basis() string {
	var stat string
	if n.UsageStatistic != nil {
		stat = n.UsageStatistic.Short()
	}
	return output.Basis(stat, output.Held(n.Hold))
}

// percentCell is the USE% cell of a known usage: "-" when nothing is requested.
func percentCell(p *int64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatInt(*p, 10) + "%"
}
