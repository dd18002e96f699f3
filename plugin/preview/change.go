// Package preview computes what the webhook stores for a node, with the very code the webhook
// runs (shared/policy and shared/nodepatch), or asks the apiserver itself with a dry run.
package preview

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// Change is an opt-in as `enable` writes it: the label, plus the annotations for the settings
// the user gave. An empty field keeps what the node already has (or the webhook's default).
type Change struct {
	// CPURatio and MemoryRatio are canonical decimals ("2", "1.25").
	CPURatio    string
	MemoryRatio string
	// Policy is names.PolicyStatic or names.PolicyUsage.
	Policy string
}

func (c Change) annotations() map[string]string {
	ann := map[string]string{}
	for k, v := range map[string]string{
		names.CPURatioAnnotation:    c.CPURatio,
		names.MemoryRatioAnnotation: c.MemoryRatio,
		names.PolicyAnnotation:      c.Policy,
	} {
		if v != "" {
			ann[k] = v
		}
	}
	return ann
}

// Apply returns a copy of n carrying the change.
func (c Change) Apply(n *corev1.Node) *corev1.Node {
	out := n.DeepCopy()
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	out.Labels[names.EnabledLabel] = names.EnabledValue
	ann := c.annotations()
	if len(ann) > 0 && out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	for k, v := range ann {
		out.Annotations[k] = v
	}
	return out
}

// Pending reports whether n lacks part of the change, i.e. whether the metadata patch changes
// anything.
func (c Change) Pending(n *corev1.Node) bool {
	if n.Labels[names.EnabledLabel] != names.EnabledValue {
		return true
	}
	for k, v := range c.annotations() {
		if cur, ok := n.Annotations[k]; !ok || cur != v {
			return true
		}
	}
	return false
}

// MergePatch is the JSON merge patch that makes the change. It only sets keys, so it never
// removes a user's other labels or annotations.
func (c Change) MergePatch() ([]byte, error) {
	meta := map[string]any{"labels": map[string]string{names.EnabledLabel: names.EnabledValue}}
	if ann := c.annotations(); len(ann) > 0 {
		meta["annotations"] = ann
	}
	b, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return nil, fmt.Errorf("encoding the opt-in patch: %w", err)
	}
	return b, nil
}

// EffectivePolicy is the policy the webhook will pick for n after the change (policy.ForNode:
// a value it does not know is static).
func (c Change) EffectivePolicy(n *corev1.Node) string {
	if c.Policy != "" {
		return c.Policy
	}
	p, _ := policy.ForNode(n.Annotations)
	return p
}
