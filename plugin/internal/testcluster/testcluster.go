// Package testcluster builds fake clientsets that behave like the apiserver where the plugin
// depends on it: node patches honour dry runs, and a status write of an opted-in node is
// rewritten by the shared policy as the node policy (webhook or MutatingAdmissionPolicy) would,
// with the settings of the settings ConfigMap in the fake. Tests of the plugin's commands and
// libraries use it; agreement with the real webhook and policy is the e2e tests' job.
package testcluster

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsfake "k8s.io/metrics/pkg/client/clientset/versioned/fake"
	"sigs.k8s.io/yaml"

	"github.com/overcommit-dev/overcommit/deploy"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/nodepatch"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// Cluster is a fake cluster.
type Cluster struct {
	Kube    *fake.Clientset
	Metrics *metricsfake.Clientset
	// NodePolicy, when false, makes status writes pass unchanged, as with the webhook down. When
	// true, status writes of opted-in nodes are rewritten by the rules of both modes: with the
	// settings ConfigMap's settings, the defaults when it is invalid, and not at all when it is
	// missing. Whether a webhook or a policy object is installed does not matter here.
	NodePolicy bool
}

// Options configure New.
type Options struct {
	Objects []runtime.Object
	// NodeMetrics are served by metrics.k8s.io; nil means metrics.k8s.io is not served.
	NodeMetrics []metricsv1beta1.NodeMetrics
	// PodMetrics are served with the NodeMetrics (ignored without them), a namespace's or all,
	// in pages when the LIST has a limit; nil lists none.
	PodMetrics []metricsv1beta1.PodMetrics
	// NoNodePolicy leaves the status writes unchanged.
	NoNodePolicy bool
	// ServesMutatingAdmissionPolicy makes discovery list admissionregistration.k8s.io/v1
	// mutatingadmissionpolicies (Kubernetes 1.36 and later).
	ServesMutatingAdmissionPolicy bool
}

var nodesResource = corev1.SchemeGroupVersion.WithResource("nodes")

// New returns a fake cluster holding objs.
func New(o Options) *Cluster {
	c := &Cluster{Kube: fake.NewClientset(o.Objects...), Metrics: metricsfake.NewSimpleClientset(), NodePolicy: !o.NoNodePolicy}
	c.Kube.PrependReactor("patch", "nodes", c.patchNode)
	admission := &metav1.APIResourceList{GroupVersion: "admissionregistration.k8s.io/v1", APIResources: []metav1.APIResource{
		{Name: "mutatingwebhookconfigurations", Kind: "MutatingWebhookConfiguration"},
	}}
	if o.ServesMutatingAdmissionPolicy {
		admission.APIResources = append(admission.APIResources,
			metav1.APIResource{Name: "mutatingadmissionpolicies", Kind: "MutatingAdmissionPolicy"},
			metav1.APIResource{Name: "mutatingadmissionpolicybindings", Kind: "MutatingAdmissionPolicyBinding"})
	}
	c.Kube.Resources = append(c.Kube.Resources, admission)
	if o.NodeMetrics != nil {
		c.Kube.Resources = append(c.Kube.Resources, &metav1.APIResourceList{
			GroupVersion: "metrics.k8s.io/v1beta1",
			APIResources: []metav1.APIResource{{Name: "nodes", Kind: "NodeMetrics"}, {Name: "pods", Kind: "PodMetrics", Namespaced: true}},
		})
		list := &metricsv1beta1.NodeMetricsList{Items: o.NodeMetrics}
		// The fake tracker files NodeMetrics under "nodemetricses", while the client lists
		// "nodes"; answer the list directly.
		c.Metrics.PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, list.DeepCopy(), nil
		})
		c.Metrics.PrependReactor("list", "pods", listPodMetrics(o.PodMetrics))
	}
	return c
}

