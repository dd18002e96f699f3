package preview

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/nodepatch"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// Writer is the username the preview gives the policy as the node's writer: the write that
// makes the webhook act is the plugin's own status patch, and the plugin is never the node's
// kubelet, so the never-compound rule treats it like any other non-kubelet writer.
const Writer = "kubectl-overcommit"

// Plan is what the webhook will store for one node after a Change.
type Plan struct {
	// Node is the node as stored now.
	Node *corev1.Node
	// Hypothetical is Node with the change applied: what the webhook receives.
	Hypothetical *corev1.Node
	Result       policy.Result
	// Ops is the JSON patch the webhook returns for Hypothetical.
	Ops []jsonpatch.Operation
}

// Compute plans one node with the webhook's code: the same Input the node handler builds, the
// same policy.Compute and the same nodepatch.Operations. sample and unavailable are the usage
// policy's inputs (see Sample); they are ignored unless the node ends up on the usage policy.
func Compute(n *corev1.Node, c Change, s policy.Settings, sample *policy.UsageSample, unavailable string, now time.Time) (*Plan, error) {
	hypo := c.Apply(n)
	in := policy.Input{
		Node:   policy.NodeFrom(hypo),
		Writer: Writer,
		Now:    now,
	}
	if pol, _ := policy.ForNode(hypo.Annotations); pol == names.PolicyUsage {
		in.Usage, in.UsageUnavailable = sample, unavailable
	}
	res := policy.Compute(in, s)
	ops, err := nodepatch.Operations(in.Node, res)
	if err != nil {
		return nil, fmt.Errorf("node %q: %w", n.Name, err)
	}
	return &Plan{Node: n, Hypothetical: hypo, Result: res, Ops: ops}, nil
}

// After returns the node as it will be stored: Hypothetical with the patch applied, exactly as
// the apiserver applies the webhook's patch.
func (p *Plan) After() (*corev1.Node, error) {
	doc, err := json.Marshal(p.Hypothetical)
	if err != nil {
		return nil, fmt.Errorf("encoding node %q: %w", p.Node.Name, err)
	}
	raw, err := nodepatch.Marshal(p.Ops)
	if err != nil {
		return nil, fmt.Errorf("encoding the patch of node %q: %w", p.Node.Name, err)
	}
	patch, err := jsonpatchapply.DecodePatch(raw)
	if err != nil {
		return nil, fmt.Errorf("decoding the patch of node %q: %w", p.Node.Name, err)
	}
	patched, err := patch.Apply(doc)
	if err != nil {
		return nil, fmt.Errorf("applying the patch to node %q: %w", p.Node.Name, err)
	}
	var out corev1.Node
	if err := json.Unmarshal(patched, &out); err != nil {
		return nil, fmt.Errorf("decoding patched node %q: %w", p.Node.Name, err)
	}
	return &out, nil
}

// Sample builds the usage policy's input for a node the way the webhook's caches do: the
// summed requests of its non-terminal pods and its NodeMetrics sample, or why there is none.
func Sample(node string, loads map[string]kube.Load, u kube.Usage) (*policy.UsageSample, string) {
	if u.Unavailable != "" {
		return nil, u.Unavailable
	}
	l := loads[node]
	s := &policy.UsageSample{Requests: l.Requests.List()}
	if nu, ok := u.Nodes[node]; ok {
		s.Usage, s.Timestamp = nu.Usage, nu.Timestamp
	}
	return s, ""
}

// Config is what Local needs besides the nodes.
type Config struct {
	Change   Change
	Settings policy.Settings
	Now      time.Time
	// PublishedTargets previews the usage policy as policy mode applies it: from each node's
	// published target (names.UsageTargetAnnotation), not from a live sample.
	PublishedTargets bool
}

// Local plans every node. It reads pods and NodeMetrics only when some node ends up on the
// usage policy, and then once for all of them.
func Local(ctx context.Context, c kubernetes.Interface, m metricsclient.Interface, nodes []corev1.Node, cfg Config) ([]*Plan, error) {
	var usageNodes []string
	for i := range nodes {
		if cfg.Change.EffectivePolicy(&nodes[i]) == names.PolicyUsage {
			usageNodes = append(usageNodes, nodes[i].Name)
		}
	}
	var loads map[string]kube.Load
	var usage kube.Usage
	if len(usageNodes) > 0 && !cfg.PublishedTargets {
		var err error
		if loads, err = kube.Loads(ctx, c, usageNodes); err != nil {
			return nil, err
		}
		usage = kube.ReadUsage(ctx, c, m)
	}
	plans := make([]*Plan, 0, len(nodes))
	for i := range nodes {
		var sample *policy.UsageSample
		var why string
		if loads != nil {
			sample, why = Sample(nodes[i].Name, loads, usage)
		}
		p, err := Compute(&nodes[i], cfg.Change, cfg.Settings, sample, why, cfg.Now)
		if err != nil {
			return nil, err
		}
		plans = append(plans, p)
	}
	return plans, nil
}
