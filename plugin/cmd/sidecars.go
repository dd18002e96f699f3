package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/overcommit-dev/overcommit/plugin/output"
	"github.com/overcommit-dev/overcommit/plugin/sidecars"
	"github.com/overcommit-dev/overcommit/shared/names"
)

// SidecarsOptions are the options of `kubectl overcommit sidecars`.
type SidecarsOptions struct {
	base
	webhookNamespaceFlag
	output string
}

// NewCmdSidecars returns `kubectl overcommit sidecars`.
func NewCmdSidecars(streams genericiooptions.IOStreams, f ClientFactory) *cobra.Command {
	o := &SidecarsOptions{base: base{IOStreams: streams, factory: f}}
	cmd := &cobra.Command{
		Use:   "sidecars [--webhook-namespace NS] [-o table|json|yaml]",
		Short: "List the sidecar templates, whether each is valid, and how many pods use it",
		Long: `List the sidecar templates: the ConfigMaps labelled ` + names.SidecarTemplateLabel + ` in the
webhook's namespace. Each is parsed and validated with the webhook's own code, so an Invalid row
shows exactly why the webhook skips it (pods asking for it are denied). PODS counts the pods in all
namespaces whose ` + names.SidecarStatusAnnotation + ` annotation records the template; a template that pods
record but whose ConfigMap is gone is listed as Missing.`,
		Example: `  # All templates
  kubectl overcommit sidecars

  # Why is a template invalid?
  kubectl overcommit sidecars -o yaml`,
		Args: cobra.NoArgs,
		RunE: runE(o),
	}
	o.webhookNamespaceFlag.add(cmd)
	cmd.Flags().StringVarP(&o.output, "output", "o", output.FormatTable, "Output format: table, json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("output", fixedCompletion(output.FormatTable, output.FormatJSON, output.FormatYAML))
	return cmd
}

// Complete makes the clients.
func (o *SidecarsOptions) Complete(_ *cobra.Command, _ []string) error { return o.completeClients() }

// Validate checks the flags.
func (o *SidecarsOptions) Validate() error {
	if err := o.webhookNamespaceFlag.validate(); err != nil {
		return err
	}
	return outputFormat(o.output, output.FormatTable, output.FormatJSON, output.FormatYAML)
}

// Run reads the templates and every pod's status annotation (one paginated LIST), and prints.
func (o *SidecarsOptions) Run(ctx context.Context) error {
	r, err := sidecars.Build(ctx, o.clients.Kube, o.webhookNamespace)
	if err != nil {
		return err
	}
	if o.output != output.FormatTable {
		return output.Encode(o.Out, o.output, r)
	}
	if len(r.Templates) == 0 {
		_, err := fmt.Fprintf(o.ErrOut, "No sidecar templates found in namespace %s.\n", r.Namespace)
		return err
	}
	return r.WriteTable(o.Out)
}
