package cmd

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/plugin/output"
	"github.com/overcommit-dev/overcommit/plugin/savings"
)

// SavingsOptions are the options of `kubectl overcommit savings`.
type SavingsOptions struct {
	base
	selector string
	sortBy   string
	output   string

	allNamespaces bool
	// namespace is -n/--namespace unless -A was given; "" counts every namespace.
	namespace string

	minCPUExtra, minMemoryExtra           string
	maxCPUUsePercent, maxMemoryUsePercent string
	filter                                savings.Filter

	pods bool

	watchFlags
}

// NewCmdSavings returns `kubectl overcommit savings`.
func NewCmdSavings(streams genericiooptions.IOStreams, f ClientFactory) *cobra.Command {
	return newCmdSavings(&SavingsOptions{base: base{IOStreams: streams, factory: f}})
}

// newCmdSavings is the command for o, whose clock tests set.
func newCmdSavings(o *SavingsOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "savings [-l SELECTOR] [-n NAMESPACE | -A] [--min-cpu-extra Q] [--max-cpu-use-percent P] [--sort-by KEY] [--pods] [-w [--interval D]] [-o table|json|yaml|csv]",
		Short: "Show per-node raw and overcommitted allocatable, requests, usage and the capacity gained",
		Long: `Show one row per node: the kubelet's raw allocatable, the allocatable stored now (what the
scheduler sees), the requests of the node's non-terminal pods counted like the scheduler, measured
usage from metrics.k8s.io, and the extra schedulable capacity overcommit gives (stored - raw).

The TOTAL row sums the rows; the line below says how many nodes' worth of capacity the extra is:
total extra / (total raw / number of nodes listed). When a listed node is opted in, the last
line says whether the listed nodes' raw allocatable still holds all their pods' requests if the
opted-in node with the most raw cpu (for cpu) or memory (for memory) is lost: resources only, not
scheduling constraints such as affinity, taints or per-node fit.

USE% is usage as a percentage of requests: "-" on a node whose pods request nothing.

-n/--namespace counts only that namespace's pods in PODS, REQ and USE% (the node's whole usage
over that namespace's requests); RAW, ALLOC, USED and EXTRA stay the whole node's, and the line
on losing the largest opted-in node is left out, since the other namespaces' pods would need
room too. Without -n every namespace counts (the kubeconfig context's namespace does not
narrow a node report); -A/--all-namespaces overrides -n.

The threshold flags keep only the nodes that meet every bound given, and TOTAL and the lines
below it sum only the rows shown: --min-cpu-extra and --min-memory-extra find the nodes
overcommit promises the most on (extra = ALLOC - RAW, at least the quantity), and
--max-cpu-use-percent and --max-memory-use-percent the nodes whose pods use the least of what
they request (USE% at most the number; a node without a USE% is left out). The percentages
need metrics.k8s.io.

Without metrics.k8s.io (no metrics-server) it says so once and leaves the usage columns out.

--pods lists, under each node's row, one indented row per pod counted on it (namespace/name)
with its requests in REQ and its usage from metrics.k8s.io PodMetrics in USED and USE% (usage
as a percentage of the pod's requests); -o json and -o yaml give each node a podList. The pods
follow their node: -n/--namespace narrows them, the threshold flags select nodes, not pods. A
pod without a PodMetrics sample (just started, or PodMetrics cannot be listed, which is said
once) shows <unknown>.

-o csv prints a header row and one row per node with the amounts as quantities ("2500m",
"8Gi"), the same columns with or without metrics (an unknown amount is an empty cell), and no
TOTAL row, so that summing a column counts every node once. For that reason it does not take
--pods: pod rows among node rows would count every request twice.

-w/--watch reads the cluster again every --interval (5s by default; the wait runs from the end
of one read to the start of the next) and shows the report again when it changed, until Ctrl-C,
which exits 0. On a terminal the report is redrawn in place, under a line with the command and
the time of the last read, without clearing the screen first, so it does not flicker; lines
wider and a report taller than the terminal are cut, as watch(1) does. Written to a pipe or a file, each changed report follows the
last after a blank line, with that line above it and no escape codes. -o json writes one
compact JSON document per line per change, for scripts (jq -c, say); -o yaml one YAML document
per change, each after a "---" line; -o csv does not take --watch, since a csv file has one
header row. A failed read once the first has succeeded does not end the watch: the last report
stays, and the error is shown above it on a terminal or written to stderr otherwise, once until
it changes; an error of the first read ends the command as without --watch.`,
		Example: `  # Every node
  kubectl overcommit savings

  # Opted-in nodes, most extra cpu first
  kubectl overcommit savings -l overcommit.dev/enabled=true --sort-by cpu-extra

  # For scripts
  kubectl overcommit savings -o json | jq .total.nodesGained

  # For a spreadsheet: a header row and one row per node, no TOTAL row
  kubectl overcommit savings -o csv > savings.csv

  # What the pods of namespace shop request on each node
  kubectl overcommit savings -n shop

  # Over-promised nodes: at least 2 cpu of extra allocatable
  kubectl overcommit savings --min-cpu-extra 2

  # Under-used nodes: pods use at most 30% of the cpu they request
  kubectl overcommit savings --max-cpu-use-percent 30

  # Each node's pods of namespace shop, with their requests and usage
  kubectl overcommit savings --pods -n shop

  # Keep the report on screen, read again every 2 seconds, until Ctrl-C
  kubectl overcommit savings --watch --interval 2s

  # A JSON document per line each time the report changes
  kubectl overcommit savings -w -o json | jq -c .total`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("savings takes no node names (got %q); select nodes with -l/--selector", args)
			}
			return nil
		},
		RunE: runE(o),
	}
	cmd.Flags().StringVarP(&o.selector, "selector", "l", "", "Selector (label query) to filter nodes on, supports '=', '==', '!=', 'in', 'notin' (e.g. -l key1=value1,key2=value2)")
	cmd.Flags().StringVar(&o.sortBy, "sort-by", "name", "Sort rows by one of: name, cpu-extra, memory-extra, cpu-requests, memory-requests, cpu-usage, memory-usage, pods (amounts largest first)")
	cmd.Flags().StringVarP(&o.output, "output", "o", output.FormatTable, "Output format: table, json, yaml or csv (a header row and one row per node, no TOTAL row)")
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "Count the pods of every namespace (the default), even if -n/--namespace is given")
	cmd.Flags().StringVar(&o.minCPUExtra, "min-cpu-extra", "", "Show only nodes with at least this much extra cpu (stored - raw allocatable), a quantity such as 500m or 2")
	cmd.Flags().StringVar(&o.minMemoryExtra, "min-memory-extra", "", "Show only nodes with at least this much extra memory (stored - raw allocatable), a quantity such as 2Gi")
	cmd.Flags().StringVar(&o.maxCPUUsePercent, "max-cpu-use-percent", "", "Show only nodes whose cpu usage is at most this percentage of their pods' cpu requests (CPU USE%), a whole number such as 30; needs metrics.k8s.io")
	cmd.Flags().StringVar(&o.maxMemoryUsePercent, "max-memory-use-percent", "", "Show only nodes whose memory usage is at most this percentage of their pods' memory requests (MEMORY USE%), a whole number such as 50; needs metrics.k8s.io")
	cmd.Flags().BoolVar(&o.pods, "pods", false, "Under each node, one row per pod counted on it with its requests and usage (PodMetrics from metrics.k8s.io); not with -o csv")
	o.watchFlags.add(cmd)
	_ = cmd.RegisterFlagCompletionFunc("sort-by", fixedCompletion(savings.SortKeys...))
	_ = cmd.RegisterFlagCompletionFunc("output", fixedCompletion(output.FormatTable, output.FormatJSON, output.FormatYAML, savings.FormatCSV))
	return cmd
}