// listPodMetrics answers PodMetrics LISTs from items as the apiserver does: the LIST's namespace
// only, at most limit items a page, with a continue token (the index of the next item) while
// more remain.
func listPodMetrics(items []metricsv1beta1.PodMetrics) k8stesting.ReactionFunc {
	return func(a k8stesting.Action) (bool, runtime.Object, error) {
		la := a.(k8stesting.ListActionImpl)
		var matching []metricsv1beta1.PodMetrics
		for _, pm := range items {
			if la.Namespace == metav1.NamespaceAll || pm.Namespace == la.Namespace {
				matching = append(matching, pm)
			}
		}
		start := 0
		if la.ListOptions.Continue != "" {
			var err error
			if start, err = strconv.Atoi(la.ListOptions.Continue); err != nil || start > len(matching) {
				return true, nil, fmt.Errorf("bad continue token %q", la.ListOptions.Continue)
			}
		}
		end := len(matching)
		if l := int(la.ListOptions.Limit); l > 0 && start+l < end {
			end = start + l
		}
		out := &metricsv1beta1.PodMetricsList{}
		if end < len(matching) {
			out.Continue = strconv.Itoa(end)
		}
		for _, pm := range matching[start:end] {
			out.Items = append(out.Items, *pm.DeepCopy())
		}
		return true, out, nil
	}
}

// patchNode is the apiserver for node merge patches: the nodes resource keeps status, the
// status subresource keeps spec, dry runs store nothing, and the webhook rewrites status writes
// of opted-in nodes.
func (c *Cluster) patchNode(a k8stesting.Action) (bool, runtime.Object, error) {
	pa := a.(k8stesting.PatchActionImpl)
	if pa.PatchType != types.MergePatchType {
		return false, nil, nil
	}
	obj, err := c.Kube.Tracker().Get(nodesResource, "", pa.Name)
	if err != nil {
		return true, nil, err
	}
	cur := obj.(*corev1.Node)
	doc, err := json.Marshal(cur)
	if err != nil {
		return true, nil, err
	}
	if doc, err = jsonpatchapply.MergePatch(doc, pa.Patch); err != nil {
		return true, nil, err
	}
	next := &corev1.Node{}
	if err := json.Unmarshal(doc, next); err != nil {
		return true, nil, err
	}
	switch pa.Subresource {
	case "":
		next.Status = cur.Status
	case "status":
		next.Spec = cur.Spec
		if c.NodePolicy && (policy.OptedIn(cur.Labels) || policy.OptedIn(next.Labels)) {
			if s, ok := c.settings(); ok {
				if next, err = Webhook(next, "admin", s); err != nil {
					return true, nil, err
				}
			}
		}
	default:
		return true, nil, fmt.Errorf("unexpected subresource %q", pa.Subresource)
	}
	if len(pa.PatchOptions.DryRun) == 0 {
		if err := c.Kube.Tracker().Update(nodesResource, next, ""); err != nil {
			return true, nil, err
		}
	}
	return true, next, nil
}

// Webhook returns n as the node webhook stores it when writer writes it.
func Webhook(n *corev1.Node, writer string, s policy.Settings) (*corev1.Node, error) {
	return webhook(n, policy.Input{Writer: writer, UsageUnavailable: "usage is not simulated"}, s)
}

// webhook returns n as the node webhook stores it for in (its Node and Now filled in here).
func webhook(n *corev1.Node, in policy.Input, s policy.Settings) (*corev1.Node, error) {
	if !policy.OptedIn(n.Labels) {
		return n, nil
	}
	in.Node, in.Now = policy.NodeFrom(n), time.Now()
	ops, err := nodepatch.Operations(in.Node, policy.Compute(in, s))
	if err != nil {
		return nil, err
	}
	patch, err := nodepatch.Marshal(ops)
	if err != nil {
		return nil, err
	}
	p, err := jsonpatchapply.DecodePatch(patch)
	if err != nil {
		return nil, err
	}
	doc, err := json.Marshal(n)
	if err != nil {
		return nil, err
	}
	if doc, err = p.Apply(doc); err != nil {
		return nil, err
	}
	out := &corev1.Node{}
	return out, json.Unmarshal(doc, out)
}

