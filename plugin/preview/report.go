package preview

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/plugin/output"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/nodepatch"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// Kind is the kind of the preview report.
const Kind = "Preview"

// Sources of a preview.
const (
	// SourceLocal: computed by the plugin with the webhook's own code.
	SourceLocal = "local"
	// SourceServer: answered by the apiserver to a dry-run status write, the webhook included.
	SourceServer = "server"
)

// Preview is the report `kubectl overcommit preview -o json|yaml` prints.
type Preview struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Source is SourceLocal or SourceServer.
	Source string `json:"source"`
	// Mode is the node-policy mode installed (see kube.DetectNodePolicy): policy, webhook,
	// both, none or unknown.
	Mode string `json:"mode"`
	// SettingsSource says where Settings came from: "configmap" or "defaults".
	SettingsSource string          `json:"settingsSource"`
	Settings       policy.Settings `json:"settings"`
	Items          []Item          `json:"items"`
}

// Item is one node's preview.
type Item struct {
	Node string `json:"node"`
	// Enabled says whether the node is opted in now (before the change).
	Enabled bool `json:"enabled"`
	// Policy and the ratios are what the webhook applies (from its overcommit.dev/applied record).
	Policy      string `json:"policy"`
	CPURatio    string `json:"cpuRatio"`
	MemoryRatio string `json:"memoryRatio"`
	// Before is what is stored now, After what will be stored; cpu and memory only.
	Before Resources `json:"before"`
	After  Resources `json:"after"`
	// Delta is After minus Before.
	Delta  Resources `json:"delta"`
	Reason string    `json:"reason"`
	// Warnings are the policy's warnings (or the apiserver's admission warnings), never null.
	Warnings []string `json:"warnings"`
	// Fallback is true when the usage policy lacked fresh inputs and kept the raw values.
	Fallback bool `json:"fallback"`
	// UsageStatistic is the statistic the usage policy took as the node's usage (the applied
	// record's "usage"): in webhook mode the webhook's last one, in policy mode the published
	// target's. Absent when the policy used none.
	UsageStatistic *output.Statistic `json:"usageStatistic,omitempty"`
	// Hold names the pressure guard's holds (the applied record's "hold"), absent when none.
	Hold string `json:"hold,omitempty"`
	// Patch is the exact JSON patch the webhook returns for the node, never null.
	Patch []jsonpatch.Operation `json:"patch"`
}

// Resources are the cpu and memory of a node's allocatable and capacity.
type Resources struct {
	Allocatable corev1.ResourceList `json:"allocatable"`
	Capacity    corev1.ResourceList `json:"capacity"`
}

// New returns an empty report.
func New(source, mode, settingsSource string, s policy.Settings) *Preview {
	return &Preview{APIVersion: output.APIVersion, Kind: Kind, Source: source, Mode: mode, SettingsSource: settingsSource, Settings: s, Items: []Item{}}
}

// Item reports the plan.
func (p *Plan) Item() Item {
	// Result holds the full lists the patch writes (equal to the input where Keep is set).
	after := corev1.NodeStatus{Allocatable: p.Result.Allocatable, Capacity: p.Result.Capacity}
	it := newItem(p.Node, after, p.Result.Applied, p.Ops)
	it.Reason = p.Result.Reason
	it.Warnings = append(it.Warnings, p.Result.Warnings...)
	if p.OneSample {
		it.Warnings = append(it.Warnings, OneSampleWarning)
	}
	it.Fallback = p.Result.Fallback
	return it
}

func newItem(before *corev1.Node, after corev1.NodeStatus, applied policy.Applied, ops []jsonpatch.Operation) Item {
	it := Item{
		Node:        before.Name,
		Enabled:     policy.OptedIn(before.Labels),
		Policy:      applied.Policy,
		CPURatio:    applied.CPURatio,
		MemoryRatio: applied.MemoryRatio,
		Before:      resources(before.Status),
		Warnings:    []string{},
		Patch:       ops,
		// The applied record says why, for the local and the server preview alike.
		UsageStatistic: output.NewStatistic(output.RecordedStatistic(applied)),
		Hold:           applied.Hold,
	}
	if it.Patch == nil {
		it.Patch = []jsonpatch.Operation{}
	}
	it.After = resources(after)
	it.Delta = resourcesDelta(it.Before, it.After)
	return it
}