// Complete makes the clients.
func (o *SavingsOptions) Complete(cmd *cobra.Command, _ []string) error {
	if ns, ok := o.factory.(NamespaceSource); ok && !o.allNamespaces {
		if n, explicit := ns.Namespace(); explicit {
			o.namespace = n
		}
	}
	o.watchFlags.complete(cmd, o.namespace)
	return o.completeClients()
}

// thresholds reads the threshold flags into a filter.
func (o *SavingsOptions) thresholds() (savings.Filter, error) {
	f := savings.Filter{MinExtra: map[corev1.ResourceName]int64{}, MaxUsePercent: map[corev1.ResourceName]int64{}}
	var errs []error
	for _, t := range []struct {
		flag, value string
		name        corev1.ResourceName
	}{{"--min-cpu-extra", o.minCPUExtra, corev1.ResourceCPU}, {"--min-memory-extra", o.minMemoryExtra, corev1.ResourceMemory}} {
		if t.value == "" {
			continue
		}
		v, err := savings.ParseMinExtra(t.name, t.value)
		if err != nil {
			errs = append(errs, invalidFlag(t.flag, t.value, err))
			continue
		}
		f.MinExtra[t.name] = v
	}
	for _, t := range []struct {
		flag, value string
		name        corev1.ResourceName
	}{{"--max-cpu-use-percent", o.maxCPUUsePercent, corev1.ResourceCPU}, {"--max-memory-use-percent", o.maxMemoryUsePercent, corev1.ResourceMemory}} {
		if t.value == "" {
			continue
		}
		v, err := savings.ParseMaxUsePercent(t.value)
		if err != nil {
			errs = append(errs, invalidFlag(t.flag, t.value, err))
			continue
		}
		f.MaxUsePercent[t.name] = v
	}
	return f, errors.Join(errs...)
}

