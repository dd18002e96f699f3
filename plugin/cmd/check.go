package cmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/overcommit-dev/overcommit/deploy/recordsvalidation"
	"github.com/overcommit-dev/overcommit/plugin/check"
	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/plugin/output"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// CheckOptions are the options of `kubectl overcommit check`.
type CheckOptions struct {
	base
	selector  string
	output    string
	threshold int64
	now       func() time.Time
}

// NewCmdCheck returns `kubectl overcommit check`.
func NewCmdCheck(streams genericiooptions.IOStreams, f ClientFactory) *cobra.Command {
	o := &CheckOptions{base: base{IOStreams: streams, factory: f}, now: time.Now}
	cmd := &cobra.Command{
		Use:   "check [-l SELECTOR] [--scale-down-utilization-threshold PERCENT] [-o text|json|yaml]",
		Short: "Check that overcommit is installed correctly and that its opted-in nodes are safe",
		Long: `Check the install and every opted-in node, and say for each check ok, WARN or FAIL, with what to
do about it. The command exits non-zero when a check fails; a warning is a risk a healthy install
may carry, and does not.

Install:
  mode                   which node policy runs: the MutatingAdmissionPolicy (policy mode) or the
                         webhook (webhook mode); both, or neither, fails
  policy-binding         policy mode: the policy is bound, with the settings ConfigMap as params
  records-validation     the ValidatingAdmissionPolicy that refuses forged node records is there
  webhook-configuration  webhook mode: the node webhook sees nodes/status, fails open, has a caBundle
  webhook-endpoints      the webhook's Service has ready endpoints
  webhook-certificate    the certificate the webhook presents (reached directly for an ExternalName
                         Service, else through a port-forward to a ready pod) verifies against the
                         caBundle the apiserver uses, for <service>.<namespace>.svc, and is not
                         about to expire
  settings               the settings ConfigMap exists and is valid
  published-records      policy mode: the webhook confirmed the published usage targets and
                         requests within metricsMaxAge
  metrics-api            metrics.k8s.io serves fresh NodeMetrics when a node uses the usage policy
  permissions            you may make the calls the plugin makes (SelfSubjectAccessReviews)
  autoscaler             whether a cluster autoscaler runs (its status ConfigMap or Deployment)

Per opted-in node (nodes that pass are counted in one line per check):
  records                overcommit.dev/applied matches the stored allocatable, and
                         overcommit.dev/raw is plausible: not above its capacity, and keeping the
                         node's capacity - allocatable
  restart-risk           the pods a restarted kubelet would reject if the node came back at its raw
                         allocatable (oldest admitted first, like the kubelet): what a webhook
                         outage during a kubelet restart does in webhook mode (FAIL); in policy
                         mode only a deleted or failing policy would (WARN)
  pressure               MemoryPressure, DiskPressure or PIDPressure
  memory-limits          memory overcommitted on a node whose pods' memory limits exceed its raw
                         memory, or that have none
  autoscaler             with a cluster autoscaler: nodes whose utilization (requests over
                         allocatable) is below its scale-down threshold only because allocatable is
                         overcommitted`,
		Example: `  # Is overcommit healthy here?
  kubectl overcommit check

  # Only the nodes of one pool, as JSON for a script
  kubectl overcommit check -l pool=batch -o json

  # A cluster autoscaler that removes nodes below 40% utilization
  kubectl overcommit check --scale-down-utilization-threshold 40`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("check takes no node names (got %q); select nodes with -l/--selector", args)
			}
			return nil
		},
		RunE: runE(o),
	}
	cmd.Flags().StringVarP(&o.selector, "selector", "l", "", "Check only the opted-in nodes that also match this label query (e.g. -l pool=batch)")
	cmd.Flags().StringVarP(&o.output, "output", "o", formatText, "Output format: text, json or yaml")
	cmd.Flags().Int64Var(&o.threshold, "scale-down-utilization-threshold", 50, "The cluster autoscaler's --scale-down-utilization-threshold, in percent (its default is 0.5, i.e. 50)")
	_ = cmd.RegisterFlagCompletionFunc("output", fixedCompletion(formatText, output.FormatJSON, output.FormatYAML))
	return cmd
}

// formatText is check's default output: lines to read, not a table.
const formatText = "text"

// Complete makes the clients.
func (o *CheckOptions) Complete(_ *cobra.Command, _ []string) error {
	return o.completeClients()
}

// Validate checks everything that needs no API call.
func (o *CheckOptions) Validate() error {
	if err := outputFormat(o.output, formatText, output.FormatJSON, output.FormatYAML); err != nil {
		return err
	}
	if o.threshold < 1 || o.threshold > 100 {
		return invalidFlag("--scale-down-utilization-threshold", strconv.FormatInt(o.threshold, 10), errors.New("must be a percentage from 1 to 100"))
	}
	return kube.Selection{Selector: o.selector}.Validate()
}