// serverItem reports the apiserver's answer to a dry-run opt-in of before (hypo is before with
// the change, as sent); mode is the node-policy mode installed.
func serverItem(before, hypo, answer *corev1.Node, mode string, warnings []string) (Item, error) {
	res := policy.Result{Allocatable: answer.Status.Allocatable, Capacity: answer.Status.Capacity}
	var problems []string
	if s, ok := answer.Annotations[names.AppliedAnnotation]; ok {
		a, err := policy.ParseApplied(s)
		if err != nil {
			return Item{}, fmt.Errorf("node %q: the apiserver returned an unreadable %s: %w", before.Name, names.AppliedAnnotation, err)
		}
		res.Applied, res.AppliedRecord = a, s
	} else {
		problems = append(problems, "the apiserver returned the node without "+names.AppliedAnnotation+": "+notApplied(mode))
	}
	if s, ok := answer.Annotations[names.RawAnnotation]; ok {
		r, err := policy.ParseRaw(s)
		if err != nil {
			return Item{}, fmt.Errorf("node %q: the apiserver returned an unreadable %s: %w", before.Name, names.RawAnnotation, err)
		}
		res.Raw, res.RawRecord = r, s
	}
	// The same builder as the webhook's, from what the apiserver stored, gives the patch the
	// webhook must have returned (annotation values round-trip exactly through their JSON).
	ops, err := nodepatch.Operations(policy.NodeFrom(hypo), res)
	if err != nil {
		return Item{}, fmt.Errorf("node %q: %w", before.Name, err)
	}
	it := newItem(before, answer.Status, res.Applied, ops)
	it.Reason = "answered by the apiserver (dry-run status write)"
	for _, w := range warnings {
		// The report drops the webhook's prefix, so local and server previews read the same.
		it.Warnings = append(it.Warnings, strings.TrimPrefix(w, names.WarningPrefix))
	}
	it.Warnings = append(it.Warnings, problems...)
	return it, nil
}

// notApplied says, for the mode installed, why no node policy may have acted.
func notApplied(mode string) string {
	switch mode {
	case kube.ModeWebhook:
		return "no webhook applied a policy (is overcommit-webhook installed and reachable?)"
	case kube.ModePolicy:
		return "the MutatingAdmissionPolicy " + names.NodePolicyName + " applied no policy (does the settings ConfigMap " +
			names.Namespace + "/" + names.SettingsConfigMap + " exist, and the binding " + names.NodePolicyName + "?)"
	}
	return "no node policy applied (is one installed? see kubectl overcommit install --help)"
}

func resources(s corev1.NodeStatus) Resources {
	return Resources{Allocatable: policy.Pick(s.Allocatable), Capacity: policy.Pick(s.Capacity)}
}

func resourcesDelta(before, after Resources) Resources {
	return Resources{Allocatable: delta(before.Allocatable, after.Allocatable), Capacity: delta(before.Capacity, after.Capacity)}
}

func delta(before, after corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for _, name := range policy.Resources {
		a, ok := after[name]
		if !ok {
			continue
		}
		b := before[name]
		out[name] = policy.Quantity(name, policy.Amount(name, a)-policy.Amount(name, b))
	}
	return out
}

// WriteTable prints the report as a table: allocatable before, after and the difference. The
// BASIS column, the usage statistic and the pressure holds behind a result, appears when some
// node has one.
func (p *Preview) WriteTable(w io.Writer) error {
	withBasis := false
	for _, it := range p.Items {
		withBasis = withBasis || it.basis() != ""
	}
	header := []string{"NODE", "ENABLED", "POLICY", "CPU BEFORE", "CPU AFTER", "CPU DELTA",
		"MEMORY BEFORE", "MEMORY AFTER", "MEMORY DELTA"}
	if withBasis {
		header = append(header, "BASIS")
	}
	header = append(header, "REASON", "WARNINGS")
	rows := make([][]string, 0, len(p.Items))
	for _, it := range p.Items {
		warnings := output.None
		if len(it.Warnings) > 0 {
			warnings = strings.Join(it.Warnings, "; ")
		}
		policyName := it.Policy
		if policyName == "" {
			policyName = output.None
		}
		row := []string{it.Node, fmt.Sprint(it.Enabled), policyName,
			output.Cell(it.Before.Allocatable, corev1.ResourceCPU), output.Cell(it.After.Allocatable, corev1.ResourceCPU),
			output.SignedCell(it.Delta.Allocatable, corev1.ResourceCPU),
			output.Cell(it.Before.Allocatable, corev1.ResourceMemory), output.Cell(it.After.Allocatable, corev1.ResourceMemory),
			output.SignedCell(it.Delta.Allocatable, corev1.ResourceMemory)}
		if withBasis {
			basis := it.basis()
			if basis == "" {
				basis = output.None
			}
			row = append(row, basis)
		}
		rows = append(rows, append(row, it.Reason, warnings))
	}
	return output.Table(w, header, rows, nil)
}

// basis is the BASIS cell: the statistic in full (policy.Statistic.Describe) and the holds.
func (it Item) basis() string {
	var stat string
	if s := it.UsageStatistic; s != nil {
		stat = s.Policy().Describe()
	}
	return output.Basis(stat, output.Held(it.Hold))
}

// ErrPatchNeedsOneNode is returned by WritePatch for a report of several nodes: a bare JSON
// patch does not say which node it is for (-o json carries each node's patch).
var ErrPatchNeedsOneNode = errors.New("-o patch prints the JSON patch of exactly one node; name one node, or use -o json, which holds each node's patch")

// WritePatch prints the single node's JSON patch, exactly as the webhook returns it.
func (p *Preview) WritePatch(w io.Writer) error {
	if len(p.Items) != 1 {
		return ErrPatchNeedsOneNode
	}
	b, err := nodepatch.Marshal(p.Items[0].Patch)
	if err != nil {
		return fmt.Errorf("encoding patch: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
