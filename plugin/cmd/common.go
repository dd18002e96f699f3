package cmd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/plugin/optin"
	"github.com/overcommit-dev/overcommit/plugin/preview"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// invalidFlag is the one wording of a rejected flag value: invalid --flag "value": reason.
func invalidFlag(flag, value string, reason error) error {
	return fmt.Errorf("invalid %s %q: %w", flag, value, reason)
}

// webhookNamespaceFlag is --webhook-namespace, where the commands that read sidecar templates
// look for them.
type webhookNamespaceFlag struct{ webhookNamespace string }

func (f *webhookNamespaceFlag) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.webhookNamespace, "webhook-namespace", names.Namespace, "Namespace of the overcommit webhook, which holds the sidecar templates")
}

func (f *webhookNamespaceFlag) validate() error {
	if f.webhookNamespace == "" {
		return invalidFlag("--webhook-namespace", "", errors.New("must not be empty"))
	}
	return nil
}

// selectionFlags are kubectl label's ways of naming nodes.
type selectionFlags struct {
	selector string
	all      bool
}

func (s *selectionFlags) add(cmd *cobra.Command, allHelp string) {
	cmd.Flags().StringVarP(&s.selector, "selector", "l", "", "Selector (label query) to filter nodes on, supports '=', '==', '!=', 'in', 'notin' (e.g. -l key1=value1,key2=value2)")
	if allHelp != "" {
		cmd.Flags().BoolVar(&s.all, "all", false, allHelp)
	}
}

func (s *selectionFlags) selection(args []string) kube.Selection {
	sel := kube.Selection{Selector: s.selector, All: s.all}
	for _, a := range args {
		sel.Names = append(sel.Names, kube.NodeName(a))
	}
	return sel
}

// changeFlags are the settings enable and preview accept.
type changeFlags struct {
	cpuRatio, memoryRatio, policy string
}

func (c *changeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.cpuRatio, "cpu-ratio", "", "CPU overcommit ratio, a decimal from 1 up to the settings' maximum (e.g. 2 or 1.5); empty keeps the node's annotation or the settings' default")
	cmd.Flags().StringVar(&c.memoryRatio, "memory-ratio", "", "Memory overcommit ratio, as --cpu-ratio; above 1 risks OOM kills, since memory cannot be throttled")
	cmd.Flags().StringVar(&c.policy, "policy", "", `Policy: "static" (allocatable x ratio) or "usage" (give back what pods request but do not use, up to the ratio); empty keeps the node's annotation or static`)
	_ = cmd.RegisterFlagCompletionFunc("policy", fixedCompletion(names.PolicyStatic, names.PolicyUsage))
}

// noLimit checks a ratio's syntax before the settings' limits are known.
var noLimit = policy.Limits{Max: policy.Ratio(math.MaxInt64)}

// validate checks the flags without the settings' limits (no API call): a typo fails before
// anything is read from the cluster.
func (c *changeFlags) validate() error {
	switch c.policy {
	case "", names.PolicyStatic, names.PolicyUsage:
	default:
		return invalidFlag("--policy", c.policy, fmt.Errorf("must be %q or %q", names.PolicyStatic, names.PolicyUsage))
	}
	_, err := c.change(policy.Settings{CPU: noLimit, Memory: noLimit})
	return err
}

// change checks the ratios against the settings' limits and returns them in canonical form.
// The check is strict: a value the node policy would clamp is an error here, so that what is
// written is what is applied.
func (c *changeFlags) change(s policy.Settings) (preview.Change, error) {
	ch := preview.Change{Policy: c.policy}
	var errs []error
	for _, f := range []struct {
		resource string
		value    string
		limits   policy.Limits
		into     *string
	}{
		{"cpu", c.cpuRatio, s.CPU, &ch.CPURatio},
		{"memory", c.memoryRatio, s.Memory, &ch.MemoryRatio},
	} {
		if f.value == "" {
			continue
		}
		r, err := policy.ValidateRatio(f.resource, f.value, f.limits)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*f.into = r.String()
	}
	return ch, errors.Join(errs...)
}

// planContext is what enable and preview plan a change against.
type planContext struct {
	settings kube.Settings
	mode     kube.NodePolicy
	change   preview.Change
}

