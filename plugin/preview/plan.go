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
	"github.com/overcommit-dev/overcommit/plugin/output"
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
	// OneSample says the usage policy ran on one NodeMetrics sample standing in for the
	// webhook's usage window (see Inputs.OneSample).
	OneSample bool
}

// Inputs are what the node policy reads for one node besides the node and its settings: in
// webhook mode what the webhook's caches hold (see WebhookInputs); in policy mode nothing, since
// the in-apiserver policy reads the node's published records (usage target, requests).
type Inputs struct {
	// Sample and Unavailable are the usage policy's input (policy.Input Usage and
	// UsageUnavailable); they are ignored unless the node ends up on the usage policy.
	Sample      *policy.UsageSample
	Unavailable string
	// Requests are the pods' summed requests the pressure guard holds a node at; nil leaves the
	// policy to the node's published record, as in policy mode.
	Requests corev1.ResourceList
	// OneSample says Sample is the node's one NodeMetrics sample, standing in for the webhook's
	// usage window, which lives in its memory: the webhook has recorded no statistic for the
	// node yet, so what it stores may differ.
	OneSample bool
}

// input is the policy.Input the node handler builds for n after the change.
func input(hypo *corev1.Node, in Inputs, now time.Time) policy.Input {
	pin := policy.Input{
		Node:     policy.NodeFrom(hypo),
		Writer:   Writer,
		Requests: in.Requests,
		Now:      now,
	}
	if pol, _ := policy.ForNode(hypo.Annotations); pol == names.PolicyUsage {
		pin.Usage, pin.UsageUnavailable = in.Sample, in.Unavailable
	}
	return pin
}

// Compute plans one node with the webhook's code: the same Input the node handler builds, the
// same policy.Compute and the same nodepatch.Operations.
func Compute(n *corev1.Node, c Change, s policy.Settings, in Inputs, now time.Time) (*Plan, error) {
	hypo := c.Apply(n)
	pin := input(hypo, in, now)
	res := policy.Compute(pin, s)
	ops, err := nodepatch.Operations(pin.Node, res)
	if err != nil {
		return nil, fmt.Errorf("node %q: %w", n.Name, err)
	}
	return &Plan{Node: n, Hypothetical: hypo, Result: res, Ops: ops, OneSample: in.OneSample && pin.Usage != nil}, nil
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

// OneSampleWarning is the preview's own warning when Inputs.OneSample.
const OneSampleWarning = "previewed from one NodeMetrics sample; the webhook uses its usage window and may differ"

// WebhookInputs is what the webhook's caches give the policy for node n (webhook mode): the
// summed requests of its non-terminal pods, and the usage policy's sample. The webhook draws that
// sample from its window of NodeMetrics samples, which lives in its memory; what the plugin can
// read of it is the statistic of the webhook's last write, recorded in the node's applied record.
// With one, the sample is that statistic, timestamped by the node's NodeMetrics when there is one
// (the data source is alive; a stale one makes the policy fall back, as it makes the webhook) and
// else now, so that the preview computes exactly what the webhook would with its last statistic.
// Without one (the node has just switched to usage), the node's one NodeMetrics sample stands
// in, and OneSample says so.
func WebhookInputs(n *corev1.Node, load kube.Load, u kube.Usage, now time.Time) Inputs {
	in := Inputs{Requests: load.Requests.List()}
	if stat := recordedStatistic(n); stat != nil {
		in.Sample = &policy.UsageSample{Requests: in.Requests, Timestamp: now, Statistic: stat, Usage: corev1.ResourceList{
			corev1.ResourceCPU:    policy.Quantity(corev1.ResourceCPU, stat.CPU),
			corev1.ResourceMemory: policy.Quantity(corev1.ResourceMemory, stat.Memory),
		}}
		if nu, ok := u.Nodes[n.Name]; ok {
			in.Sample.Timestamp = nu.Timestamp
		}
		return in
	}
	if u.Unavailable != "" {
		in.Unavailable = u.Unavailable
		return in
	}
	in.Sample = &policy.UsageSample{Requests: in.Requests}
	if nu, ok := u.Nodes[n.Name]; ok {
		in.Sample.Usage, in.Sample.Timestamp = nu.Usage, nu.Timestamp
		in.OneSample = true
	}
	return in
}

// recordedStatistic is the statistic of n's applied record, nil when there is none.
func recordedStatistic(n *corev1.Node) *policy.Statistic {
	s, ok := n.Annotations[names.AppliedAnnotation]
	if !ok {
		return nil
	}
	a, err := policy.ParseApplied(s)
	if err != nil {
		return nil
	}
	return output.RecordedStatistic(a)
}

// Config is what Local needs besides the nodes.
type Config struct {
	Change   Change
	Settings policy.Settings
	Now      time.Time
	// PublishedTargets previews the node policy as policy mode applies it: the usage policy from
	// each node's published target (names.UsageTargetAnnotation), the pressure guard from its
	// published requests (names.RequestsAnnotation), not from the cluster's pods and metrics.
	PublishedTargets bool
}

// Local plans every node. In webhook mode it reads pods for the nodes that need them, the
// nodes that end up on the usage policy and those the pressure guard holds, and NodeMetrics
// when some node is on the usage policy, once for all of them.
func Local(ctx context.Context, c kubernetes.Interface, m metricsclient.Interface, nodes []corev1.Node, cfg Config) ([]*Plan, error) {
	inputs := make([]Inputs, len(nodes))
	if !cfg.PublishedTargets {
		var err error
		if inputs, err = webhookInputs(ctx, c, m, nodes, cfg); err != nil {
			return nil, err
		}
	}
	plans := make([]*Plan, 0, len(nodes))
	for i := range nodes {
		p, err := Compute(&nodes[i], cfg.Change, cfg.Settings, inputs[i], cfg.Now)
		if err != nil {
			return nil, err
		}
		plans = append(plans, p)
	}
	return plans, nil
}

// webhookInputs reads the cluster for the nodes whose result depends on it, as the webhook's
// caches would answer.
func webhookInputs(ctx context.Context, c kubernetes.Interface, m metricsclient.Interface, nodes []corev1.Node, cfg Config) ([]Inputs, error) {
	inputs := make([]Inputs, len(nodes))
	var needed []string
	need := make([]bool, len(nodes))
	anyUsage := false
	for i := range nodes {
		usage := cfg.Change.EffectivePolicy(&nodes[i]) == names.PolicyUsage
		anyUsage = anyUsage || usage
		need[i] = usage || held(&nodes[i], cfg)
		if need[i] {
			needed = append(needed, nodes[i].Name)
		}
	}
	if len(needed) == 0 {
		return inputs, nil
	}
	loads, err := kube.Loads(ctx, c, needed)
	if err != nil {
		return nil, err
	}
	var usage kube.Usage
	if anyUsage {
		usage = kube.ReadUsage(ctx, c, m)
	}
	for i := range nodes {
		if need[i] {
			inputs[i] = WebhookInputs(&nodes[i], loads[nodes[i].Name], usage, cfg.Now)
		}
	}
	return inputs, nil
}

// held asks the policy itself whether its pressure guard holds n after the change, so that the
// pods are read only for the nodes whose result depends on them.
func held(n *corev1.Node, cfg Config) bool {
	return policy.Compute(input(cfg.Change.Apply(n), Inputs{}, cfg.Now), cfg.Settings).Applied.Hold != ""
}
