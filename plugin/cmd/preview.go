package cmd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/plugin/fit"
	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/plugin/output"
	"github.com/overcommit-dev/overcommit/plugin/preview"
	"github.com/overcommit-dev/overcommit/plugin/sidecars"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/requests"
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
	// pending and fit (with filename) ask for a fit report instead of the preview.
	pending  bool
	fit      bool
	filename string

	selection kube.Selection
	// implicit is set when no nodes were named: preview the opted-in nodes.
	implicit bool
	now      func() time.Time
}

// NewCmdPreview returns `kubectl overcommit preview`.
func NewCmdPreview(streams genericiooptions.IOStreams, f ClientFactory) *cobra.Command {
	o := &PreviewOptions{base: base{IOStreams: streams, factory: f}, now: time.Now}
	cmd := &cobra.Command{
		Use:   "preview [NODE... | -l SELECTOR | --all] [--cpu-ratio R] [--memory-ratio R] [--policy static|usage] [--pending | --fit -f FILE]",
		Short: "Show what the node policy would store for nodes, now or with other settings",
		Long: `Show, for each node, the allocatable the node policy would store: for an opted-in node what
it stores now, for any node what 'enable' with the given flags would store. It runs the policy's own
code (shared by the webhook and the MutatingAdmissionPolicy of policy mode) on the live node, with
the limits of the settings ConfigMap overcommit-system/overcommit-settings.

Without NODE, -l or --all it previews the nodes that are opted in.

--server asks the apiserver instead: a dry-run status write carrying the opt-in, which the node
policy answers like a real one, with its own settings and caches.

-o patch prints the exact JSON patch of the node policy for one node.

--pending lists the Pending pods (not yet bound to a node, all namespaces) and the previewed node
each would fit on, now and after the change. --fit -f FILE counts how many more replicas of the pod
in FILE (a Pod, or a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or PodTemplate:
its pod template) fit on each previewed node, now and after. Both count resources only, like the
scheduler's resource filter: a pod fits a node when its requests (init containers, sidecars and
overhead counted as the scheduler counts them) fit in the node's allocatable minus the requests of
the pods bound there, and the node's pod count allows one more. nodeSelector, affinity, taints and
other scheduling rules are not evaluated, so both are estimates. --pending places the pods
greedily, oldest first, each on the first previewed node by name where it fits.`,
		Example: `  # What the node policy stores for every opted-in node
  kubectl overcommit preview

  # What opting worker-1 in at cpu x2 would store, as a table
  kubectl overcommit preview worker-1 --cpu-ratio 2

  # The same, answered by the apiserver and the node policy
  kubectl overcommit preview worker-1 --cpu-ratio 2 --server

  # The node policy's JSON patch
  kubectl overcommit preview worker-1 --cpu-ratio 2 -o patch

  # Which Pending pods would fit if worker-1 and worker-2 were opted in at cpu x2
  kubectl overcommit preview worker-1 worker-2 --cpu-ratio 2 --pending

  # How many replicas of a deployment fit on the opted-in nodes, now and at memory x1.25
  kubectl overcommit preview --memory-ratio 1.25 --fit -f deployment.yaml`,
		ValidArgsFunction: completeNodes(f, ""),
		RunE:              runE(o),
	}
	o.changeFlags.add(cmd)
	o.selectionFlags.add(cmd, "Preview every node of the cluster")
	cmd.Flags().BoolVar(&o.server, "server", false, "Ask the apiserver with a dry-run status write instead of computing locally")
	cmd.Flags().StringVarP(&o.output, "output", "o", output.FormatTable, "Output format: table, json, yaml or patch")
	cmd.Flags().BoolVar(&o.pending, "pending", false, "List the Pending pods that would fit on the previewed nodes, now and after the change (resources only, an estimate)")
	cmd.Flags().BoolVar(&o.fit, "fit", false, "Count the replicas of the pod in -f that fit on each previewed node, now and after the change (resources only, an estimate)")
	cmd.Flags().StringVarP(&o.filename, "filename", "f", "", "With --fit: file with one Pod or workload with a pod template (YAML or JSON); - reads stdin")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
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
	if err := o.validateFit(); err != nil {
		return err
	}
	return o.changeFlags.validate()
}

