package preview

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/shared/requests"
)

func TestChange(t *testing.T) {
	n := testcluster.Node("a").Annotate(names.PolicyAnnotation, names.PolicyUsage).Build()
	c := Change{CPURatio: "2"}
	got := c.Apply(n)
	if _, ok := n.Labels[names.EnabledLabel]; ok {
		t.Error("Apply changed its input")
	}
	if diff := cmp.Diff(map[string]string{names.PolicyAnnotation: names.PolicyUsage, names.CPURatioAnnotation: "2"}, got.Annotations); diff != "" {
		t.Error(diff)
	}
	if !c.Pending(n) || c.Pending(got) {
		t.Error("Pending is wrong")
	}
	if p := c.EffectivePolicy(n); p != names.PolicyUsage {
		t.Errorf("effective policy %s", p)
	}
	if p := (Change{Policy: names.PolicyStatic}).EffectivePolicy(n); p != names.PolicyStatic {
		t.Errorf("effective policy %s", p)
	}
	b, err := Change{CPURatio: "2", Policy: "usage"}.MergePatch()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"metadata":{"annotations":{"overcommit.dev/cpu-ratio":"2","overcommit.dev/policy":"usage"},"labels":{"overcommit.dev/enabled":"true"}}}`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Error(diff)
	}
	b, _ = Change{}.MergePatch()
	if diff := cmp.Diff(`{"metadata":{"labels":{"overcommit.dev/enabled":"true"}}}`, string(b)); diff != "" {
		t.Error(diff)
	}
}

// TestEffectivePolicy: the preview picks the policy the webhook applies (policy.ForNode), so an
// annotation the webhook does not know ("Usage", "dynamic") previews as static, not as itself.
func TestEffectivePolicy(t *testing.T) {
	for value, want := range map[string]string{"": "static", "static": "static", "usage": "usage",
		"Usage": "static", "USAGE": "static", "dynamic": "static"} {
		n := testcluster.Node("a").Annotate(names.PolicyAnnotation, value).Build()
		if got := (Change{}).EffectivePolicy(n); got != want {
			t.Errorf("policy annotation %q: effective policy %q, want %q", value, got, want)
		}
	}
}

// TestServerItemMatchesLocal feeds the node the local plan says will be stored back as the
// apiserver's answer: the server report must then equal the local one, patch included. This is
// what makes `preview --server` comparable with `preview` at all.
func TestServerItemMatchesLocal(t *testing.T) {
	s := policy.DefaultSettings()
	now := time.Now()
	usage := kube.Usage{Nodes: map[string]kube.NodeUsage{"c": {Usage: testcluster.NodeMetrics("c", "500m", "1Gi").Usage, Timestamp: now}}}
	loads := map[string]kube.Load{"c": {Requests: requests.Amount{MilliCPU: 3000, Memory: 1 << 30}, Pods: 2}}
	for _, tc := range []struct {
		name   string
		node   *corev1.Node
		change Change
	}{
		{"fresh node", testcluster.Node("a").Build(), Change{CPURatio: "2", MemoryRatio: "1.25"}},
		{"enabled node, new ratio", testcluster.Node("b").Enabled(s, names.CPURatioAnnotation, "3").Build(), Change{CPURatio: "1.5"}},
		{"enabled node, unchanged", testcluster.Node("b").Enabled(s, names.CPURatioAnnotation, "3").Build(), Change{}},
		{"usage policy", testcluster.Node("c").Build(), Change{Policy: names.PolicyUsage, CPURatio: "4"}},
		{"odd memory", testcluster.Node("d").Resources("3", "3839Mi").Build(), Change{CPURatio: "1.333333", MemoryRatio: "1.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sample, why := Sample(tc.node.Name, loads, usage)
			p, err := Compute(tc.node, tc.change, s, sample, why, now)
			if err != nil {
				t.Fatal(err)
			}
			answer, err := p.After()
			if err != nil {
				t.Fatal(err)
			}
			local := p.Item()
			server, err := serverItem(tc.node, p.Hypothetical, answer, kube.ModeWebhook, []string{"overcommit: from the webhook"})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"from the webhook"}, server.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			local.Reason, server.Reason, server.Warnings = "", "", local.Warnings
			if diff := cmp.Diff(local, server); diff != "" {
				t.Errorf("server report differs from the local one (-local +server):\n%s", diff)
			}
			if got, want := answer.Status.Allocatable.Cpu().String(), p.Result.Allocatable.Cpu().String(); got != want {
				t.Errorf("patched node has cpu %s, result %s", got, want)
			}
		})
	}
}

func TestSample(t *testing.T) {
	loads := map[string]kube.Load{"a": {Requests: requests.Amount{MilliCPU: 1500, Memory: 1 << 30}}}
	if s, why := Sample("a", loads, kube.Usage{Unavailable: "not served"}); s != nil || why != "not served" {
		t.Errorf("unavailable: %+v %q", s, why)
	}
	s, why := Sample("a", loads, kube.Usage{Nodes: map[string]kube.NodeUsage{}})
	if why != "" || s.Usage != nil || s.Requests.Cpu().String() != "1500m" || s.Requests.Memory().String() != "1Gi" {
		t.Errorf("no sample for the node: %+v %q", s, why)
	}
	ts := time.Unix(1000, 0)
	s, _ = Sample("a", loads, kube.Usage{Nodes: map[string]kube.NodeUsage{"a": {Usage: corev1.ResourceList{}, Timestamp: ts}}})
	if s.Usage == nil || !s.Timestamp.Equal(ts) {
		t.Errorf("sample: %+v", s)
	}
}

func TestKeepWithoutRawRecord(t *testing.T) {
	s := policy.DefaultSettings()
	n := testcluster.Node("a").Enabled(s).Build()
	delete(n.Annotations, names.RawAnnotation)
	p, err := Compute(n, Change{}, s, nil, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	it := p.Item()
	if len(it.Patch) != 0 || it.After.Allocatable.Cpu().String() != "6" || len(it.Warnings) == 0 {
		t.Errorf("want the stored values kept with a warning and no patch: %+v", it)
	}
}