// Validate checks everything that needs no API call.
func (o *SavingsOptions) Validate() error {
	if err := outputFormat(o.output, output.FormatTable, output.FormatJSON, output.FormatYAML, savings.FormatCSV); err != nil {
		return err
	}
	if err := o.watchFlags.validate(o.output); err != nil {
		return err
	}
	if o.pods && o.output == savings.FormatCSV {
		return errors.New("--pods cannot be used with -o csv: the csv has one row per node under fixed columns, so that " +
			"summing a column counts every node once, and pod rows would count every request twice; use -o json or -o yaml, " +
			"where each node has a podList")
	}
	if err := savings.ValidateSortKey(o.sortBy); err != nil {
		return invalidFlag("--sort-by", o.sortBy, err)
	}
	var err error
	if o.filter, err = o.thresholds(); err != nil {
		return err
	}
	return kube.Selection{Selector: o.selector}.Validate()
}

// Run reads nodes, all bound pods (one paginated LIST), NodeMetrics and, with --pods,
// PodMetrics (one paginated LIST), and prints the report; with --watch, again and again.
func (o *SavingsOptions) Run(ctx context.Context) error {
	if o.watch {
		return o.runWatch(ctx)
	}
	r, warnings, err := o.read(ctx)
	for _, w := range warnings {
		o.warn("%s", w)
	}
	if err != nil {
		return err
	}
	switch o.output {
	case output.FormatTable:
		return r.WriteTable(o.Out)
	case savings.FormatCSV:
		return r.WriteCSV(o.Out)
	}
	if err := output.Encode(o.Out, o.output, r); err != nil {
		return errors.Join(errors.New("printing the savings report"), err)
	}
	return nil
}

// read reads the cluster and builds the sorted report, with the warnings to print about it
// (which --watch prints once, not at every read).
func (o *SavingsOptions) read(ctx context.Context) (*savings.SavingsReport, []string, error) {
	nodes, err := kube.Nodes(ctx, o.clients.Kube, kube.Selection{Selector: o.selector, All: o.selector == ""})
	if err != nil {
		return nil, nil, err
	}
	names := make([]string, len(nodes))
	for i := range nodes {
		names[i] = nodes[i].Name
	}
	var loads map[string]kube.Load
	var pods map[string][]kube.PodLoad
	if o.pods {
		loads, pods, err = kube.LoadsWithPods(ctx, o.clients.Kube, names, o.namespace)
	} else {
		loads, err = kube.LoadsIn(ctx, o.clients.Kube, names, o.namespace)
	}
	if err != nil {
		return nil, nil, err
	}
	var warnings []string
	usage := kube.ReadUsage(ctx, o.clients.Kube, o.clients.Metrics)
	if usage.Unavailable != "" {
		if o.filter.NeedsUsage() {
			var given []string
			for flag, v := range map[string]string{"--max-cpu-use-percent": o.maxCPUUsePercent, "--max-memory-use-percent": o.maxMemoryUsePercent} {
				if v != "" {
					given = append(given, flag)
				}
			}
			sort.Strings(given)
			return nil, nil, fmt.Errorf("%s: needs usage from metrics.k8s.io, which cannot be read: %s", strings.Join(given, " and "), usage.Unavailable)
		}
		warnings = append(warnings, "no usage columns: "+usage.Unavailable)
	}
	var podUsage kube.PodUsage
	if o.pods && usage.Unavailable == "" {
		// Without NodeMetrics there are no usage columns, and the warning above said why.
		if podUsage = kube.ReadPodUsage(ctx, o.clients.Metrics, o.namespace); podUsage.Unavailable != "" {
			warnings = append(warnings, "no pod usage: "+podUsage.Unavailable)
		}
	}
	r := savings.Build(savings.Input{Nodes: nodes, Loads: loads, Usage: usage, Namespace: o.namespace, Filter: o.filter,
		Pods: pods, PodUsage: podUsage})
	if err := r.Sort(o.sortBy); err != nil {
		return nil, warnings, err
	}
	return r, warnings, nil
}
