package optin

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/plugin/preview"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// triggerPatch is an empty status write: it changes nothing by itself, but it passes through
// admission, so the node policy (webhook or MutatingAdmissionPolicy) applies now instead of at the
// kubelet's next report (up to 5 minutes away when nothing changes on the node).
var triggerPatch = []byte(`{"status":{}}`)

// EnableConfig is what Enable needs; Plans come from preview.Local for the same Change, one per
// node, computed (and validated) before anything is written.
type EnableConfig struct {
	Change preview.Change
	DryRun DryRun
	Plans  []*preview.Plan
	// Mode is the node-policy mode installed (kube.DetectNodePolicy): when the policy did not
	// act, it says where to look.
	Mode string
	// SettingsMissing says the settings ConfigMap does not exist, so the policy leaves nodes
	// unchanged whatever the mode.
	SettingsMissing bool
}

// Enable opts each planned node in. Outcomes are in the order of Plans.
func Enable(ctx context.Context, c kubernetes.Interface, cfg EnableConfig) []Outcome {
	out := make([]Outcome, len(cfg.Plans))
	forEach(len(cfg.Plans), func(i int) {
		out[i] = enable(ctx, c, cfg, cfg.Plans[i])
	})
	return out
}

func enable(ctx context.Context, c kubernetes.Interface, cfg EnableConfig, p *preview.Plan) Outcome {
	o := Outcome{Name: p.Node.Name}
	var stored *corev1.Node
	var err error
	switch cfg.DryRun {
	case DryRunClient:
		stored, err = p.After()
	case DryRunServer:
		stored, err = enableServerDryRun(ctx, c, cfg.Change, p.Node)
	default:
		stored, err = enableNow(ctx, c, cfg.Change, p.Node)
	}
	if err != nil {
		o.Err = err
		return o
	}
	o.Node = stored
	applied, pending := p.Result.Applied, ""
	if cfg.DryRun != DryRunClient {
		got, problem := policyApplied(stored, p.Result.Applied, cfg)
		if problem != "" {
			o.Warnings = append(o.Warnings, problem)
			pending = ", not applied yet"
		} else {
			applied = got
		}
	}
	o.Message = fmt.Sprintf("overcommit enabled (%s)%s%s", ratioText(applied.Policy, applied.CPURatio, applied.MemoryRatio), pending, cfg.DryRun.Suffix())
	return o
}

func enableNow(ctx context.Context, c kubernetes.Interface, change preview.Change, n *corev1.Node) (*corev1.Node, error) {
	nodes := c.CoreV1().Nodes()
	if change.Pending(n) {
		patch, err := change.MergePatch()
		if err != nil {
			return nil, err
		}
		if _, err := nodes.Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: names.PluginFieldManager}); err != nil {
			return nil, fmt.Errorf("cannot label node %q: %w", n.Name, err)
		}
	}
	stored, err := nodes.Patch(ctx, n.Name, types.MergePatchType, triggerPatch, metav1.PatchOptions{FieldManager: names.PluginFieldManager}, "status")
	if err != nil {
		return nil, fmt.Errorf("node %q is labelled, but the status write that applies the policy now failed (the webhook applies it at the kubelet's next status report): %w", n.Name, err)
	}
	return stored, nil
}

// enableServerDryRun sends both writes as dry runs. The label written through the nodes
// resource is not kept by a dry run, so the status write carries the label and annotations itself:
// the apiserver then answers with what the webhook would store.
func enableServerDryRun(ctx context.Context, c kubernetes.Interface, change preview.Change, n *corev1.Node) (*corev1.Node, error) {
	patch, err := change.MergePatch()
	if err != nil {
		return nil, err
	}
	dry := metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: names.PluginFieldManager}
	if _, err := c.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, patch, dry); err != nil {
		return nil, fmt.Errorf("cannot label node %q: %w", n.Name, err)
	}
	stored, err := c.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, patch, dry, "status")
	if err != nil {
		return nil, fmt.Errorf("dry-run status write of node %q: %w", n.Name, err)
	}
	return stored, nil
}

// policyApplied checks that the node policy acted on the status write: its applied record must be
// present, describe the stored allocatable, and carry the policy and ratios the preview expected.
// A webhook that is down is ignored by the apiserver (failurePolicy Ignore), and so is a
// MutatingAdmissionPolicy that fails or lacks its params, so this check is the only way the user
// learns that nothing happened. The hint is the mode's: a webhook can be down, a policy cannot.
func policyApplied(n *corev1.Node, want policy.Applied, cfg EnableConfig) (policy.Applied, string) {
	who, hint := "the node policy", "is a node policy installed? see `kubectl overcommit install --help`"
	switch cfg.Mode {
	case kube.ModeWebhook:
		who, hint = "the webhook", "is overcommit-webhook running? see `kubectl get mutatingwebhookconfiguration "+names.WebhookConfigurationName+"`"
	case kube.ModePolicy:
		who, hint = "the MutatingAdmissionPolicy "+names.NodePolicyName,
			"see `kubectl get mutatingadmissionpolicy,mutatingadmissionpolicybinding "+names.NodePolicyName+"`"
	}
	if cfg.SettingsMissing {
		hint = "the settings ConfigMap " + names.Namespace + "/" + names.SettingsConfigMap + " does not exist"
	}
	s, ok := n.Annotations[names.AppliedAnnotation]
	if !ok {
		if cfg.Mode != kube.ModeWebhook && cfg.Mode != kube.ModePolicy {
			return policy.Applied{}, fmt.Sprintf("node/%s is opted in, but no node policy applied (%s)", n.Name, hint)
		}
		return policy.Applied{}, fmt.Sprintf("node/%s is opted in, but %s did not apply a policy (%s)", n.Name, who, hint)
	}
	got, err := policy.ParseApplied(s)
	if err != nil {
		return policy.Applied{}, fmt.Sprintf("node/%s: unreadable %s: %v", n.Name, names.AppliedAnnotation, err)
	}
	for _, name := range policy.Resources {
		a, okA := got.Allocatable[name]
		b, okB := n.Status.Allocatable[name]
		if okA != okB || (okA && a.Cmp(b) != 0) {
			return got, fmt.Sprintf("node/%s: the stored %s allocatable %s is not what %s last applied (%s); %s",
				n.Name, name, b.String(), who, a.String(), hint)
		}
	}
	if got.Policy != want.Policy || got.CPURatio != want.CPURatio || got.MemoryRatio != want.MemoryRatio {
		return got, fmt.Sprintf("node/%s: %s applied %s where the plugin expected %s",
			n.Name, who, ratioText(got.Policy, got.CPURatio, got.MemoryRatio), ratioText(want.Policy, want.CPURatio, want.MemoryRatio))
	}
	return got, ""
}
