package optin

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// Restore is how one node is opted out.
type Restore struct {
	Node *corev1.Node
	// Metadata is the merge patch on the node that removes the label, the user's annotations and
	// the records the webhook publishes on opted-in nodes in policy mode (usage target,
	// requests), in one write: the publisher watches opted-in nodes only, so nothing else would
	// remove them; nil when there is none of them.
	Metadata []byte
	// Status is the merge patch on the status subresource that puts the kubelet's raw cpu and
	// memory back and removes the webhook's records; nil when there is nothing to restore.
	Status []byte
	// Raw is the kubelet's own view recorded by the webhook; nil when the node has no readable
	// record.
	Raw *policy.Snapshot
	// Warnings are problems with the node's records.
	Warnings []string
}

// PlanRestore works out how to opt n out. It makes no API call.
func PlanRestore(n *corev1.Node) (Restore, error) {
	r := Restore{Node: n}
	labels := map[string]any{}
	ann := map[string]any{}
	if _, ok := n.Labels[names.EnabledLabel]; ok {
		labels[names.EnabledLabel] = nil
	}
	for _, k := range []string{names.CPURatioAnnotation, names.MemoryRatioAnnotation, names.PolicyAnnotation,
		names.UsageTargetAnnotation, names.RequestsAnnotation} {
		if _, ok := n.Annotations[k]; ok {
			ann[k] = nil
		}
	}
	if len(labels)+len(ann) > 0 {
		meta := map[string]any{}
		if len(labels) > 0 {
			meta["labels"] = labels
		}
		if len(ann) > 0 {
			meta["annotations"] = ann
		}
		b, err := json.Marshal(map[string]any{"metadata": meta})
		if err != nil {
			return r, fmt.Errorf("encoding the opt-out patch of node %q: %w", n.Name, err)
		}
		r.Metadata = b
	}

	records := map[string]any{}
	for _, k := range []string{names.RawAnnotation, names.AppliedAnnotation} {
		if _, ok := n.Annotations[k]; ok {
			records[k] = nil
		}
	}
	status := map[string]any{}
	if s, ok := n.Annotations[names.RawAnnotation]; ok {
		raw, err := policy.ParseRaw(s)
		switch {
		case err != nil:
			r.Warnings = append(r.Warnings, fmt.Sprintf("node/%s: unreadable %s (%v); the kubelet restores its allocatable at its next status update", n.Name, names.RawAnnotation, err))
		case len(raw.Allocatable) == 0:
			r.Warnings = append(r.Warnings, fmt.Sprintf("node/%s: %s records no allocatable; the kubelet restores it at its next status update", n.Name, names.RawAnnotation))
		case aboveCapacity(raw):
			// Restoring it would store what a forger wrote; the kubelet reports the truth.
			name, _ := raw.AboveCapacity()
			r.Warnings = append(r.Warnings, fmt.Sprintf("node/%s: %s records %s allocatable above its capacity, which no kubelet reports; not restored: the kubelet restores its allocatable at its next status update", n.Name, names.RawAnnotation, name))
		default:
			r.Raw = &raw
			if l := policy.Pick(raw.Allocatable); len(l) > 0 {
				status["allocatable"] = l
			}
			if l := policy.Pick(raw.Capacity); len(l) > 0 {
				status["capacity"] = l
			}
		}
	}
	if len(records)+len(status) > 0 {
		body := map[string]any{}
		if len(records) > 0 {
			body["metadata"] = map[string]any{"annotations": records}
		}
		if len(status) > 0 {
			body["status"] = status
		}
		b, err := json.Marshal(body)
		if err != nil {
			return r, fmt.Errorf("encoding the restore patch of node %q: %w", n.Name, err)
		}
		r.Status = b
	}
	return r, nil
}

func aboveCapacity(s policy.Snapshot) bool {
	_, above := s.AboveCapacity()
	return above
}

// Overbooked is a node whose bound pods request more of a resource than the raw allocatable
// that disable would restore.
type Overbooked struct {
	Node      string
	Resource  corev1.ResourceName
	Requested int64
	Raw       int64
}

func (o Overbooked) String() string {
	req, raw := policy.Quantity(o.Resource, o.Requested), policy.Quantity(o.Resource, o.Raw)
	return fmt.Sprintf("node/%s: its pods request %s %s, more than its raw allocatable %s",
		o.Node, req.String(), o.Resource, raw.String())
}