// settings reads the settings ConfigMap as the node policy does: false when it is missing, the
// defaults when it is invalid.
func (c *Cluster) settings() (policy.Settings, bool) {
	obj, err := c.Kube.Tracker().Get(corev1.SchemeGroupVersion.WithResource("configmaps"), names.Namespace, names.SettingsConfigMap)
	if err != nil {
		return policy.Settings{}, false
	}
	data := obj.(*corev1.ConfigMap).Data
	s, err := policy.SettingsFromData(data)
	if err != nil {
		return policy.DefaultSettings().WithConfirmation(data), true
	}
	return s.WithConfirmation(data), true
}

// SettingsConfigMap is the settings ConfigMap holding s.
func SettingsConfigMap(s policy.Settings) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: names.Namespace, Name: names.SettingsConfigMap}, Data: s.Data()}
}

// WebhookConfiguration is the install's MutatingWebhookConfiguration: with the node webhook
// (webhook mode) or with the pod webhook only (policy mode).
func WebhookConfiguration(nodes bool) *admissionregistrationv1.MutatingWebhookConfiguration {
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: names.WebhookConfigurationName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "pods.overcommit.dev"}}}
	if nodes {
		mwc.Webhooks = append([]admissionregistrationv1.MutatingWebhook{{Name: names.NodeWebhookName}}, mwc.Webhooks...)
	}
	return mwc
}

// InstalledWebhookConfiguration is the MutatingWebhookConfiguration that `kubectl overcommit
// install --mode webhook` applies, with a caBundle as its certificate source injects one.
func InstalledWebhookConfiguration() *admissionregistrationv1.MutatingWebhookConfiguration {
	rendered, err := deploy.Render("self-signed", deploy.ModeWebhook, "example.com/overcommit-webhook:v1")
	if err != nil {
		panic(err)
	}
	for _, doc := range strings.Split(string(rendered), "\n---\n") {
		var mwc admissionregistrationv1.MutatingWebhookConfiguration
		if err := yaml.Unmarshal([]byte(doc), &mwc); err == nil && mwc.Kind == "MutatingWebhookConfiguration" {
			for i := range mwc.Webhooks {
				mwc.Webhooks[i].ClientConfig.CABundle = []byte("-----BEGIN CERTIFICATE-----")
			}
			return &mwc
		}
	}
	panic("the install has no MutatingWebhookConfiguration")
}

// NodePolicy is the MutatingAdmissionPolicy of policy mode (its name only).
func NodePolicy() *admissionregistrationv1.MutatingAdmissionPolicy {
	return &admissionregistrationv1.MutatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: names.NodePolicyName}}
}

// NodeBuilder builds test nodes fluently: Node("a").CPU("4").Memory("8Gi").Enabled().Build().
type NodeBuilder struct{ n *corev1.Node }

// Node starts a node with the given name, 4 cpu and 8Gi.
func Node(name string) *NodeBuilder {
	return (&NodeBuilder{n: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}}).
		Resources("4", "8Gi")
}

// Resources sets allocatable and capacity (110 pods as well).
func (b *NodeBuilder) Resources(cpu, memory string) *NodeBuilder {
	l := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory), corev1.ResourcePods: resource.MustParse("110")}
	b.n.Status.Allocatable, b.n.Status.Capacity = l, l.DeepCopy()
	return b
}

// Label adds a label.
func (b *NodeBuilder) Label(k, v string) *NodeBuilder {
	b.n.Labels[k] = v
	return b
}

// Annotate adds an annotation.
func (b *NodeBuilder) Annotate(k, v string) *NodeBuilder {
	if b.n.Annotations == nil {
		b.n.Annotations = map[string]string{}
	}
	b.n.Annotations[k] = v
	return b
}

