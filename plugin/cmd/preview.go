package cmd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/plugin/output"
	"github.com/overcommit-dev/overcommit/plugin/preview"
	"github.com/overcommit-dev/overcommit/shared/names"
)

// Output formats of preview beyond the report's.
const formatPatch = "patch"

// PreviewOptions are the options of `kubectl overcommit preview`.
type PreviewOptions struct {
	base
	selectionFlags
	changeFlags
	server bool
	output string

	selection kube.Selection
	// implicit is set when no nodes were named: preview the opted-in nodes.
	implicit bool
	now      func() time.Time
}

// NewCmdPreview returns `kubectl overcommit preview`.
func NewCmdPreview(streams genericiooptions.IOStreams, f ClientFactory) *cobra.Command {
	o := &PreviewOptions{base: base{IOStreams: streams, factory: f}, now: time.Now}
	cmd := &cobra.Command{
		Use:   "preview [NODE... | -l SELECTOR | --all] [--cpu-ratio R] [--memory-ratio R] [--policy static|usage]",
		Short: "Show what the node policy would store for nodes, now or with other settings",
		Long: `Show, for each node, the allocatable the node policy would store: for an opted-in node what
it stores now, for any node what 'enable' with the given flags would store. It runs the policy's own
code (shared by the webhook and the MutatingAdmissionPolicy of policy mode) on the live node, with
the limits of the settings ConfigMap overcommit-system/overcommit-settings.

Without NODE, -l or --all it previews the nodes that are opted in.

--server asks the apiserver instead: a dry-run status write carrying the opt-in, which the node
policy answers like a real one, with its own settings and caches.

-o patch prints the exact JSON patch of the node policy for one node.`,
		Example: `  # What the node policy stores for every opted-in node
  kubectl overcommit preview

  # What opting worker-1 in at cpu x2 would store, as a table
  kubectl overcommit preview worker-1 --cpu-ratio 2

  # The same, answered by the apiserver and the node policy
  kubectl overcommit preview worker-1 --cpu-ratio 2 --server

  # The node policy's JSON patch
  kubectl overcommit preview worker-1 --cpu-ratio 2 -o patch`,
		ValidArgsFunction: completeNodes(f, ""),
		RunE:              runE(o),
	}
	o.changeFlags.add(cmd)
	o.selectionFlags.add(cmd, "Preview every node of the cluster")
	cmd.Flags().BoolVar(&o.server, "server", false, "Ask the apiserver with a dry-run status write instead of computing locally")
	cmd.Flags().StringVarP(&o.output, "output", "o", output.FormatTable, "Output format: table, json, yaml or patch")
	_ = cmd.RegisterFlagCompletionFunc("output", fixedCompletion(output.FormatTable, output.FormatJSON, output.FormatYAML, formatPatch))
	return cmd
}

// Complete turns flags and arguments into values and makes the clients.
func (o *PreviewOptions) Complete(_ *cobra.Command, args []string) error {
	o.selection = o.selectionFlags.selection(args)
	if o.selection.Empty() {
		o.implicit = true
		o.selection.Selector = names.EnabledLabel + "=" + names.EnabledValue
	}
	return o.completeClients()
}

// Validate checks everything that needs no API call.
func (o *PreviewOptions) Validate() error {
	if err := outputFormat(o.output, output.FormatTable, output.FormatJSON, output.FormatYAML, formatPatch); err != nil {
		return err
	}
	if err := o.selection.Validate(); err != nil {
		return err
	}
	return o.changeFlags.validate()
}

// Run previews the nodes.
func (o *PreviewOptions) Run(ctx context.Context) error {
	nodes, err := kube.Nodes(ctx, o.clients.Kube, o.selection)
	if err != nil {
		if o.implicit {
			return errors.New("no node is opted in; name nodes, or use -l or --all, to preview opting them in")
		}
		return err
	}
	if o.output == formatPatch && len(nodes) != 1 {
		return preview.ErrPatchNeedsOneNode
	}
	pc, err := o.planContext(ctx, &o.changeFlags)
	if err != nil {
		return err
	}
	var report *preview.Preview
	if o.server {
		report = preview.New(preview.SourceServer, pc.mode.Mode, pc.settings.Source, pc.settings.Settings)
		for i := range nodes {
			it, err := preview.Server(ctx, o.clients.Kube, &nodes[i], pc.change, pc.mode.Mode)
			if err != nil {
				return err
			}
			report.Items = append(report.Items, it)
		}
	} else {
		plans, err := o.localPlans(ctx, pc, nodes, o.now())
		if err != nil {
			return err
		}
		report = preview.New(preview.SourceLocal, pc.mode.Mode, pc.settings.Source, pc.settings.Settings)
		for _, p := range plans {
			report.Items = append(report.Items, p.Item())
		}
	}
	switch o.output {
	case formatPatch:
		return report.WritePatch(o.Out)
	case output.FormatTable:
		return report.WriteTable(o.Out)
	default:
		if err := output.Encode(o.Out, o.output, report); err != nil {
			return fmt.Errorf("printing the preview: %w", err)
		}
		return nil
	}
}
