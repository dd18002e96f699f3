package cmd

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/plugin/optin"
	"github.com/overcommit-dev/overcommit/shared/names"
)

// DisableOptions are the options of `kubectl overcommit disable`.
type DisableOptions struct {
	base
	nodeWrite
	force bool
}

// NewCmdDisable returns `kubectl overcommit disable`.
func NewCmdDisable(streams genericiooptions.IOStreams, f ClientFactory) *cobra.Command {
	o := &DisableOptions{base: base{IOStreams: streams, factory: f}}
	cmd := &cobra.Command{
		Use:   "disable (NODE... | -l SELECTOR | --all) [--force]",
		Short: "Opt nodes out and restore the kubelet's allocatable at once",
		Long: `Opt nodes out: remove the overcommit.dev/enabled label and the ratio and policy annotations,
then put back the cpu and memory allocatable and capacity the kubelet reported (recorded by the
webhook in overcommit.dev/raw) and remove the webhook's records.

It refuses, and changes nothing, when the pods already bound to a node request more than the
allocatable it would restore: the scheduler would see the node over-full, and a kubelet restart
could reject running pods. Move pods first, or use --force.`,
		Example: `  # Opt worker-1 out
  kubectl overcommit disable worker-1

  # Opt every node out, even those whose pods need the overcommit
  kubectl overcommit disable --all --force

  # What would be stored?
  kubectl overcommit disable worker-1 --dry-run=server -o yaml`,
		ValidArgsFunction: completeNodes(f, names.EnabledLabel+"="+names.EnabledValue),
		RunE:              runE(o),
	}
	cmd.Flags().BoolVar(&o.force, "force", false, "Opt out even nodes whose bound pods request more than the restored allocatable")
	o.nodeWrite.addFlags(cmd, "Opt out every node of the cluster")
	return cmd
}

// Complete turns flags and arguments into values and makes the clients.
func (o *DisableOptions) Complete(_ *cobra.Command, args []string) error {
	if err := o.nodeWrite.complete(args); err != nil {
		return err
	}
	return o.completeClients()
}

// Validate checks everything that needs no API call.
func (o *DisableOptions) Validate() error {
	if o.selection.Empty() {
		return errors.New("name the nodes to opt out, or use -l/--selector or --all")
	}
	return o.selection.Validate()
}

// Run checks every node, then writes.
func (o *DisableOptions) Run(ctx context.Context) error {
	nodes, err := kube.Nodes(ctx, o.clients.Kube, o.selection)
	if err != nil {
		return err
	}
	restores := make([]optin.Restore, 0, len(nodes))
	var restoring []string
	for i := range nodes {
		r, err := optin.PlanRestore(&nodes[i])
		if err != nil {
			return err
		}
		restores = append(restores, r)
		if r.Raw != nil {
			restoring = append(restoring, r.Node.Name)
		}
	}
	if len(restoring) > 0 {
		loads, err := kube.Loads(ctx, o.clients.Kube, restoring)
		if err != nil {
			return err
		}
		if over := optin.Overbooking(restores, loads); len(over) > 0 {
			if !o.force {
				return &optin.OverbookedError{Nodes: over}
			}
			for _, ob := range over {
				o.warn("%s; disabling anyway (--force)", ob)
			}
		}
	}
	outcomes := optin.Disable(ctx, o.clients.Kube, optin.DisableConfig{DryRun: o.dryRun, Restores: restores})
	if err := printOutcomes(o.base, o.printer, outcomes); err != nil {
		return err
	}
	return outcomeErrors(outcomes)
}