// Enabled opts the node in with the given annotations (key, value pairs) and applies the policy
// as the webhook would have on an earlier write.
func (b *NodeBuilder) Enabled(s policy.Settings, annotations ...string) *NodeBuilder {
	b.n.Labels[names.EnabledLabel] = names.EnabledValue
	for i := 0; i+1 < len(annotations); i += 2 {
		b.Annotate(annotations[i], annotations[i+1])
	}
	n, err := Webhook(b.n, names.KubeletUser(b.n.Name), s)
	if err != nil {
		panic(err)
	}
	b.n = n
	return b
}

// EnabledUsage opts the node in on the usage policy with the given annotations and applies it as
// the webhook would have on an earlier kubelet write with sample (stamped now, so fresh): its
// statistic, if any, is recorded in the applied record, as the webhook records its window's.
func (b *NodeBuilder) EnabledUsage(s policy.Settings, sample policy.UsageSample, annotations ...string) *NodeBuilder {
	b.n.Labels[names.EnabledLabel] = names.EnabledValue
	b.Annotate(names.PolicyAnnotation, names.PolicyUsage)
	for i := 0; i+1 < len(annotations); i += 2 {
		b.Annotate(annotations[i], annotations[i+1])
	}
	sample.Timestamp = time.Now()
	n, err := webhook(b.n, policy.Input{Writer: names.KubeletUser(b.n.Name), Usage: &sample, Requests: sample.Requests}, s)
	if err != nil {
		panic(err)
	}
	b.n = n
	return b
}

// Condition sets the node condition t: its status, when it last changed, and the kubelet's
// heartbeat. Set conditions before Enabled to have the earlier write see them.
func (b *NodeBuilder) Condition(t corev1.NodeConditionType, status corev1.ConditionStatus, since, heartbeat time.Time) *NodeBuilder {
	c := corev1.NodeCondition{Type: t, Status: status, LastTransitionTime: metav1.NewTime(since), LastHeartbeatTime: metav1.NewTime(heartbeat)}
	for i := range b.n.Status.Conditions {
		if b.n.Status.Conditions[i].Type == t {
			b.n.Status.Conditions[i] = c
			return b
		}
	}
	b.n.Status.Conditions = append(b.n.Status.Conditions, c)
	return b
}

// Build returns the node.
func (b *NodeBuilder) Build() *corev1.Node { return b.n.DeepCopy() }

// Pod returns a running pod bound to node with one container requesting cpu and memory.
func Pod(name, node, cpu, memory string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

// NodeMetrics returns a fresh usage sample.
func NodeMetrics(node, cpu, memory string) metricsv1beta1.NodeMetrics {
	return metricsv1beta1.NodeMetrics{ObjectMeta: metav1.ObjectMeta{Name: node}, Timestamp: metav1.NewTime(time.Now()), Window: metav1.Duration{Duration: 30 * time.Second},
		Usage: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}}
}

// PodMetrics returns a fresh usage sample of a pod with one container.
func PodMetrics(namespace, name, cpu, memory string) metricsv1beta1.PodMetrics {
	return metricsv1beta1.PodMetrics{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Timestamp: metav1.NewTime(time.Now()),
		Window: metav1.Duration{Duration: 30 * time.Second}, Containers: []metricsv1beta1.ContainerMetrics{{Name: "app",
			Usage: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}}}}
}

// Writes lists the actions that would change the cluster (dry runs excluded).
func Writes(c *fake.Clientset) []string {
	var out []string
	for _, a := range c.Actions() {
		switch a := a.(type) {
		case k8stesting.PatchActionImpl:
			if len(a.PatchOptions.DryRun) == 0 {
				out = append(out, fmt.Sprintf("patch %s/%s %s %s", a.Resource.Resource, a.Subresource, a.Name, a.Patch))
			}
		case k8stesting.CreateActionImpl, k8stesting.UpdateActionImpl, k8stesting.DeleteActionImpl:
			out = append(out, a.GetVerb()+" "+a.GetResource().Resource)
		}
	}
	return out
}