// Overbooking lists, for every node whose allocatable disable would lower, each resource its
// non-terminal pods request more of than the raw allocatable. Restoring such a node leaves the
// scheduler's books over-full: nothing new fits, and a kubelet restart re-admits pods against the
// smaller allocatable and may reject some (OutOfcpu, OutOfmemory).
func Overbooking(restores []Restore, loads map[string]kube.Load) []Overbooked {
	var out []Overbooked
	for _, r := range restores {
		if r.Raw == nil {
			continue
		}
		l := loads[r.Node.Name]
		for _, name := range policy.Resources {
			raw, ok := r.Raw.Allocatable[name]
			if !ok {
				continue
			}
			cur, ok := r.Node.Status.Allocatable[name]
			if ok && cur.Cmp(raw) <= 0 {
				continue // disable does not lower it
			}
			requested := l.Requests.Of(name)
			if rv := policy.Amount(name, raw); requested > rv {
				out = append(out, Overbooked{Node: r.Node.Name, Resource: name, Requested: requested, Raw: rv})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// OverbookedError is the refusal to disable without --force.
type OverbookedError struct{ Nodes []Overbooked }

func (e *OverbookedError) Error() string {
	lines := make([]string, len(e.Nodes))
	for i, o := range e.Nodes {
		lines[i] = "  " + o.String()
	}
	return "refusing to disable overcommit, nothing changed:\n" + strings.Join(lines, "\n") +
		"\nthe scheduler would see these nodes over-full and a kubelet restart could reject running pods; " +
		"move pods away first, or use --force"
}

// DisableConfig is what Disable needs; Restores come from PlanRestore, one per node.
type DisableConfig struct {
	DryRun   DryRun
	Restores []Restore
}

// Disable opts each node out. Outcomes are in the order of Restores.
func Disable(ctx context.Context, c kubernetes.Interface, cfg DisableConfig) []Outcome {
	out := make([]Outcome, len(cfg.Restores))
	forEach(len(cfg.Restores), func(i int) {
		out[i] = disable(ctx, c, cfg.DryRun, cfg.Restores[i])
	})
	return out
}

func disable(ctx context.Context, c kubernetes.Interface, dry DryRun, r Restore) Outcome {
	o := Outcome{Name: r.Node.Name, Warnings: r.Warnings}
	if r.Metadata == nil && r.Status == nil {
		o.Node = r.Node
		o.Message = "overcommit not enabled" + dry.Suffix()
		return o
	}
	var stored *corev1.Node
	var err error
	switch dry {
	case DryRunClient:
		stored, err = disableLocally(r)
	case DryRunServer:
		stored, err = disableServerDryRun(ctx, c, r)
	default:
		stored, err = disableNow(ctx, c, r)
	}
	if err != nil {
		o.Err = err
		return o
	}
	o.Node = stored
	o.Message = "overcommit disabled"
	if r.Raw != nil {
		var restored []string
		for _, name := range policy.Resources {
			if q, ok := r.Raw.Allocatable[name]; ok {
				restored = append(restored, fmt.Sprintf("%s %s", name, q.String()))
			}
		}
		o.Message += " (allocatable restored: " + join(restored) + ")"
	}
	o.Message += dry.Suffix()
	return o
}

// disableNow removes the label first: from then on the webhook's objectSelector matches neither
// the old nor the new object of the restore write, so the webhook is not called and cannot
// re-apply the policy to the values being restored.
func disableNow(ctx context.Context, c kubernetes.Interface, r Restore) (*corev1.Node, error) {
	nodes := c.CoreV1().Nodes()
	opts := metav1.PatchOptions{FieldManager: names.PluginFieldManager}
	stored := r.Node
	if r.Metadata != nil {
		n, err := nodes.Patch(ctx, r.Node.Name, types.MergePatchType, r.Metadata, opts)
		if err != nil {
			return nil, fmt.Errorf("cannot remove the opt-in of node %q: %w", r.Node.Name, err)
		}
		stored = n
	}
	if r.Status != nil {
		n, err := nodes.Patch(ctx, r.Node.Name, types.MergePatchType, r.Status, opts, "status")
		if err != nil {
			return nil, fmt.Errorf("node %q is opted out, but restoring its raw allocatable failed (its kubelet restores it at its next status update): %w", r.Node.Name, err)
		}
		stored = n
	}
	return stored, nil
}

// disableServerDryRun checks the label write, then sends one status write that carries all of it:
// a dry run does not keep the first write, and the answer should be the node as it would end up.
func disableServerDryRun(ctx context.Context, c kubernetes.Interface, r Restore) (*corev1.Node, error) {
	nodes := c.CoreV1().Nodes()
	dry := metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: names.PluginFieldManager}
	if r.Metadata != nil {
		if _, err := nodes.Patch(ctx, r.Node.Name, types.MergePatchType, r.Metadata, dry); err != nil {
			return nil, fmt.Errorf("cannot remove the opt-in of node %q: %w", r.Node.Name, err)
		}
	}
	combined, err := combine(r)
	if err != nil {
		return nil, err
	}
	n, err := nodes.Patch(ctx, r.Node.Name, types.MergePatchType, combined, dry, "status")
	if err != nil {
		return nil, fmt.Errorf("dry-run restore of node %q: %w", r.Node.Name, err)
	}
	return n, nil
}

func disableLocally(r Restore) (*corev1.Node, error) {
	doc, err := json.Marshal(r.Node)
	if err != nil {
		return nil, fmt.Errorf("encoding node %q: %w", r.Node.Name, err)
	}
	for _, p := range [][]byte{r.Metadata, r.Status} {
		if p == nil {
			continue
		}
		if doc, err = jsonpatchapply.MergePatch(doc, p); err != nil {
			return nil, fmt.Errorf("applying the opt-out to node %q: %w", r.Node.Name, err)
		}
	}
	var out corev1.Node
	if err := json.Unmarshal(doc, &out); err != nil {
		return nil, fmt.Errorf("decoding node %q: %w", r.Node.Name, err)
	}
	return &out, nil
}

// combine merges the metadata and status patches into one.
func combine(r Restore) ([]byte, error) {
	switch {
	case r.Metadata == nil:
		return r.Status, nil
	case r.Status == nil:
		return r.Metadata, nil
	}
	b, err := jsonpatchapply.MergeMergePatches(r.Metadata, r.Status)
	if err != nil {
		return nil, fmt.Errorf("combining the opt-out patches of node %q: %w", r.Node.Name, err)
	}
	return b, nil
}
