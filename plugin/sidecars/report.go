// Package sidecars is the plugin's view of the sidecar templates: the report of which templates
// the webhook can inject and how many pods use them, and the offline injection of pods and
// workloads with the webhook's own code (shared/sidecar). The commands in plugin/cmd only wire
// flags to it.
package sidecars

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/plugin/output"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/sidecar"
)

// Template states in the sidecars report.
const (
	TemplateValid   = "Valid"
	TemplateInvalid = "Invalid"
	// TemplateMissing: pods record an injection of a template whose ConfigMap is gone.
	TemplateMissing = "Missing"
)

// Report is the output of `kubectl overcommit sidecars`.
type Report struct {
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

// Build reads the templates in namespace and every pod's status annotation (one paginated LIST).
func Build(ctx context.Context, c kubernetes.Interface, namespace string) (*Report, error) {
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
	r := &Report{APIVersion: output.APIVersion, Kind: "SidecarsReport", Namespace: namespace, Templates: []TemplateSummary{}}
	for _, s := range byName {
		r.Templates = append(r.Templates, *s)
	}
	sort.Slice(r.Templates, func(i, j int) bool { return r.Templates[i].Name < r.Templates[j].Name })
	return r, nil
}

// WriteTable prints the report as kubectl prints a list; an empty report is the caller's to
// announce (kubectl says "No resources found" on stderr, not as a table).
func (r *Report) WriteTable(w io.Writer) error {
	rows := make([][]string, 0, len(r.Templates))
	for _, t := range r.Templates {
		rows = append(rows, []string{t.Name, t.Status, strconv.FormatBool(t.Native), orNone(t.Containers), orNone(t.InitContainers),
			strconv.Itoa(t.Pods), orNoneString(t.Error)})
	}
	return output.Table(w, []string{"NAME", "STATUS", "NATIVE", "CONTAINERS", "INIT-CONTAINERS", "PODS", "ERROR"}, rows, nil)
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
