package cmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
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
}

// NewCmdSavings returns `kubectl overcommit savings`.
func NewCmdSavings(streams genericiooptions.IOStreams, f ClientFactory) *cobra.Command {
	o := &SavingsOptions{base: base{IOStreams: streams, factory: f}}
	cmd := &cobra.Command{
		Use:   "savings [-l SELECTOR] [--sort-by KEY] [-o table|json|yaml|csv]",
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

Without metrics.k8s.io (no metrics-server) it says so once and leaves the usage columns out.

-o csv prints a header row and one row per node with the amounts as quantities ("2500m",
"8Gi"), the same columns with or without metrics (an unknown amount is an empty cell), and no
TOTAL row, so that summing a column counts every node once.`,
		Example: `  # Every node
  kubectl overcommit savings

  # Opted-in nodes, most extra cpu first
  kubectl overcommit savings -l overcommit.dev/enabled=true --sort-by cpu-extra

  # For scripts
  kubectl overcommit savings -o json | jq .total.nodesGained

  # For a spreadsheet: a header row and one row per node, no TOTAL row
  kubectl overcommit savings -o csv > savings.csv`,
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
	_ = cmd.RegisterFlagCompletionFunc("sort-by", fixedCompletion(savings.SortKeys...))
	_ = cmd.RegisterFlagCompletionFunc("output", fixedCompletion(output.FormatTable, output.FormatJSON, output.FormatYAML, savings.FormatCSV))
	return cmd
}

// Complete makes the clients.
func (o *SavingsOptions) Complete(_ *cobra.Command, _ []string) error {
	return o.completeClients()
}

// Validate checks everything that needs no API call.
func (o *SavingsOptions) Validate() error {
	if err := outputFormat(o.output, output.FormatTable, output.FormatJSON, output.FormatYAML, savings.FormatCSV); err != nil {
		return err
	}
	if err := savings.ValidateSortKey(o.sortBy); err != nil {
		return invalidFlag("--sort-by", o.sortBy, err)
	}
	return kube.Selection{Selector: o.selector}.Validate()
}

// Run reads nodes, all bound pods (one paginated LIST) and NodeMetrics, and prints the report.
func (o *SavingsOptions) Run(ctx context.Context) error {
	nodes, err := kube.Nodes(ctx, o.clients.Kube, kube.Selection{Selector: o.selector, All: o.selector == ""})
	if err != nil {
		return err
	}
	names := make([]string, len(nodes))
	for i := range nodes {
		names[i] = nodes[i].Name
	}
	loads, err := kube.Loads(ctx, o.clients.Kube, names)
	if err != nil {
		return err
	}
	usage := kube.ReadUsage(ctx, o.clients.Kube, o.clients.Metrics)
	if usage.Unavailable != "" {
		o.warn("no usage columns: %s", usage.Unavailable)
	}
	r := savings.Build(savings.Input{Nodes: nodes, Loads: loads, Usage: usage})
	if err := r.Sort(o.sortBy); err != nil {
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