// Run reads the install and the opted-in nodes with their pods (one paginated LIST) at the same
// time, checks them and prints the report. It returns an error when a check failed.
func (o *CheckOptions) Run(ctx context.Context) error {
	selector := names.EnabledLabel + "=" + names.EnabledValue
	if o.selector != "" {
		selector += "," + o.selector
	}
	nodes, err := kube.ListNodes(ctx, o.clients.Kube, selector)
	if err != nil {
		return err
	}
	nodeNames := make([]string, len(nodes))
	for i := range nodes {
		nodeNames[i] = nodes[i].Name
	}
	var (
		wg      sync.WaitGroup
		pods    map[string][]kube.PodFacts
		podsErr error
	)
	if len(nodes) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pods, podsErr = kube.PodFactsByNode(ctx, o.clients.Kube, nodeNames)
		}()
	}
	in := o.readInstall(ctx, nodes)
	wg.Wait()
	if podsErr != nil {
		return podsErr
	}
	r := check.NewReport(in.Mode.Mode)
	r.OptedInNodes = len(nodes)
	r.Add(check.InstallResults(in)...)
	checked := make([]check.Node, len(nodes))
	for i := range nodes {
		checked[i] = check.Node{Node: &nodes[i], Pods: pods[nodes[i].Name]}
	}
	r.Add(check.NodeResults(checked, check.NodeConfig{Mode: in.Mode.Mode, Autoscaler: in.Autoscaler.Found != "",
		ScaleDownUtilization: o.threshold, Now: in.Now})...)
	if o.output == formatText {
		if err := r.WriteText(o.Out); err != nil {
			return err
		}
	} else if err := output.Encode(o.Out, o.output, r); err != nil {
		return errors.Join(errors.New("printing the check report"), err)
	}
	return r.Err()
}

// readInstall reads what the install checks judge. Nothing here fails the command: what cannot
// be read becomes a failed or warned check that says why.
func (o *CheckOptions) readInstall(ctx context.Context, nodes []corev1.Node) check.Install {
	c := o.clients.Kube
	in := check.Install{Now: o.now(), OptedIn: len(nodes)}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); in.Permissions = kube.CheckPermissions(ctx, c) }()
	go func() { defer wg.Done(); in.Autoscaler = kube.FindAutoscaler(ctx, c) }()
	go func() { defer wg.Done(); in.Usage = kube.ReadUsage(ctx, c, o.clients.Metrics) }()
	in.Mode = kube.DetectNodePolicy(ctx, c)
	in.Settings = kube.ReadSettings(ctx, c)
	ar := c.AdmissionregistrationV1()
	if in.Mode.Mode == kube.ModePolicy || in.Mode.Mode == kube.ModeBoth {
		b, err := ar.MutatingAdmissionPolicyBindings().Get(ctx, names.NodePolicyName, metav1.GetOptions{})
		switch {
		case err == nil:
			in.Binding = b
		case !apierrors.IsNotFound(err):
			in.BindingErr = err
		}
	}
	_, perr := ar.ValidatingAdmissionPolicies().Get(ctx, recordsvalidation.Name, metav1.GetOptions{})
	_, berr := ar.ValidatingAdmissionPolicyBindings().Get(ctx, recordsvalidation.Name, metav1.GetOptions{})
	in.RecordsValidation = perr == nil && berr == nil
	for _, err := range []error{perr, berr} {
		if err != nil && !apierrors.IsNotFound(err) {
			in.RecordsValidationErr = err
		}
	}
	mwc, err := ar.MutatingWebhookConfigurations().Get(ctx, names.WebhookConfigurationName, metav1.GetOptions{})
	switch {
	case err == nil:
		in.Webhook = mwc
		o.readServed(ctx, &in, mwc)
	case !apierrors.IsNotFound(err):
		in.WebhookErr = err
	}
	wg.Wait()
	for _, n := range nodes {
		if p, _ := policy.ForNode(n.Annotations); p == names.PolicyUsage {
			in.UsageNodes++
			if u, ok := in.Usage.Nodes[n.Name]; in.Usage.Unavailable == "" && (!ok || in.Now.Sub(u.Timestamp) > in.Settings.MaxMetricsAge) {
				in.StaleUsageNodes = append(in.StaleUsageNodes, n.Name)
			}
		}
	}
	return in
}

// readServed reads the endpoints of the Service the node webhook (else the first webhook) calls
// and the certificate it presents, or dials a URL webhook directly.
func (o *CheckOptions) readServed(ctx context.Context, in *check.Install, mwc *admissionregistrationv1.MutatingWebhookConfiguration) {
	if len(mwc.Webhooks) == 0 {
		return
	}
	w := mwc.Webhooks[0]
	for _, wh := range mwc.Webhooks {
		if wh.Name == names.NodeWebhookName {
			w = wh
		}
	}
	cc := w.ClientConfig
	served := &check.Served{CABundle: cc.CABundle}
	switch {
	case cc.Service != nil:
		port := int32(443)
		if cc.Service.Port != nil {
			port = *cc.Service.Port
		}
		e := kube.ReadServiceEndpoints(ctx, o.clients.Kube, cc.Service.Namespace, cc.Service.Name)
		in.Endpoints = &e
		served.ServerName = cc.Service.Name + "." + cc.Service.Namespace + ".svc"
		if e.Missing || e.Err != nil {
			return // the endpoints check says why; there is nothing to dial
		}
		served.Address, served.Chain, served.Err = kube.ServedChain(ctx, o.clients.REST, o.clients.Kube, e, port)
	case cc.URL != nil:
		u, err := url.Parse(*cc.URL)
		if err != nil {
			served.Address, served.Err = *cc.URL, fmt.Errorf("unreadable URL: %w", err)
			break
		}
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "443")
		}
		served.ServerName = u.Hostname()
		served.Address = host
		served.Chain, served.Err = kube.ServedChainAt(ctx, host)
	default:
		return
	}
	in.Served = served
}
