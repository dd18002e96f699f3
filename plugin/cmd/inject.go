package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/overcommit-dev/overcommit/plugin/output"
	"github.com/overcommit-dev/overcommit/plugin/sidecars"
	"github.com/overcommit-dev/overcommit/shared/names"
)

// InjectOptions are the options of `kubectl overcommit inject`.
type InjectOptions struct {
	base
	webhookNamespaceFlag
	filename    string
	templateDir string
	fromCluster bool
	output      string
}

// NewCmdInject returns `kubectl overcommit inject`.
func NewCmdInject(streams genericiooptions.IOStreams, f ClientFactory) *cobra.Command {
	o := &InjectOptions{base: base{IOStreams: streams, factory: f}}
	cmd := &cobra.Command{
		Use:   "inject -f FILE (--template-dir DIR | --from-cluster) [-o yaml|json]",
		Short: "Print pods or workloads with their sidecars injected, as the webhook would admit them",
		Long: `Print the objects in FILE with the sidecar templates their pods ask for (annotation
` + names.SidecarInjectAnnotation + `) injected by the webhook's own code, offline: nothing is
created. Pods are injected; Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs
have their pod template injected, so applying the output gives pods that the webhook leaves as they
are.

Templates come from --template-dir (ConfigMap manifests labelled ` + names.SidecarTemplateLabel + `, the
files you would apply) or --from-cluster (the ConfigMaps in --webhook-namespace). Like the webhook,
it refuses an unknown or invalid template or a name clash, and leaves pods in kube-system,
kube-public, kube-node-lease and the webhook's namespace alone. It does not check the namespace's
` + names.SidecarInjectionLabel + ` label: it shows what injection gives, not whether it is on.`,
		Example: `  # What will the webhook make of this pod, with the cluster's templates?
  kubectl overcommit inject -f pod.yaml --from-cluster

  # Try a template change before applying it
  kubectl overcommit inject -f deployment.yaml --template-dir ./sidecar-templates

  # From stdin
  kubectl get deploy web -o yaml | kubectl overcommit inject -f - --from-cluster`,
		Args: cobra.NoArgs,
		RunE: runE(o),
	}
	cmd.Flags().StringVarP(&o.filename, "filename", "f", "", "File with the pods or workloads to inject (YAML or JSON, several documents allowed); - reads stdin")
	cmd.Flags().StringVar(&o.templateDir, "template-dir", "", "Directory of sidecar template ConfigMap manifests (*.yaml, *.yml, *.json)")
	cmd.Flags().BoolVar(&o.fromCluster, "from-cluster", false, "Read the sidecar templates from the cluster")
	o.webhookNamespaceFlag.add(cmd)
	cmd.Flags().StringVarP(&o.output, "output", "o", output.FormatYAML, "Output format: yaml or json")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	_ = cmd.MarkFlagDirname("template-dir")
	_ = cmd.RegisterFlagCompletionFunc("output", fixedCompletion(output.FormatYAML, output.FormatJSON))
	return cmd
}

// Complete makes the clients, only when the templates come from the cluster: offline use needs
// no kubeconfig.
func (o *InjectOptions) Complete(_ *cobra.Command, _ []string) error {
	if o.fromCluster {
		return o.completeClients()
	}
	return nil
}

// Validate checks the flags.
func (o *InjectOptions) Validate() error {
	if o.filename == "" {
		return errors.New("-f/--filename is required")
	}
	if (o.templateDir == "") == !o.fromCluster {
		return errors.New("exactly one of --template-dir and --from-cluster is required")
	}
	if err := o.webhookNamespaceFlag.validate(); err != nil {
		return err
	}
	return outputFormat(o.output, output.FormatYAML, output.FormatJSON)
}

// Run reads the templates and the objects, injects, and prints.
func (o *InjectOptions) Run(ctx context.Context) error {
	inj := &sidecars.Injector{WebhookNamespace: o.webhookNamespace, Warn: o.warn}
	var err error
	if o.fromCluster {
		inj.Templates, err = sidecars.ClusterTemplates(ctx, o.clients.Kube, o.webhookNamespace)
	} else {
		inj.Templates, err = sidecars.DirTemplates(o.templateDir, o.warn)
	}
	if err != nil {
		return err
	}
	in, err := o.open()
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	objs, err := sidecars.DecodeObjects(in)
	if err != nil {
		return fmt.Errorf("reading %s: %w", o.filename, err)
	}
	if len(objs) == 0 {
		return fmt.Errorf("reading %s: no objects", o.filename)
	}
	for _, obj := range objs {
		if err := inj.Inject(obj); err != nil {
			return err
		}
	}
	return sidecars.Print(o.Out, o.output, objs)
}

func (o *InjectOptions) open() (io.ReadCloser, error) { return openInput(o.In, o.filename) }

// openInput opens -f: the file, or stdin for "-".
func openInput(stdin io.Reader, filename string) (io.ReadCloser, error) {
	if filename == "-" {
		return io.NopCloser(stdin), nil
	}
	f, err := os.Open(filename)
	if err != nil {
		return nil, fmt.Errorf("opening -f: %w", err)
	}
	return f, nil
}
