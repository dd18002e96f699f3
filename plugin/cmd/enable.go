package cmd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/plugin/optin"
	"github.com/overcommit-dev/overcommit/plugin/output"
	"github.com/overcommit-dev/overcommit/plugin/preview"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// EnableOptions are the options of `kubectl overcommit enable`.
type EnableOptions struct {
	base
	nodeWrite
	changeFlags

	now func() time.Time
}

// NewCmdEnable returns `kubectl overcommit enable`.
func NewCmdEnable(streams genericiooptions.IOStreams, f ClientFactory) *cobra.Command {
	o := &EnableOptions{base: base{IOStreams: streams, factory: f}, now: time.Now}
	cmd := &cobra.Command{
		Use:   "enable (NODE... | -l SELECTOR | --all) [--cpu-ratio R] [--memory-ratio R] [--policy static|usage]",
		Short: "Opt nodes in to overcommit and apply the policy at once",
		Long: `Opt nodes in: label them overcommit.dev/enabled=true, record the ratios and policy given as
annotations, then write the node's status once so the node policy (webhook or
MutatingAdmissionPolicy) applies now rather than at the kubelet's next report.

Ratios are checked against the limits of the settings ConfigMap
overcommit-system/overcommit-settings before anything is written; every node must exist. A memory
ratio above 1 is allowed but warned about: memory cannot be throttled, so pods that use what the
node promised them get OOM-killed.`,
		Example: `  # Opt worker-1 in with the default ratios of the settings
  kubectl overcommit enable worker-1

  # Double the schedulable cpu of every node in pool=batch
  kubectl overcommit enable -l pool=batch --cpu-ratio 2

  # Give back what pods request but do not use, up to x3
  kubectl overcommit enable worker-2 --policy usage --cpu-ratio 3

  # Show the node the apiserver would store, without storing it
  kubectl overcommit enable worker-1 --cpu-ratio 2 --dry-run=server -o yaml`,
		ValidArgsFunction: completeNodes(f, ""),
		RunE:              runE(o),
	}
	o.changeFlags.add(cmd)
	o.nodeWrite.addFlags(cmd, "Opt in every node of the cluster")
	return cmd
}

// Complete turns flags and arguments into values and makes the clients.
func (o *EnableOptions) Complete(_ *cobra.Command, args []string) error {
	if err := o.nodeWrite.complete(args); err != nil {
		return err
	}
	return o.completeClients()
}

// Validate checks everything that needs no API call.
func (o *EnableOptions) Validate() error {
	if o.selection.Empty() {
		return errors.New("name the nodes to opt in, or use -l/--selector or --all")
	}
	if err := o.selection.Validate(); err != nil {
		return err
	}
	return o.changeFlags.validate()
}

// Run reads and checks every node and the settings' limits, then writes.
func (o *EnableOptions) Run(ctx context.Context) error {
	nodes, err := kube.Nodes(ctx, o.clients.Kube, o.selection)
	if err != nil {
		return err
	}
	pc, err := o.planContext(ctx, &o.changeFlags)
	if err != nil {
		return fmt.Errorf("%w; nothing changed", err)
	}
	plans, err := o.localPlans(ctx, pc, nodes, o.now())
	if err != nil {
		return fmt.Errorf("%w; nothing changed", err)
	}
	o.warnMemory(plans)
	if o.dryRun == optin.DryRunClient {
		// A real write gets these from the webhook as admission warnings.
		for _, p := range plans {
			for _, w := range p.Result.Warnings {
				o.warn("node/%s: %s", p.Node.Name, w)
			}
		}
	}
	outcomes := optin.Enable(ctx, o.clients.Kube, optin.EnableConfig{Change: pc.change, DryRun: o.dryRun, Plans: plans,
		Mode: pc.mode.Mode, SettingsMissing: pc.settings.Missing})
	if err := printOutcomes(o.base, o.printer, outcomes); err != nil {
		return err
	}
	return outcomeErrors(outcomes)
}

// warnMemory says loudly when memory is overcommitted: unlike cpu, which is throttled, memory
// that pods use beyond the node's real memory ends in OOM kills.
func (o *EnableOptions) warnMemory(plans []*preview.Plan) {
	byRatio := map[string][]string{}
	var ratios []string
	for _, p := range plans {
		r := p.Result.Applied.MemoryRatio
		if r == "" || policy.MustParseRatio(r) <= policy.One {
			continue
		}
		if _, ok := byRatio[r]; !ok {
			ratios = append(ratios, r)
		}
		byRatio[r] = append(byRatio[r], p.Node.Name)
	}
	for _, r := range ratios {
		o.warn("MEMORY IS OVERCOMMITTED (x%s) on %s: memory cannot be throttled like cpu; when pods use what they were promised, the kernel OOM-kills them. Keep --memory-ratio 1 unless memory requests are known to be padded.",
			r, output.NodeList(byRatio[r]))
	}
}

// printOutcomes prints each node's outcome like kubectl label: "node/NAME message", or the
// object for -o. Warnings go to stderr; errors are returned by the caller.
func printOutcomes(b base, p printers.ResourcePrinter, outcomes []optin.Outcome) error {
	for _, oc := range outcomes {
		for _, w := range oc.Warnings {
			b.warn("%s", w)
		}
		if oc.Err != nil {
			continue
		}
		if p == nil {
			if _, err := fmt.Fprintf(b.Out, "node/%s %s\n", oc.Name, oc.Message); err != nil {
				return err
			}
			continue
		}
		if err := p.PrintObj(oc.Node, b.Out); err != nil {
			return fmt.Errorf("printing node %q: %w", oc.Name, err)
		}
	}
	return nil
}
