package cmd

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/plugin/output"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/sidecar"
)

// defaultWebhookNamespace is where the install keeps the webhook and its sidecar templates.
const defaultWebhookNamespace = "overcommit-system"

// Template states in the sidecars report.
const (
	TemplateValid   = "Valid"
	TemplateInvalid = "Invalid"
	// TemplateMissing: pods record an injection of a template whose ConfigMap is gone.
	TemplateMissing = "Missing"
)

// SidecarsReport is the output of `kubectl overcommit sidecars`.
type SidecarsReport struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Namespace  string            `json:"namespace"`
	Templates  []TemplateSummary `json:"templates"`
}

// TemplateSummary is one template: whether the webhook can inject it and how many pods have it.
type TemplateSummary struct {
	Name           string   `json:"name"`
	Status         string   `json:"status"`
	Native         bool     `json:"native"`
	Containers     []string `json:"containers,omitempty"`
	InitContainers []string `json:"initContainers,omitempty"`
	// Pods counts the pods, in all namespaces, whose status annotation records the template.
	Pods  int    `json:"pods"`
	Error string `json:"error,omitempty"`
}

// SidecarsOptions are the options of `kubectl overcommit sidecars`.
type SidecarsOptions struct {
	base
	webhookNamespace string
	output           string
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
	cmd.Flags().StringVar(&o.webhookNamespace, "webhook-namespace", defaultWebhookNamespace, "Namespace of the overcommit webhook, which holds the sidecar templates")
	cmd.Flags().StringVarP(&o.output, "output", "o", output.FormatTable, "Output format: table, json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("output", fixedCompletion(output.FormatTable, output.FormatJSON, output.FormatYAML))
	return cmd
}

// Complete makes the clients.
func (o *SidecarsOptions) Complete(_ *cobra.Command, _ []string) error { return o.completeClients() }

// Validate checks the flags.
func (o *SidecarsOptions) Validate() error {
	if o.webhookNamespace == "" {
		return errors.New("--webhook-namespace must not be empty")
	}
	return outputFormat(o.output, output.FormatTable, output.FormatJSON, output.FormatYAML)
}

// Run reads the templates and every pod's status annotation (one paginated LIST), and prints.
func (o *SidecarsOptions) Run(ctx context.Context) error {
	r, err := sidecarsReport(ctx, o.clients.Kube, o.webhookNamespace)
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
	rows := make([][]string, 0, len(r.Templates))
	for _, t := range r.Templates {
		rows = append(rows, []string{t.Name, t.Status, strconv.FormatBool(t.Native), orNone(t.Containers), orNone(t.InitContainers),
			strconv.Itoa(t.Pods), orNoneString(t.Error)})
	}
	return output.Table(o.Out, []string{"NAME", "STATUS", "NATIVE", "CONTAINERS", "INIT-CONTAINERS", "PODS", "ERROR"}, rows, nil)
}

func sidecarsReport(ctx context.Context, c kubernetes.Interface, namespace string) (*SidecarsReport, error) {
	byName := map[string]*TemplateSummary{}
	cms, err := c.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{LabelSelector: names.SidecarTemplateLabel})
	if err != nil {
		return nil, fmt.Errorf("listing sidecar templates in namespace %s: %w", namespace, err)
	}
	for _, cm := range cms.Items {
		s := &TemplateSummary{Name: cm.Name, Status: TemplateValid}
		t, err := sidecar.FromConfigMap(cm.Name, cm.Data)
		if err != nil {
			s.Status, s.Error = TemplateInvalid, strings.ReplaceAll(err.Error(), "\n", "; ")
		} else {
			s.Native = t.Native
			for _, ct := range t.Containers {
				s.Containers = append(s.Containers, ct.Name)
			}
			for _, ct := range t.InitContainers {
				s.InitContainers = append(s.InitContainers, ct.Name)
			}
		}
		byName[cm.Name] = s
	}
	// The pods that record each template, from the same paginated listing the savings report
	// uses (pages of kube.PodPageSize, restarted if its continue token expires).
	uses := map[string]int{}
	err = kube.EachPod(ctx, c, "", func(p *corev1.Pod) {
		st, err := sidecar.ReadStatus(p.Annotations)
		if err != nil {
			return // not ours to judge here; the webhook denies such pods
		}
		for _, rec := range st.Templates {
			uses[rec.Name]++
		}
	}, func() { clear(uses) })
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	for name, n := range uses {
		s, ok := byName[name]
		if !ok {
			s = &TemplateSummary{Name: name, Status: TemplateMissing, Error: "no ConfigMap labelled " + names.SidecarTemplateLabel + " of this name"}
			byName[name] = s
		}
		s.Pods = n
	}
	r := &SidecarsReport{APIVersion: output.APIVersion, Kind: "SidecarsReport", Namespace: namespace, Templates: []TemplateSummary{}}
	for _, s := range byName {
		r.Templates = append(r.Templates, *s)
	}
	sort.Slice(r.Templates, func(i, j int) bool { return r.Templates[i].Name < r.Templates[j].Name })
	return r, nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return output.None
	}
	return strings.Join(s, ",")
}

func orNoneString(s string) string {
	if s == "" {
		return output.None
	}
	return s
}