// planContext reads the settings and the node-policy mode (warning once about either), and
// checks the change against the settings' limits.
func (b *base) planContext(ctx context.Context, c *changeFlags) (planContext, error) {
	p := planContext{settings: b.settings(ctx), mode: b.nodePolicy(ctx)}
	var err error
	p.change, err = c.change(p.settings.Settings)
	return p, err
}

// localPlans computes each node's result on the shared policy code, as the node policy would.
func (b *base) localPlans(ctx context.Context, p planContext, nodes []corev1.Node, now time.Time) ([]*preview.Plan, error) {
	return preview.Local(ctx, b.clients.Kube, b.clients.Metrics, nodes, preview.Config{Change: p.change, Settings: p.settings.Settings, Now: now,
		PublishedTargets: p.mode.Mode == kube.ModePolicy})
}

// dryRunFlag is kubectl's --dry-run.
func addDryRunFlag(cmd *cobra.Command, into *string) {
	cmd.Flags().StringVar(into, "dry-run", "none", `Must be "none", "client", or "server". If client strategy, only print the object that would be sent, without sending it. If server strategy, submit server-side request without persisting the resource.`)
	_ = cmd.RegisterFlagCompletionFunc("dry-run", fixedCompletion(string(optin.DryRunNone), string(optin.DryRunClient), string(optin.DryRunServer)))
}

// objectPrinter returns nil for the default output (the plugin's own line per node), else the
// cli-runtime printer for -o.
func objectPrinter(pf *genericclioptions.PrintFlags) (printers.ResourcePrinter, error) {
	if pf.OutputFormat == nil || *pf.OutputFormat == "" {
		return nil, nil
	}
	p, err := pf.ToPrinter()
	if err != nil {
		return nil, fmt.Errorf("invalid -o/--output: %w", err)
	}
	return p, nil
}

func newObjectPrintFlags(cmd *cobra.Command) *genericclioptions.PrintFlags {
	pf := genericclioptions.NewPrintFlags("").WithTypeSetter(scheme.Scheme)
	pf.AddFlags(cmd)
	_ = cmd.RegisterFlagCompletionFunc("output", fixedCompletion(pf.AllowedFormats()...))
	return pf
}

func fixedCompletion(values ...string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}

// outputFormat checks -o for the report commands.
func outputFormat(got string, allowed ...string) error {
	for _, a := range allowed {
		if got == a {
			return nil
		}
	}
	return invalidFlag("-o/--output", got, fmt.Errorf("must be one of %s", strings.Join(allowed, ", ")))
}

// outcomeErrors joins the failures of a multi-node write, naming how many nodes failed.
func outcomeErrors(outcomes []optin.Outcome) error {
	var errs []error
	for _, o := range outcomes {
		if o.Err != nil {
			errs = append(errs, o.Err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	if len(outcomes) > 1 {
		errs = append(errs, fmt.Errorf("%d of %d nodes failed", len(errs), len(outcomes)))
	}
	return errors.Join(errs...)
}

// nodeWrite is what enable and disable share: which nodes, whether to dry-run, how to print.
type nodeWrite struct {
	selectionFlags
	dryRunValue string
	printFlags  *genericclioptions.PrintFlags

	selection kube.Selection
	dryRun    optin.DryRun
	printer   printers.ResourcePrinter
}

func (w *nodeWrite) addFlags(cmd *cobra.Command, allHelp string) {
	w.selectionFlags.add(cmd, allHelp)
	addDryRunFlag(cmd, &w.dryRunValue)
	w.printFlags = newObjectPrintFlags(cmd)
}

// complete turns the flags and node arguments into values.
func (w *nodeWrite) complete(args []string) error {
	w.selection = w.selectionFlags.selection(args)
	var err error
	if w.dryRun, err = optin.ParseDryRun(w.dryRunValue); err != nil {
		return invalidFlag("--dry-run", w.dryRunValue, err)
	}
	w.printer, err = objectPrinter(w.printFlags)
	return err
}

// command is kubectl's Complete, Validate, Run pattern, which every command's options follow.
type command interface {
	Complete(cmd *cobra.Command, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// runE runs a command's three steps in order, stopping at the first error.
func runE(o command) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(cmd, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}