// validateFit checks the flags of the fit reports.
func (o *PreviewOptions) validateFit() error {
	switch {
	case o.pending && o.fit:
		return errors.New("--pending and --fit are two reports: give one")
	case o.fit && o.filename == "":
		return errors.New("--fit needs -f/--filename: the pod or workload to count replicas of")
	case !o.fit && o.filename != "":
		return errors.New("-f/--filename is only used with --fit")
	case (o.pending || o.fit) && o.server:
		return errors.New("--pending and --fit compute locally: drop --server")
	case (o.pending || o.fit) && o.output == formatPatch:
		return errors.New("--pending and --fit print a table, json or yaml, not a patch")
	}
	return nil
}

// Run previews the nodes.
func (o *PreviewOptions) Run(ctx context.Context) error {
	// The pod spec is read first, so that a bad file fails before any API call.
	var fitPod *corev1.Pod
	var fitSource string
	if o.fit {
		var err error
		if fitPod, fitSource, err = o.readFitPod(); err != nil {
			return err
		}
	}
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
		if o.pending || o.fit {
			return o.runFit(ctx, plans, fitPod, fitSource)
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

// readFitPod reads the one pod or workload of -f.
func (o *PreviewOptions) readFitPod() (*corev1.Pod, string, error) {
	in, err := openInput(o.In, o.filename)
	if err != nil {
		return nil, "", err
	}
	defer func() { _ = in.Close() }()
	objs, err := sidecars.DecodeObjects(in)
	if err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", o.filename, err)
	}
	if len(objs) != 1 {
		return nil, "", fmt.Errorf("reading %s: want one Pod or workload, found %d objects", o.filename, len(objs))
	}
	pod, source, err := fit.PodOf(objs[0])
	if err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", o.filename, err)
	}
	return pod, source, nil
}

// runFit prints the fit report of --pending or --fit for the previewed nodes, before and after
// their plans.
func (o *PreviewOptions) runFit(ctx context.Context, plans []*preview.Plan, pod *corev1.Pod, source string) error {
	names := make([]string, len(plans))
	for i, p := range plans {
		names[i] = p.Node.Name
	}
	loads, err := kube.Loads(ctx, o.clients.Kube, names)
	if err != nil {
		return err
	}
	now, after := make([]fit.Node, len(plans)), make([]fit.Node, len(plans))
	for i, p := range plans {
		l := loads[p.Node.Name]
		stored, err := p.After()
		if err != nil {
			return err
		}
		now[i] = fit.NodeOf(p.Node, l.Requests, l.Pods)
		after[i] = fit.NodeOf(stored, l.Requests, l.Pods)
	}
	var report interface{ WriteTable(io.Writer) error }
	if o.fit {
		report = fit.NewReplicas(source, requests.Pod(pod), now, after)
	} else {
		pods, err := pendingPods(ctx, o.clients.Kube)
		if err != nil {
			return err
		}
		report = fit.NewPending(now, after, pods)
	}
	if o.output == output.FormatTable {
		return report.WriteTable(o.Out)
	}
	if err := output.Encode(o.Out, o.output, report); err != nil {
		return fmt.Errorf("printing the fit report: %w", err)
	}
	return nil
}

// pendingFieldSelector selects the pods the scheduler has yet to place.
const pendingFieldSelector = "spec.nodeName=,status.phase=" + string(corev1.PodPending)

// pendingPods lists the Pending pods not bound to a node, in all namespaces, in the order the
// report lists them (by namespace and name); pods being deleted are left out.
func pendingPods(ctx context.Context, c kubernetes.Interface) ([]fit.Pod, error) {
	var pods []fit.Pod
	err := kube.EachPod(ctx, c, pendingFieldSelector, func(p *corev1.Pod) {
		// The fake clientset ignores field selectors.
		if p.Spec.NodeName != "" || p.Status.Phase != corev1.PodPending || p.DeletionTimestamp != nil {
			return
		}
		pods = append(pods, fit.Pod{Namespace: p.Namespace, Name: p.Name, Created: p.CreationTimestamp.Time, Requests: requests.Pod(p)})
	}, func() { pods = nil })
	if err != nil {
		return nil, fmt.Errorf("cannot list the Pending pods: %w", err)
	}
	slices.SortFunc(pods, func(a, b fit.Pod) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	return pods, nil
}
